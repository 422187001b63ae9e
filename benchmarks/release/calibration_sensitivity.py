"""Calibration-set size sensitivity of the shipped int8 models (face: FER2013 PublicTest;
voice: its run's held-out speakers).

    nice -n 10 .venv/bin/python benchmarks/release/calibration_sensitivity.py --task face [--sizes 50,200,1000]
    nice -n 10 .venv/bin/python benchmarks/release/calibration_sensitivity.py --task voice [--sizes 50,200,780]

Re-exports the shipped model's training run (named in the shipped int8 manifest, e.g.
``runs/fer-custom-cnn-ft``, whose ``best.keras`` is the parent of
``edgeemo/models/face/face-*.tflite``) once per calibration size N with the existing command

    edgeemo export runs/fer-custom-cnn-ft --format tflite --calib-size N --out <work>/calN --name calN --force

and reads what the export measured into each int8 manifest's ``metrics`` (int8 and float
accuracy on the run's test split = PublicTest, top-1 agreement with the float parent,
per-class recall). ``--force`` keeps a model that fails the export's accuracy gate,
so every size is reported; the gate result is recorded. The shipped model (N=500) is listed
from its own manifest. Exports need TensorFlow (~1-2 min each); the exported models stay in
``--work`` (outside the repository). Writes benchmarks/results/calibration_sensitivity.{md,json} (face)
or calibration_sensitivity_voice.{md,json}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from edgeemo.shipped import shipped_sha256

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "release"
MODELS = ROOT / "edgeemo" / "models"
TITLES = {
    "face": "Face int8: calibration-set size sensitivity (FER2013 PublicTest, 3,589 faces)",
    "voice": "Voice int8: calibration-set size sensitivity "
             "(held-out speakers: RAVDESS 17-20, CREMA-D 1009-1010, SAVEE JE; 518 clips)",
}
GATE_POINTS = {"face": 1.0, "voice": 1.5}  # the export's default accuracy gate (export.verify.MAX_DROP_BY_TASK)
# what one test sample weighs, per class (the test splits' supports)
SAMPLE_NOTES = {
    "face": "Per-class changes are in faces of the test split: one disgust face (56) is 1.79 points, one fear face "
    "(496) 0.20 points.",
    "voice": "Per-class changes are in clips of the test split: one clip is 3.13 points (32 per emotion) or 2.08 "
    "points (48 neutral, calm merged).",
}
DEFAULT_WORK = Path.home() / ".cache" / "edgeemo-bench" / "calibration"


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export(run: str, n: int, work: Path, reuse: bool, task: str = "face") -> Path:
    """Export ``run`` with ``--calib-size n`` into ``work/cal{n}``; return the int8 manifest path."""
    out = work / task / f"cal{n}"
    manifest = out / f"cal{n}-int8.tflite.json"
    if reuse and manifest.exists():
        print(f"[cal {n}] reusing {manifest}", flush=True)
        return manifest
    exe = Path(sys.executable).parent / "edgeemo"
    cmd = [str(exe), "export", run, "--format", "tflite", "--calib-size", str(n), "--out", str(out)]
    cmd += ["--name", f"cal{n}", "--force"]
    print(f"[cal {n}] {' '.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True)
    print(f"[cal {n}] exported in {time.perf_counter() - t0:.0f} s", flush=True)
    return manifest


def summarise(manifest_path: Path, calib_n: int, source: str, task: str = "face") -> dict[str, Any]:
    """The numbers of one int8 export, from its manifest (metrics measured by the export)."""
    m = json.loads(manifest_path.read_text())
    metrics = m["metrics"]
    q = m["quantization"]
    model = manifest_path.with_suffix("")  # drop .json
    parent = model.parent / q["parent"]["file"]
    rec_f, rec_q = metrics["per_class_recall_float"], metrics["per_class_recall_quantized"]
    return {
        "calib_n": calib_n,
        "source": source,
        "model_file": model.name,
        "size_bytes": model.stat().st_size if model.exists() else m.get("size_bytes"),
        "calibration": q.get("calibration"),
        "parent_sha256": q["parent"]["sha256"],
        "parent_matches_shipped_float": parent.exists()
        and sha256(parent) == sha256(MODELS / task / f"{task}-float.tflite"),
        "n_test": metrics["n"],
        "accuracy_float": metrics["accuracy_float"],
        "accuracy_int8": metrics["accuracy_quantized"],
        "accuracy_drop_points": 100 * (metrics["accuracy_float"] - metrics["accuracy_quantized"]),
        "macro_f1_float": metrics["macro_f1_float"],
        "macro_f1_int8": metrics["macro_f1_quantized"],
        "top1_agreement": metrics["top1_agreement"],
        "max_abs_prob_diff": metrics["max_abs_prob_diff"],
        "mean_abs_prob_diff": metrics.get("mean_abs_prob_diff"),
        "per_class_recall_float": rec_f,
        "per_class_recall_int8": rec_q,
        "per_class_recall_change_points": {c: 100 * (rec_q[c] - rec_f[c]) for c in rec_f},
        "gate_passed": metrics.get("gate", {}).get("passed"),
        "created": m.get("created"),
        "forced": metrics.get("forced"),
    }


def render(report: dict[str, Any]) -> str:
    """The committed markdown."""
    rows, task = report["rows"], report.get("task", "face")
    classes = list(rows[0]["per_class_recall_float"])
    lines = [
        f"# {TITLES[task]}",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}; edgeemo {report['edgeemo_version']}; run `{report['run']}` (parent of the shipped "
        f"{task} models); calibration: class-balanced sample of the run's train split, seed 0.",
        "",
        "Every number below was measured by `edgeemo export` itself (int8 TFLite through LiteRT vs its float",
        "TFLite parent on the run's test split) and read from the int8 manifest's `metrics`. The (shipped) row is",
        f"the shipped `{task}` model, read from `edgeemo/models/{task}/{task}-int8.tflite.json`.",
        "",
        "Exports created: " + ", ".join(f"N={r['calib_n']} {r['created']}" for r in rows) + ".",
        "",
        "| calibration N | int8 accuracy | float accuracy | int8 - float (points) | int8 macro-F1 | top-1 agreement "
        f"with float | max abs prob diff | gate (<= {GATE_POINTS[task]} pt) | same float parent as shipped |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        delta = 100 * (r["accuracy_int8"] - r["accuracy_float"])
        lines.append(
            f"| {r['calib_n']}{' (shipped)' if r['source'] == 'shipped' else ''} | {100 * r['accuracy_int8']:.2f}% | "
            f"{100 * r['accuracy_float']:.2f}% | {delta:+.2f} | {r['macro_f1_int8']:.4f} | "
            f"{100 * r['top1_agreement']:.2f}% | {r['max_abs_prob_diff']:.4f} | "
            f"{'passed' if r['gate_passed'] else 'FAILED'} | {'yes' if r['parent_matches_shipped_float'] else 'no'} |"
        )
    lines += [
        "",
        "## Per-class recall change under int8 (points vs the float parent)",
        "",
        "| class | " + " | ".join(f"N={r['calib_n']}" for r in rows) + " |",
        "|---|" + "---|" * len(rows),
    ]
    for c in classes:
        cells = [f"{r['per_class_recall_change_points'][c]:+.2f}" for r in rows]
        base = 100 * rows[0]["per_class_recall_float"][c]
        lines.append(f"| {c} (float recall {base:.1f}%) | " + " | ".join(cells) + " |")
    lines += ["", *report["notes"], ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("face", "voice"), default="face", help="Which shipped model.")
    parser.add_argument("--run", default=None, help="Training run (default: the one the shipped int8 manifest names).")
    parser.add_argument("--sizes", default="50,200,1000", help="Comma-separated calibration sizes.")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="Where the exported models go.")
    parser.add_argument("--reuse", action="store_true", help="Reuse exports already in --work.")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    task = args.task
    shipped_manifest = MODELS / task / f"{task}-int8.tflite.json"
    shipped_run = json.loads(shipped_manifest.read_text())["training"]["run"]
    run = args.run or shipped_run
    if shipped_run != run:
        print(f"warning: the shipped {task} model comes from {shipped_run}, not {run}", flush=True)
    args.work.mkdir(parents=True, exist_ok=True)
    rows = [summarise(export(run, n, args.work, args.reuse, task), n, "export", task) for n in sizes]
    shipped = summarise(
        shipped_manifest, json.loads(shipped_manifest.read_text())["quantization"]["calibration"]["n"], "shipped", task
    )
    rows = sorted([*rows, shipped], key=lambda r: (r["calib_n"], r["source"]))
    from edgeemo import __version__

    report = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "edgeemo_version": __version__,
        "command": f"nice -n 10 .venv/bin/python benchmarks/release/calibration_sensitivity.py --task {task} --sizes "
        + ",".join(map(str, sizes)),
        "task": task,
        "run": run,
        "rows": rows,
        "notes": [
            "Notes: one export per N (one class-balanced draw, seed 0); no repeated draws, so no spread is measured.",
            SAMPLE_NOTES[task],
            f"Float parent identical (sha256) to the shipped {task}-float.tflite for every row: "
            + ("yes." if all(r["parent_matches_shipped_float"] for r in rows) else "NO (see the last column)."),
        ],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "calibration_sensitivity" + ("" if task == "face" else f"_{task}")
    report["models_sha256"] = shipped_sha256([task, f"{task}-float"])
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(render(report))
    print(f"wrote {RESULTS / stem}.json and .md")


if __name__ == "__main__":
    main()
