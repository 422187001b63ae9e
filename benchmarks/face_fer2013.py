"""Benchmark the shipped face models on FER2013 PublicTest and write the committed results.

    .venv/bin/python benchmarks/face_fer2013.py [--threads 1] [--data ../shared/data/fer2013/publictest]

Runs ``edgeemo bench face face-float face-onnx`` (the same command a user runs) and writes
benchmarks/results/face_fer2013_publictest.{json,md} and the confusion matrices in
benchmarks/results/face_fer2013/. PublicTest is never used for training or tuning:
validation for checkpoints and the LR schedule is cut from train/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from edgeemo.report import render_markdown

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MODELS = ("face-float", "face", "face-onnx")


def render(report: dict, command: str, note: str = "", plots: str = "face_fer2013/") -> str:
    return render_markdown(
        report,
        "Face: FER2013 PublicTest (3,589 faces, held out)",
        command,
        intro=[
            *([f"Note: {note}", ""] if note else []),
            "Training: FER2013 `train/` minus a 10% stratified validation slice (checkpoint, early stopping and",
            "LR schedule use that slice only); PublicTest is only measured. See each manifest's `training`.",
        ],
        outro=[
            "Prior work on FER2013 (from ../shared/reference/prior-work.md, their own splits): seed custom CNNs "
            "64-68%,",
            "mini-Xception 66%, VGG-style single models ~73%.",
        ],
        plot_prefix=plots,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fer2013" / "publictest"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--note", default="", help="A line about the conditions, written into the report.")
    parser.add_argument("--models", default=",".join(MODELS), help="Comma-separated shipped names or model files.")
    parser.add_argument("--name", default="face_fer2013", help="Result name: <name>_publictest.{md,json}, <name>/*.png")
    args = parser.parse_args()
    out_json = RESULTS / f"{args.name}_publictest.json"
    plots = RESULTS / args.name
    plots.mkdir(parents=True, exist_ok=True)
    cmd = ["edgeemo", "bench", *args.models.split(","), "--data", args.data, "--threads", str(args.threads)]
    cmd += [
        "--runs",
        str(args.runs),
        "--json",
        str(out_json.relative_to(ROOT)),
        "--plot-dir",
        str(plots.relative_to(ROOT)),
    ]
    exe = Path(sys.executable).parent / "edgeemo"
    subprocess.run([str(exe), *cmd[1:]], cwd=ROOT, check=True)
    report = json.loads(out_json.read_text())
    shown = " ".join(c if not c.startswith(str(ROOT.parent)) else "../shared/data/fer2013/publictest" for c in cmd)
    out_md = RESULTS / f"{args.name}_publictest.md"
    out_md.write_text(render(report, shown, args.note, f"{args.name}/"))
    print(f"wrote {out_json} and {out_md}")


if __name__ == "__main__":
    main()
