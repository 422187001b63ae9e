"""Benchmark the shipped voice models on the held-out speakers and write the committed results.

    .venv/bin/python benchmarks/voice_heldout.py [--threads 1] [--runs 300]

Runs ``edgeemo bench voice-float voice voice-onnx`` (the same command a user runs) on
RAVDESS actors 17-20 and CREMA-D actors 1009-1010 and writes
benchmarks/results/voice_<set>.{json,md} and the confusion matrices in
benchmarks/results/voice/. Those speakers are never used for training, validation or
tuning (speaker-independent protocol of ../shared/data/README.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from edgeemo.report import render_markdown
from edgeemo.shipped import resolve_model

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
MODELS = ("voice-float", "voice", "voice-onnx")
SETS = {
    "ravdess_17-20": ("ravdess", "17,18,19,20", "RAVDESS actors 17-20 (speaker-independent, held out)"),
    "cremad_1009-1010": ("cremad", "1009,1010", "CREMA-D actors 1009-1010 (speaker-independent, held out)"),
}


def manifest_of(spec: str) -> dict:
    """The manifest of a shipped name or model file (paths relative to the repository root)."""
    path = Path(spec) if Path(spec).suffix else resolve_model(spec)
    path = path if path.is_absolute() else ROOT / path
    return json.loads(path.with_name(path.name + ".json").read_text())


def training_lines(manifest: dict) -> list[str]:
    training, pre = manifest["training"], manifest["preprocessing"]
    split = training.get("split", {})
    return [
        f"Model: `{training.get('arch')}` ({training.get('params'):,} parameters), trained on "
        f"{', '.join(map(str, training.get('data') or []))}; protocol: {split.get('protocol')}; "
        f"test speakers: {', '.join(split.get('test', {}).get('speakers', []))}.",
        f"Front end: {pre['window_s']} s window after VAD trim, {pre['n_mfcc']} MFCC"
        f"{' + deltas' if pre['deltas'] else ''}{', per-clip CMN' if pre.get('cmn') else ''}, "
        "standardised with training-set statistics (all stored in the manifest).",
        "No-speech clips (VAD) are not scored; their count is in the JSON (`data.no_speech_clips`).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--note", default="", help="A line about the conditions, written into the report.")
    parser.add_argument("--models", default=",".join(MODELS), help="Comma-separated shipped names or model files.")
    parser.add_argument("--name", default="voice", help="Result prefix: <name>_<set>.{md,json}, <name>/<set>/*.png")
    parser.add_argument("--sets", default=",".join(SETS), help=f"Held-out sets: {', '.join(SETS)}")
    args = parser.parse_args()
    models = args.models.split(",")
    manifest = manifest_of(models[-1])
    plots = RESULTS / args.name
    plots.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).parent / "edgeemo"
    for name in args.sets.split(","):
        corpus, speakers, title = SETS[name]
        out_json = RESULTS / f"{args.name}_{name}.json"
        cmd = ["edgeemo", "bench", *models, "--data", f"../shared/data/{corpus}", "--speakers", speakers]
        cmd += ["--threads", str(args.threads), "--runs", str(args.runs)]
        cmd += ["--json", str(out_json.relative_to(ROOT)), "--plot-dir", str((plots / name).relative_to(ROOT))]
        subprocess.run([str(exe), *cmd[1:]], cwd=ROOT, check=True)
        report = json.loads(out_json.read_text())
        if not any(corpus in str(d) for d in manifest["training"].get("data") or []):
            title = title.replace("speaker-independent, held out", "CROSS-CORPUS: the model never heard this corpus")
        intro = [*([f"Note: {args.note}", ""] if args.note else []), *training_lines(manifest)]
        outro = [
            "Prior work (../shared/reference/prior-work.md): small MFCC models reach 62-65% UAR speaker-independent",
            "on RAVDESS; random-split papers claim 90%+ but leak speakers.",
        ]
        md = render_markdown(report, f"Voice: {title}", " ".join(cmd), intro, outro, "clips", f"{args.name}/{name}/")
        (RESULTS / f"{args.name}_{name}.md").write_text(md)
        print(f"wrote {out_json} and {RESULTS / f'{args.name}_{name}.md'}")


if __name__ == "__main__":
    main()
