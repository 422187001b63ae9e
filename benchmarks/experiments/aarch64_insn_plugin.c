/*
 * edgeemo: deterministic instruction counter for qemu-aarch64 (QEMU TCG plugin, plugin API v1, QEMU 7.2).
 *
 * Built by benchmarks/experiments/aarch64_env.sh against qemu-plugin.h taken from Debian's qemu source package.
 * Counts guest AArch64 instructions executed by all guest threads, plus a few classes decoded from the
 * opcode at translation time (so execution costs one callback per translated block, not per instruction):
 *   insns          all instructions (counted per executed translation block)
 *   simd_fp_dp     "Data processing -- scalar FP and Advanced SIMD" (op0 = x111): NEON/FP arithmetic
 *   ldst           loads and stores (op0 = x1x0)
 *   ldst_simd_fp   loads and stores of SIMD&FP registers (subset of ldst)
 *   dot            SDOT/UDOT (vector and by-element; FEAT_DotProd, ARMv8.2: Cortex-A76 has it, A72 does not)
 *   vcpus          guest threads started (1 per thread; >1 means the count includes thread interplay)
 * Each counter is kept for all threads and for the main thread alone (main_*, qemu cpu_index 0).
 * Marks: a guest call lseek(-1, MARK_MAGIC + k, 0) (fails with EBADF, no side effect) snapshots the counters, so
 * one process can measure regions exactly (benchmarks/experiments/aarch64_probe.py: os.lseek(-1, 0x4544474545000 + k, 0)).
 * A block left early (a fault in its middle) is counted whole; this does not happen in ordinary user code.
 *
 * Usage: qemu-aarch64 -plugin ./libedgeemo_insn.so,out=/path/counts.txt ...
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

enum { C_INSNS, C_SIMD_DP, C_LDST, C_LDST_SIMD, C_DOT, C_N };
static const char *const names[C_N] = {"insns", "simd_fp_dp", "ldst", "ldst_simd_fp", "dot"};

#define NR_LSEEK_AARCH64 62
#define MARK_MAGIC 0x4544474545000ull
#define MAX_MARKS 256

#define MAX_VCPUS 64 /* guest threads by qemu cpu_index; the main thread is 0; higher indexes share the last */

static uint64_t counts[C_N];
static uint64_t per_vcpu[MAX_VCPUS][C_N];
static uint64_t vcpus;
static uint64_t marks[MAX_MARKS][2 * C_N + 1]; /* [k][0] = mark id, then all threads, then the main thread */
static unsigned n_marks;
static char outpath[4096];

typedef struct {
    uint32_t c[C_N];
} BlockInfo;

static void classify(uint32_t op, BlockInfo *b)
{
    b->c[C_INSNS]++;
    if ((op & 0x0E000000u) == 0x0E000000u) {
        b->c[C_SIMD_DP]++;
    }
    if ((op & 0x0A000000u) == 0x08000000u) {
        b->c[C_LDST]++;
        if (op & 0x04000000u) {
            b->c[C_LDST_SIMD]++;
        }
    }
    /* SDOT/UDOT (vector): 0 Q U 01110 10 0 Rm 100101 Rn Rd */
    /* SDOT/UDOT (by element): 0 Q U 01111 10 L M Rm 1110 H 0 Rn Rd */
    if ((op & 0x9FE0FC00u) == 0x0E809400u || (op & 0x9FC0F400u) == 0x0F80E000u) {
        b->c[C_DOT]++;
    }
}

static void tb_exec(unsigned int cpu_index, void *udata)
{
    const BlockInfo *b = udata;
    uint64_t *mine = per_vcpu[cpu_index < MAX_VCPUS ? cpu_index : MAX_VCPUS - 1];
    for (int i = 0; i < C_N; i++) {
        if (b->c[i]) {
            __atomic_fetch_add(&counts[i], b->c[i], __ATOMIC_RELAXED);
            __atomic_fetch_add(&mine[i], b->c[i], __ATOMIC_RELAXED);
        }
    }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    BlockInfo *b = calloc(1, sizeof(*b)); /* kept for the block's lifetime; never freed (small, bounded) */
    (void)id;
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint32_t op = 0;
        if (qemu_plugin_insn_size(insn) == 4) {
            memcpy(&op, qemu_plugin_insn_data(insn), 4);
        }
        classify(op, b);
    }
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, b);
}

static void vcpu_init(qemu_plugin_id_t id, unsigned int cpu_index)
{
    (void)id;
    (void)cpu_index;
    __atomic_fetch_add(&vcpus, 1, __ATOMIC_RELAXED);
}

static void vcpu_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num, uint64_t a1, uint64_t a2,
                         uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    (void)id, (void)vcpu_index, (void)a3, (void)a4, (void)a5, (void)a6, (void)a7, (void)a8;
    if (num != NR_LSEEK_AARCH64 || a1 != UINT64_MAX || (a2 & ~0xFFFull) != MARK_MAGIC) {
        return;
    }
    unsigned k = __atomic_fetch_add(&n_marks, 1, __ATOMIC_RELAXED);
    if (k < MAX_MARKS) {
        marks[k][0] = a2 - MARK_MAGIC;
        for (int i = 0; i < C_N; i++) {
            marks[k][i + 1] = __atomic_load_n(&counts[i], __ATOMIC_RELAXED);
            marks[k][C_N + i + 1] = __atomic_load_n(&per_vcpu[0][i], __ATOMIC_RELAXED);
        }
    }
}

static void plugin_exit(qemu_plugin_id_t id, void *p)
{
    (void)id;
    (void)p;
    FILE *f = outpath[0] ? fopen(outpath, "w") : stderr;
    if (!f) {
        f = stderr;
    }
    fprintf(f, "{");
    for (int i = 0; i < C_N; i++) {
        fprintf(f, "\"%s\": %llu, ", names[i], (unsigned long long)counts[i]);
    }
    for (int i = 0; i < C_N; i++) {
        fprintf(f, "\"main_%s\": %llu, ", names[i], (unsigned long long)per_vcpu[0][i]);
    }
    fprintf(f, "\"vcpus\": %llu, \"marks\": [", (unsigned long long)vcpus);
    for (unsigned k = 0; k < n_marks && k < MAX_MARKS; k++) {
        fprintf(f, "%s{\"id\": %llu", k ? ", " : "", (unsigned long long)marks[k][0]);
        for (int i = 0; i < C_N; i++) {
            fprintf(f, ", \"%s\": %llu", names[i], (unsigned long long)marks[k][i + 1]);
        }
        for (int i = 0; i < C_N; i++) {
            fprintf(f, ", \"main_%s\": %llu", names[i], (unsigned long long)marks[k][C_N + i + 1]);
        }
        fprintf(f, "}");
    }
    fprintf(f, "]}\n");
    if (f != stderr) {
        fclose(f);
    }
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            snprintf(outpath, sizeof(outpath), "%s", argv[i] + 4);
        }
    }
    qemu_plugin_register_vcpu_init_cb(id, vcpu_init);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, vcpu_syscall);
    qemu_plugin_register_atexit_cb(id, plugin_exit, NULL);
    return 0;
}
