"""Benchmark the shipped face models on FER2013 PublicTest and write the committed results.

    .venv/bin/python benchmarks/suite/face_fer2013.py [--threads 1] [--data ../shared/data/fer2013/publictest]

Runs ``edgeemo bench face-float face face-float-onnx face-onnx`` (the same ``run_bench`` a
user's ``edgeemo bench`` runs, in this process) and writes
benchmarks/results/face_fer2013_publictest.{json,md} and the confusion matrices in
benchmarks/results/suite/face_fer2013/. PublicTest is never used for training or tuning:
validation for checkpoints and the LR schedule is cut from train/.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgeemo.report import render_markdown

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "fer2013" / "publictest"
RESULTS = ROOT / "benchmarks" / "results" / "suite"
MODELS = ("face-float", "face", "face-float-onnx", "face-onnx")
QUICK_PER_CLASS = 29  # --quick: 29 faces per class (56 disgust faces exist), ~200 faces


def render(report: dict, command: str, note: str = "", plots: str = "face_fer2013/") -> str:
    """The committed markdown of a face bench report."""
    n = report["data"]["n"]
    return render_markdown(
        report,
        f"Face: FER2013 PublicTest ({n:,} faces, held out)",
        command,
        intro=[
            *([f"Note: {note}", ""] if note else []),
            "Training: FER2013 `train/` minus a 10% stratified validation slice (checkpoint, early stopping and",
            "LR schedule use that slice only), plus CK+ training subjects where the manifest's `training.extra_train`",
            "names them; PublicTest is only measured. See each manifest's `training`.",
        ],
        outro=[
            "Prior work on FER2013 (from ../shared/reference/prior-work.md, their own splits): seed custom CNNs "
            "64-68%,",
            "mini-Xception 66%, VGG-style single models ~73%.",
        ],
        plot_prefix=plots,
    )


def run(
    out: Path = RESULTS,
    models: Sequence[str] = MODELS,
    name: str = "face_fer2013",
    quick: bool = False,
    threads: int = 1,
    runs: int = 500,
    note: str = "",
    data: Path = DATA,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """``edgeemo bench`` of ``models`` on PublicTest, in this process; writes
    ``<name>_publictest.{json,md}`` and ``<name>/confusion-*.png`` under ``out``; returns the report."""
    from rich.console import Console

    from edgeemo.bench import run_bench
    from edgeemo.report import write_json, write_plots

    limit = QUICK_PER_CLASS if quick else None
    runs = 50 if quick else runs
    report = run_bench(list(models), data, threads=threads, runs=runs, limit_per_class=limit, progress=say)
    out_json = out / f"{name}_publictest.json"
    write_json(report, out_json)
    write_plots(report, out / name, say)
    shown = [str(m).replace(str(ROOT) + "/", "") for m in models]
    cmd = ["edgeemo", "bench", *shown, "--data", "../shared/data/fer2013/publictest", "--threads", str(threads),
           "--runs", str(runs), *(["--limit-per-class", str(limit)] if limit else []),
           "--json", f"{name}_publictest.json", "--plot-dir", f"{name}/"]
    data_dict = json.loads(out_json.read_text())
    note = note or ("QUICK smoke run on a slice; not a result." if quick else "")
    (out / f"{name}_publictest.md").write_text(render(data_dict, " ".join(cmd), note, f"{name}/"))
    if not quick:
        Console(stderr=True).print(f"wrote {out_json}")
    return data_dict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--note", default="", help="A line about the conditions, written into the report.")
    parser.add_argument("--models", default=",".join(MODELS), help="Comma-separated shipped names or model files.")
    parser.add_argument("--name", default="face_fer2013", help="Result name: <name>_publictest.{md,json}, <name>/*.png")
    parser.add_argument("--out", type=Path, default=RESULTS, help="Results folder.")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_PER_CLASS} faces per class, 50 latency runs.")
    args = parser.parse_args()
    run(args.out, args.models.split(","), args.name, args.quick, args.threads, args.runs, args.note, args.data)
    print(f"wrote {args.out / (args.name + '_publictest.md')}")


if __name__ == "__main__":
    main()
