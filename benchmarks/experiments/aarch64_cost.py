"""Deterministic ARM cost per inference: guest instruction counts under qemu-aarch64 + a TCG plugin.

For every shipped model and CPU profile, runs ``benchmarks/experiments/aarch64_probe.py count`` (1 interpreter thread)
under ``qemu-aarch64 -cpu <profile> -plugin libedgeemo_insn.so`` (``benchmarks/experiments/aarch64_env.sh count``). The
probe brackets its regions with markers, so the counts are exact differences inside one process:
open the model, the first predict, N batch-1 predicts (quantise + interpreter + dequantise) and N bare
interpreter calls. The counts are the main thread's (the interpreter runs on it with 1 thread);
instructions of other threads (onnxruntime starts a few idle ones) are kept as ``all_threads_insns``.
Next to them: the x86 wall-clock of the same models from ``edgeemo bench --threads 1`` (median batch-1
latency), and the int8/float32 ratios of both.

Inputs are x86's preprocessed inputs from ``aarch64_smoke.py`` (``--work``; ``x86_face.npz``, ``x86_voice.npz``).

    .venv/bin/python benchmarks/experiments/aarch64_cost.py --n 10 --json benchmarks/results/experiments/aarch64.json \\
        --md benchmarks/results/experiments/aarch64.md --smoke-json benchmarks/results/experiments/aarch64_smoke.json
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

from edgeemo.shipped import shipped_sha256

REPO = Path(__file__).resolve().parents[2]
ENV = REPO / "benchmarks" / "experiments" / "aarch64_env.sh"
PROBE = REPO / "benchmarks" / "experiments" / "aarch64_probe.py"
HOST_PY = REPO / ".venv" / "bin" / "python"
EDGEEMO = REPO / ".venv" / "bin" / "edgeemo"
DATA = REPO.parent / "shared" / "data"
MODELS = {"face": ["face", "face-float", "face-onnx"], "voice": ["voice", "voice-float", "voice-onnx"]}
BENCH_DATA = {
    "face": ["--data", str(DATA / "fer2013"), "--split", "publictest", "--limit-per-class", "10"],
    "voice": ["--data", str(DATA / "ravdess"), "--speakers", "17", "--limit-per-class", "3"],
}
CLASSES = ("insns", "simd_fp_dp", "ldst", "ldst_simd_fp", "dot")
RATIOS = (("face", "face-float"), ("face-onnx", "face-float"), ("voice", "voice-float"), ("voice-onnx", "voice-float"))


# How the rest of the report was produced (the smoke and the emulated `edgeemo bench` runs).
OTHER_COMMANDS = [
    "benchmarks/experiments/aarch64_env.sh build",
    ".venv/bin/python benchmarks/experiments/aarch64_smoke.py --demo "
    "--json benchmarks/results/experiments/aarch64_smoke.json",
    "nice -n 10 benchmarks/experiments/aarch64_env.sh edgeemo -cpu cortex-a72 bench face face-float face-onnx "
    "--data ../shared/data/fer2013 --split publictest --limit-per-class 10 --threads 1 --runs 5 --warmup 1 --no-plots",
    "nice -n 10 benchmarks/experiments/aarch64_env.sh edgeemo -cpu cortex-a72 bench voice voice-float "
    "--data ../shared/data/ravdess --speakers 17 --limit-per-class 3 --threads 1 --runs 5 --warmup 1 --no-plots",
    ".venv/bin/python benchmarks/experiments/aarch64_cost.py --n 10 --no-x86 "
    "--json benchmarks/results/experiments/aarch64.json",
    ".venv/bin/python benchmarks/experiments/aarch64_cost.py "
    "--from-json benchmarks/results/experiments/aarch64.json --add-x86 "
    "--json benchmarks/results/experiments/aarch64.json --md benchmarks/results/experiments/aarch64.md "
    "--smoke-json benchmarks/results/experiments/aarch64_smoke.json",
    "# which run, per model and CPU profile:",
]

# Hand-written reading of the measured numbers, kept beside the generated report and included in it.
FINDINGS = REPO / "benchmarks" / "results" / "experiments" / "aarch64_findings.md"
NOTES = """## What these numbers do and do not predict

- They are repeatable counts (to about 1e-6, see the checks) of the AArch64 instructions the guest
  executes (the same binaries a Pi runs: the aarch64 wheels of ai-edge-litert and onnxruntime), with
  kernels chosen for the emulated CPU:
  qemu reports the CPU's hwcaps (`-cpu cortex-a72`: no dot product; `-cpu cortex-a76`: `asimddp`), and
  `aarch64_env.sh` serves the board's `/proc/cpuinfo` (MIDR part, Features) so cpuinfo-based kernel
  dispatch in XNNPACK and MLAS sees the same CPU as on the device. A change of count is a change of work.
- They are not time. One instruction is not one cycle: a 128-bit SDOT, a scalar add, a load that misses
  the cache and a dependent FMA chain all count 1. The A72 issues up to 3 instructions/cycle with 2 NEON
  pipes; the A76 is wider (4-wide decode, 2x128-bit NEON pipes); memory stalls, cache sizes
  (Pi 4: 1 MB shared L2, no L3; Pi 5: 512 KB L2 per core + 2 MB L3), DRAM bandwidth, clocks (1.8 vs
  2.4 GHz) and thermal throttling are all outside the count. An int8 kernel that moves 4x less data can win
  by more than its instruction ratio when a float model is memory bound, and lose when int8 needs more
  shuffles/widening (NEON without SDOT: SMULL/SMLAL/SADALP chains) per useful multiply-accumulate.
- Per-instruction cost differs by class: SIMD&FP data-processing instructions do 4 (fp32) or 16 (int8)
  lanes of work each, scalar Python/NumPy glue does one. The class columns show where a model's count sits.
- Emulated wall-clock under qemu says nothing about the device: qemu runs guest floating point (NEON
  included) through its softfloat helpers, so float models look tens of times slower than int8 under
  emulation (the emulated `edgeemo bench` runs in the findings), far from the instruction ratio and from
  real hardware.
- Single thread only: counts with several interpreter threads would include spinning and scheduling
  that depend on the host. Python-level costs (edgeemo's quantise/dequantise, the interpreter binding) are
  in `predict` and not in `invoke`.
- Not validated on a real Pi 4/5 yet (`perf stat -e instructions,cycles` on the device would check both
  the counts and how far cycles follow them)."""


def task_of(model: str) -> str:
    return model.split("-")[0]


def count(model: str, cpu: str, n: int, work: Path, out_dir: Path | None = None) -> dict:
    """Instruction counts of the probe's marked regions; inputs from ``work``, plugin output to ``out_dir``."""
    out_dir = out_dir or work
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"count_{cpu}_{model}_n{n}.json"
    inputs = work / f"x86_{task_of(model)}.npz"
    cmd = ["nice", "-n", "10", str(ENV), "count", str(out), "-cpu", cpu, str(PROBE), "count", "--model", model,
           "--inputs", str(inputs), "--n", str(n)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    probe = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"model": model, "cpu": cpu, "n": n, "backend": probe["backend"], **regions(out, n),
            "emulated_ms_with_plugin": probe["ms"], "emulated_process_s": wall}


def regions(path: Path, n: int) -> dict:
    """The plugin's output -> counts per region (main thread; all threads' instructions beside)."""
    counts = json.loads(path.read_text())
    marks = {m["id"]: m for m in counts["marks"]}
    if sorted(marks) != [0, 1, 2, 3, 4]:
        sys.exit(f"{path}: expected marks 0-4, got {sorted(marks)}")

    def region(a: int, b: int, per: int = 1) -> dict:
        main = {c: (marks[b][f"main_{c}"] - marks[a][f"main_{c}"]) / per for c in CLASSES}
        return main | {"all_threads_insns": (marks[b]["insns"] - marks[a]["insns"]) / per}

    return {"vcpus": counts["vcpus"], "process_insns": counts["main_insns"],
            "process_insns_all_threads": counts["insns"], "open": region(0, 1), "first_predict": region(1, 2),
            "predict": region(2, 3, max(n, 1)), "invoke": region(3, 4, max(n, 1))}


REGIONS = ("open", "first_predict", "predict", "invoke")


def repeat_check(first: dict, again: dict) -> dict:
    """Per region: identical counts in every class?, and the largest relative difference of the instructions."""
    return {k: {"identical": all(first[k][c] == again[k][c] for c in CLASSES),
                "insns": [first[k]["insns"], again[k]["insns"]],
                "rel_diff": abs(first[k]["insns"] - again[k]["insns"]) / first[k]["insns"]} for k in REGIONS}


def x86_bench(task: str, work: Path, runs: int) -> dict:
    out = work / f"x86_bench_{task}.json"
    cmd = ["nice", "-n", "10", str(EDGEEMO), "bench", *MODELS[task], *BENCH_DATA[task], "--threads", "1",
           "--runs", str(runs), "--warmup", "20", "--no-plots", "--json", str(out)]
    subprocess.run(cmd, check=True, cwd=REPO, capture_output=True)
    report = json.loads(out.read_text())
    return {m["model"]: {"latency_ms": m["latency_ms"], "invoke_raw_ms": m["invoke_raw_ms"], "accuracy": m["accuracy"],
                         "backend": m["backend"]} for m in report["models"]} | {"_cmd": " ".join(cmd[3:])}


def versions() -> dict:
    info = subprocess.run([str(ENV), "info"], capture_output=True, text=True, check=True).stdout.splitlines()
    return {"aarch64_env_info": info, "host_machine": platform.machine(), "host_cpu": _host_cpu()}


def _host_cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _fmt(v: float) -> str:
    return f"{v / 1e6:.2f} M" if v >= 1e5 else f"{v:.0f}"


def render_md(res: dict) -> str:
    lines = [
        "# edgeemo on aarch64 under emulation: smoke and deterministic ARM cost",
        "",
        f"Date (UTC): {res['date_utc']}. Produced by `benchmarks/experiments/aarch64_smoke.py` and "
        "`benchmarks/experiments/aarch64_cost.py` "
        "(commands below). Host: " + res["versions"]["host_cpu"] + ".",
        "",
    ]
    if res.get("note"):
        lines += [f"Note: {res['note']}.", ""]
    lines += ["## How it runs", "",
              "`benchmarks/experiments/aarch64_env.sh build` (idempotent, cached in `~/.cache/edgeemo-aarch64`, "
              "not in the repo) "
              "makes an aarch64 userland from registry packages only: `dpkg --add-architecture arm64`, "
              "`apt-get download` of Debian bookworm's arm64 libc6, libstdc++6, python3.11-minimal, "
              "libpython3.11-stdlib and their libraries, unpacked with `dpkg -x`; "
              "`pip download --platform manylinux_2_28_aarch64 (and 2014/2_17/2_27) --only-binary=:all: "
              "--python-version 3.11` of the device dependencies, installed "
              "with `pip install --target`; edgeemo itself from the working tree through a symlink tree that "
              "reproduces pyproject's package-dir mapping (edgeemo.device -> device/ ...). It runs with Debian's "
              "`qemu-user` (`qemu-aarch64 -L <root> -cpu cortex-a72|cortex-a76`), each profile with the board's "
              "`/proc/cpuinfo` (onnxruntime's cpuinfo segfaults on the host's x86 one). The instruction counter "
              "(`benchmarks/experiments/aarch64_insn_plugin.c`) is a TCG plugin built with gcc against "
              "`qemu-plugin.h` from "
              "Debian's qemu source package (`apt-get source --download-only qemu`, deb-src entry added).", ""]
    smoke = res.get("smoke")
    if smoke:
        lines += ["## Smoke: x86 vs aarch64 predictions", "",
                  f"Pass rule: same inputs -> identical top-1 on every sample, int8 raw outputs within "
                  f"{smoke['int8_lsb']} LSB, float probabilities within {smoke['prob_tol']:g}. Result: "
                  f"**{'pass' if smoke['pass'] else 'FAIL'}**.", "",
                  "| cpu | model | n | inputs max abs diff (aarch64 preprocessing vs x86) | top-1 agree (same inputs) "
                  "| raw outputs identical | raw max abs diff | prob max abs diff | top-1 agree (own preprocessing) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in smoke["rows"]:
            lines.append(f"| {r['cpu']} | {r['model']} | {r['n']} | {r['inputs_max_abs_diff']:.3g} | "
                         f"{r['same_inputs_top1_agree']}/{r['n']} | {r['same_inputs_raw_identical_samples']}/{r['n']} "
                         f"({r['raw_dtype']}) | {r['same_inputs_raw_max_abs_diff']:.3g} | "
                         f"{r['same_inputs_prob_max_abs_diff']:.3g} | {r['own_inputs_top1_agree']}/{r['n']} |")
        for r in smoke.get("demo", []):
            lines += ["", f"`edgeemo run --demo --threads 1 --json` on {r['cpu']}: labels reported (times) "
                          f"{r['aarch64_labels']}; on x86 {r['x86_labels']}: most frequent face and voice labels "
                          f"{'the same' if r['pass'] else 'DIFFERENT'}."]
        lines.append("")
    lines += ["## Instructions per inference (guest AArch64, 1 thread; repeatable to about 1e-6)", "",
              f"N = {res['n']} batch-1 inferences per region after one untimed first predict. `predict` = "
              "edgeemo's `EmotionModel.predict` (quantise, interpreter, dequantise); `invoke` = the bare "
              "interpreter call on a prepared input. SIMD = Advanced SIMD & FP data-processing instructions; "
              "dot = SDOT/UDOT.", "",
              "| cpu | model | backend | predict insns | invoke insns | invoke SIMD&FP dp | invoke ld/st | "
              "invoke SDOT/UDOT | first predict | open model | x86 p50 ms (bench, 1 thread) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["counts"]:
        x86 = res["x86"].get(task_of(r["model"]), {}).get(r["model"], {})
        p50 = x86.get("latency_ms", {}).get("p50")
        lines.append(
            f"| {r['cpu']} | {r['model']} | {r['backend']} | {_fmt(r['predict']['insns'])} | "
            f"{_fmt(r['invoke']['insns'])} | {_fmt(r['invoke']['simd_fp_dp'])} | {_fmt(r['invoke']['ldst'])} | "
            f"{_fmt(r['invoke']['dot'])} | {_fmt(r['first_predict']['insns'])} | {_fmt(r['open']['insns'])} | "
            f"{'' if p50 is None else f'{p50:.3f}'} |")
    lines += ["", "## int8 / float32 ratios", "",
              "ARM: instructions per bare interpreter call (and per full predict). x86: median batch-1 latency "
              "from `edgeemo bench --threads 1` (predict; bare interpreter call in brackets).", "",
              "| ratio | " + " | ".join(f"ARM {c} invoke (predict)" for c in res["cpus"]) + " | x86 wall-clock p50 |",
              "|---|" + "---|" * (len(res["cpus"]) + 1)]
    for row in res["ratios"]:
        arm = " | ".join(f"{row[c]['invoke']:.3f} ({row[c]['predict']:.3f})" for c in res["cpus"])
        x86 = row.get("x86")
        x86s = "" if x86 is None else f"{x86['predict']:.3f} ({x86['invoke']:.3f})"
        lines.append(f"| {row['num']} / {row['den']} | {arm} | {x86s} |")
    checks = res.get("checks")
    if checks:
        rep = checks["repeat"]
        lines += ["", "## Determinism checks", "",
                  f"{checks['model']} on {checks['cpu']}, run twice (whole-process totals "
                  f"{checks['repeat_process_insns']}). Instructions per region, first run vs second:", "",
                  "| region | first | second | identical in every class | relative difference |",
                  "|---|---|---|---|---|"]
        lines += [f"| {k} | {v['insns'][0]:.1f} | {v['insns'][1]:.1f} | {v['identical']} | {v['rel_diff']:.1e} |"
                  for k, v in rep.items()]
        lines += ["", f"Baseline method: (process total with N={res['n']} - process total with N=0) / N = "
                  f"{_fmt(checks['per_inference_from_baseline'])} instructions per (predict + bare call), against "
                  f"{_fmt(checks['per_inference_from_marks'])} from the markers."]
    if FINDINGS.is_file():
        lines += ["", FINDINGS.read_text().rstrip()]
    lines += ["", NOTES]
    lines += ["", "## Commands", "", "From the repository root (the datasets in `../shared/data`):", "", "```"]
    lines += OTHER_COMMANDS + res["commands"] + ["```", "", "## Versions", "", "```"]
    lines += res["versions"]["aarch64_env_info"] + ["```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpus", nargs="+", default=["cortex-a72", "cortex-a76"])
    p.add_argument("--models", nargs="+", default=[m for ms in MODELS.values() for m in ms])
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--x86-runs", type=int, default=200)
    p.add_argument("--no-x86", action="store_true")
    p.add_argument("--no-checks", action="store_true", help="skip the repeat and N=0 runs")
    p.add_argument("--work", type=Path, default=Path.home() / ".cache" / "edgeemo-aarch64" / "smoke")
    p.add_argument("--smoke-json", type=Path, default=None)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--md", type=Path, default=None)
    p.add_argument("--from-json", type=Path, default=None,
                   help="start from an earlier --json: re-render --md, and with --add-x86 (re)measure x86 first")
    p.add_argument("--add-x86", action="store_true")
    args = p.parse_args(argv)
    if args.from_json:
        res = json.loads(args.from_json.read_text())
        if args.add_x86:
            for task in sorted({task_of(r["model"]) for r in res["counts"]}):
                res["x86"][task] = x86_bench(task, args.work, args.x86_runs)
            res["commands"] = res["commands"][:1] + [v["_cmd"] for v in res["x86"].values()]
    else:
        subprocess.run([str(ENV), "build"], check=True)
        res = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "n": args.n, "cpus": args.cpus,
               "counts": [], "x86": {}}
        for cpu in args.cpus:
            for model in args.models:
                r = count(model, cpu, args.n, args.work)
                print(f"{cpu} {model}: {r['invoke']['insns'] / 1e6:.2f} M insns/invoke, "
                      f"{r['predict']['insns'] / 1e6:.2f} M/predict, vcpus {r['vcpus']}", flush=True)
                res["counts"].append(r)
    if not args.from_json and not args.no_checks:
        # Checks on the first model and CPU: a repeat gives identical counts, and whole-process totals of a run
        # with N inferences minus a run with 0 agree with the marked regions.
        cpu0, m0 = args.cpus[0], args.models[0]
        first = next(r for r in res["counts"] if r["cpu"] == cpu0 and r["model"] == m0)
        again = count(m0, cpu0, args.n, args.work, args.work / "repeat")
        zero = count(m0, cpu0, 0, args.work)
        res["checks"] = {
            "model": m0, "cpu": cpu0,
            "repeat": repeat_check(first, again),
            "repeat_process_insns": [first["process_insns"], again["process_insns"]],
            "baseline_n0_process_insns": zero["process_insns"],
            "per_inference_from_baseline": (first["process_insns"] - zero["process_insns"]) / args.n,
            "per_inference_from_marks": first["predict"]["insns"] + first["invoke"]["insns"],
        }
        print("checks:", res["checks"], flush=True)
    if not args.from_json:
        if not args.no_x86:
            for task in sorted({task_of(m) for m in args.models}):
                res["x86"][task] = x86_bench(task, args.work, args.x86_runs)
        res["versions"] = versions()
        res["commands"] = [" ".join(["nice -n 10 benchmarks/experiments/aarch64_env.sh count OUT.json -cpu CPU",
                                     "benchmarks/experiments/aarch64_probe.py count --model MODEL",
                                     "--inputs x86_TASK.npz --n", str(args.n)])]
        res["commands"] += [v["_cmd"] for v in res["x86"].values()]
    by = {(r["cpu"], r["model"]): r for r in res["counts"]}
    res["ratios"] = []
    for num, den in RATIOS:
        if not all((c, m) in by for c in res["cpus"] for m in (num, den)):
            continue
        row = {"num": num, "den": den}
        for c in res["cpus"]:
            row[c] = {k: by[(c, num)][k]["insns"] / by[(c, den)][k]["insns"] for k in ("invoke", "predict")}
        x86 = res["x86"].get(task_of(num), {})
        if num in x86 and den in x86:
            row["x86"] = {"predict": x86[num]["latency_ms"]["p50"] / x86[den]["latency_ms"]["p50"],
                          "invoke": x86[num]["invoke_raw_ms"]["p50"] / x86[den]["invoke_raw_ms"]["p50"]}
        res["ratios"].append(row)
    if args.smoke_json and args.smoke_json.is_file():
        res["smoke"] = json.loads(args.smoke_json.read_text())
    if args.json:
        res["models_sha256"] = shipped_sha256(args.models)
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    if args.md:
        args.md.write_text(render_md(res))
    for row in res["ratios"]:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
