"""Smoke: edgeemo's device stage on aarch64 (qemu-user) gives the same predictions as on x86.

Runs ``benchmarks/experiments/aarch64_probe.py dump`` natively (the project venv) and under qemu-aarch64 for each CPU
profile (``benchmarks/experiments/aarch64_env.sh``, built first), on a small FER2013 PublicTest slice (face, face-float,
face-onnx) and RAVDESS actor 17 (voice, voice-float, voice-onnx), all with 1 interpreter thread, then compares
per sample:

- preprocessing: the aarch64 inputs (OpenCV resize, MFCC front end) against x86's;
- runtime: every model on x86's inputs on both machines: top-1, raw outputs (int8 TFLite: in quantisation
  steps, LSB), probabilities;
- end to end: top-1 with each machine's own preprocessing;
- with --demo, ``edgeemo run --demo`` (the device daemon on its built-in clip) on both: same most frequent
  face and voice labels (it is paced in real time: which frames get analysed depends on speed).

Pass: on the same inputs every model has identical top-1 on all samples, int8 outputs within --int8-lsb
quantisation steps (the number of bit-identical samples is reported) and float probabilities within
--prob-tol. Prints a table, writes --json, exits 1 on a failure.

    .venv/bin/python benchmarks/experiments/aarch64_smoke.py --json benchmarks/results/experiments/aarch64_smoke.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
ENV = REPO / "benchmarks" / "experiments" / "aarch64_env.sh"
PROBE = REPO / "benchmarks" / "experiments" / "aarch64_probe.py"
HOST_PY = REPO / ".venv" / "bin" / "python"
DATA = REPO.parent / "shared" / "data"

TASKS = {
    "face": (["face", "face-float", "face-onnx"],
             ["--data", str(DATA / "fer2013"), "--split", "publictest", "--limit-per-class", "10"]),
    "voice": (["voice", "voice-float", "voice-onnx"],
              ["--data", str(DATA / "ravdess"), "--speakers", "17", "--limit-per-class", "3"]),
}


def run(cmd: list[str], log: Path) -> float:
    t0 = time.perf_counter()
    with log.open("w") as f:
        proc = subprocess.run(["nice", "-n", "10", *cmd], stdout=f, stderr=subprocess.STDOUT, cwd=REPO)
    if proc.returncode:
        sys.exit(f"failed ({proc.returncode}): {' '.join(cmd)}; see {log}")
    return time.perf_counter() - t0


def dumps(work: Path, cpus: list[str], tasks: list[str], reuse: bool) -> dict[str, float]:
    seconds = {}
    for task in tasks:
        models, data = TASKS[task]
        ref = work / f"x86_{task}.npz"
        if not (reuse and ref.is_file()):
            seconds[f"x86/{task}"] = run([str(HOST_PY), str(PROBE), "dump", "--models", *models, *data,
                                          "--out", str(ref)], work / f"x86_{task}.log")
        for cpu in cpus:
            out = work / f"{cpu}_{task}.npz"
            if reuse and out.is_file():
                continue
            seconds[f"{cpu}/{task}"] = run([str(ENV), "python", "-cpu", cpu, str(PROBE), "dump", "--models", *models,
                                            *data, "--inputs", str(ref), "--out", str(out)], work / f"{cpu}_{task}.log")
    return seconds


def compare(ref: np.lib.npyio.NpzFile, arm: np.lib.npyio.NpzFile, model: str, int8_lsb: int,
            prob_tol: float) -> dict:
    x86_x, arm_x = ref[f"x/{model}"], arm[f"x/{model}"]
    same_kept = bool(np.array_equal(ref[f"kept/{model}"], arm[f"kept/{model}"]))
    p86, praw86 = ref[f"probs/{model}"], ref[f"raw/{model}"]
    p_ref, raw_ref = arm[f"probs_ref/{model}"], arm[f"raw_ref/{model}"]
    is_int = praw86.dtype.kind in "iu"
    raw_diff = np.abs(raw_ref.astype(np.float64) - praw86.astype(np.float64))
    top_same = p_ref.argmax(1) == p86.argmax(1)
    row = {
        "model": model,
        "n": int(len(p86)),
        "raw_dtype": str(praw86.dtype),
        "inputs_same_shape": bool(x86_x.shape == arm_x.shape) and same_kept,
        "inputs_max_abs_diff": float(np.abs(x86_x - arm_x).max()) if x86_x.shape == arm_x.shape else None,
        "inputs_identical": bool(x86_x.shape == arm_x.shape and np.array_equal(x86_x, arm_x)),
        "same_inputs_top1_agree": int(top_same.sum()),
        "same_inputs_raw_identical_samples": int((raw_diff.reshape(len(raw_diff), -1).max(1) == 0).sum()),
        "same_inputs_raw_max_abs_diff": float(raw_diff.max()),
        "same_inputs_prob_max_abs_diff": float(np.abs(p_ref - p86).max()),
    }
    if arm[f"probs/{model}"].shape == p86.shape and same_kept:
        row["own_inputs_top1_agree"] = int((arm[f"probs/{model}"].argmax(1) == p86.argmax(1)).sum())
        row["own_inputs_prob_max_abs_diff"] = float(np.abs(arm[f"probs/{model}"] - p86).max())
    else:
        row["own_inputs_top1_agree"] = None
    if is_int:  # one LSB of the output is one quantisation step of the probability (1/256 for int8 softmax)
        close = row["same_inputs_raw_max_abs_diff"] <= int8_lsb
    else:
        close = row["same_inputs_prob_max_abs_diff"] <= prob_tol
    ok = bool(top_same.all()) and close
    row["pass"] = ok
    return row


def demo_labels(path: Path) -> dict[str, dict[str, int]]:
    """How often each label was reported per modality in an ``edgeemo run --demo --json`` output (JSON lines)."""
    seen: dict[str, Counter] = {"face": Counter(), "voice": Counter(), "fused": Counter()}
    for line in path.read_text().splitlines():
        if not line.startswith("{"):
            continue
        rec = json.loads(line)
        for key, counter in seen.items():
            if isinstance(rec.get(key), dict) and rec[key].get("label"):
                counter[rec[key]["label"]] += 1
    return {k: dict(v.most_common()) for k, v in seen.items()}


def demo(work: Path, cpus: list[str]) -> list[dict]:
    """``edgeemo run --demo``: paced in real time, so which frames and audio windows get analysed depends on speed
    (emulation drops many frames as stale). Pass: it runs to completion and the most frequent face and voice
    labels are the same as on x86."""
    cmd = ["run", "--demo", "--threads", "1", "--json", "--no-http"]
    run([str(REPO / ".venv" / "bin" / "edgeemo"), *cmd], work / "x86_demo.jsonl")
    ref = demo_labels(work / "x86_demo.jsonl")
    rows = []
    for cpu in cpus:
        run([str(ENV), "edgeemo", "-cpu", cpu, *cmd], work / f"{cpu}_demo.jsonl")
        got = demo_labels(work / f"{cpu}_demo.jsonl")
        ok = all(got[k] and ref[k] and next(iter(got[k])) == next(iter(ref[k])) for k in ("face", "voice"))
        rows.append({"cpu": cpu, "x86_labels": ref, "aarch64_labels": got, "pass": ok})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpus", nargs="+", default=["cortex-a72", "cortex-a76"])
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--work", type=Path, default=Path.home() / ".cache" / "edgeemo-aarch64" / "smoke")
    p.add_argument("--reuse", action="store_true", help="keep .npz files already in --work")
    p.add_argument("--int8-lsb", type=int, default=1,
                   help="allowed int8 output difference in LSB (XNNPACK's ARM and x86 int8 kernels requantise "
                        "differently; default: 1)")
    p.add_argument("--prob-tol", type=float, default=1e-4, help="allowed probability difference, float outputs")
    p.add_argument("--demo", action="store_true",
                   help="also `edgeemo run --demo` on both (needs matplotlib's sample portrait: in the userland)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(ENV), "build"], check=True)
    seconds = dumps(args.work, args.cpus, args.tasks, args.reuse)
    rows = []
    for task in args.tasks:
        ref = np.load(args.work / f"x86_{task}.npz")
        for cpu in args.cpus:
            arm = np.load(args.work / f"{cpu}_{task}.npz")
            if str(arm["machine"]) != "aarch64":
                sys.exit(f"{cpu}_{task}.npz was not written on aarch64 ({arm['machine']})")
            for model in TASKS[task][0]:
                rows.append({"cpu": cpu, "task": task, **compare(ref, arm, model, args.int8_lsb, args.prob_tol)})
    head = (f"{'cpu':<11} {'model':<12} {'n':>3} {'inputs max|d|':>13} {'top1 same-in':>12} {'raw identical':>13} "
            f"{'raw max|d|':>10} {'prob max|d|':>11} {'top1 own-in':>11}  pass")
    print(head)
    for r in rows:
        print(f"{r['cpu']:<11} {r['model']:<12} {r['n']:>3} {r['inputs_max_abs_diff']:>13.3g} "
              f"{r['same_inputs_top1_agree']:>9}/{r['n']:<2} {r['same_inputs_raw_identical_samples']:>10}/{r['n']:<2} "
              f"{r['same_inputs_raw_max_abs_diff']:>10.3g} {r['same_inputs_prob_max_abs_diff']:>11.3g} "
              f"{r['own_inputs_top1_agree']!s:>8}/{r['n']:<2}  {'ok' if r['pass'] else 'FAIL'}")
    demo_rows = demo(args.work, args.cpus) if args.demo else []
    for r in demo_rows:
        print(f"{r['cpu']:<11} edgeemo run --demo: x86 labels {r['x86_labels']}, aarch64 {r['aarch64_labels']}  "
              f"{'ok' if r['pass'] else 'FAIL'}")
    checks = rows + demo_rows
    ok = all(r["pass"] for r in checks)
    print(f"{sum(r['pass'] for r in checks)} passed, {sum(not r['pass'] for r in checks)} failed")
    if args.json:
        from edgeemo.shipped import shipped_sha256

        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                         "int8_lsb": args.int8_lsb, "prob_tol": args.prob_tol,
                                         "seconds": seconds, "rows": rows, "demo": demo_rows,
                                         "pass": ok,
                                         "models_sha256": shipped_sha256([m for ms, _ in TASKS.values()
                                                                          for m in ms])},
                                        indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
