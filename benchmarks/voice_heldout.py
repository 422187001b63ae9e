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

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results"
MODELS = ("voice-float", "voice", "voice-onnx")
SETS = {
    "ravdess_17-20": ("ravdess", "17,18,19,20", "RAVDESS actors 17-20 (speaker-independent, held out)"),
    "cremad_1009-1010": ("cremad", "1009,1010", "CREMA-D actors 1009-1010 (speaker-independent, held out)"),
}


def training_lines() -> list[str]:
    manifest = json.loads((ROOT / "edgeemo" / "models" / "voice" / "voice-int8.tflite.json").read_text())
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
    args = parser.parse_args()
    plots = RESULTS / "voice"
    plots.mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).parent / "edgeemo"
    for name, (corpus, speakers, title) in SETS.items():
        out_json = RESULTS / f"voice_{name}.json"
        cmd = ["edgeemo", "bench", *MODELS, "--data", f"../shared/data/{corpus}", "--speakers", speakers]
        cmd += ["--threads", str(args.threads), "--runs", str(args.runs)]
        cmd += ["--json", str(out_json.relative_to(ROOT)), "--plot-dir", str((plots / name).relative_to(ROOT))]
        subprocess.run([str(exe), *cmd[1:]], cwd=ROOT, check=True)
        report = json.loads(out_json.read_text())
        trained_on = json.loads((ROOT / "edgeemo" / "models" / "voice" / "voice-int8.tflite.json").read_text())
        if not any(corpus in str(d) for d in trained_on["training"].get("data") or []):
            title = title.replace("speaker-independent, held out", "CROSS-CORPUS: the model never heard this corpus")
        intro = [*([f"Note: {args.note}", ""] if args.note else []), *training_lines()]
        outro = [
            "Prior work (../shared/reference/prior-work.md): small MFCC models reach 62-65% UAR speaker-independent",
            "on RAVDESS; random-split papers claim 90%+ but leak speakers.",
        ]
        md = render_markdown(report, f"Voice: {title}", " ".join(cmd), intro, outro, "clips", f"voice/{name}/")
        (RESULTS / f"voice_{name}.md").write_text(md)
        print(f"wrote {out_json} and {RESULTS / f'voice_{name}.md'}")


if __name__ == "__main__":
    main()
