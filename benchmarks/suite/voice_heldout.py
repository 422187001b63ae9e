"""Benchmark the shipped voice models on the held-out speakers and write the committed results.

    .venv/bin/python benchmarks/suite/voice_heldout.py [--threads 1] [--runs 300]

Runs ``edgeemo bench voice-float voice voice-float-onnx voice-onnx`` (the same ``run_bench``
a user's ``edgeemo bench`` runs, in this process) on
RAVDESS actors 17-20 and CREMA-D actors 1009-1010 and writes
benchmarks/results/voice_<set>.{json,md} and the confusion matrices in
benchmarks/results/suite/voice/. Those speakers are never used for training, validation or
tuning (speaker-independent protocol of ../shared/data/README.md).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgeemo.report import render_markdown
from edgeemo.shipped import resolve_model

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "suite"
MODELS = ("voice-float", "voice", "voice-float-onnx", "voice-onnx")
QUICK_PER_CLASS = 6  # --quick: the first 6 clips per class of RAVDESS 17-20 only (42 clips)
SETS = {
    "ravdess_17-20": ("ravdess", "17,18,19,20", "RAVDESS actors 17-20 (speaker-independent, held out)"),
    "cremad_1009-1010": ("cremad", "1009,1010", "CREMA-D actors 1009-1010 (speaker-independent, held out)"),
    # cross-corpus for a RAVDESS-trained model: every clip of these corpora (the title says so when it never
    # heard them); real microphones are not RAVDESS
    "savee": ("savee", "DC,JE", "SAVEE speakers DC and JE (speaker-independent, held out)"),
    "tess": ("tess", "YAF", "TESS speaker YAF (speaker-independent, held out)"),
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
        f"{' + deltas' if pre['deltas'] else ''}{', per-clip CMN' if pre.get('cmn') else ''}"
        f"{', summarised as utterance functionals' if pre.get('summary') == 'functionals' else ''}, "
        + ("adapted to each speaker's running statistics, shrunk towards the training statistics"
           if pre.get("adaptation") else "standardised with training-set statistics")
        + " (all stored in the manifest).",
        "No-speech clips (VAD) are not scored; their count is in the JSON (`data.no_speech_clips`).",
    ]


def run(
    out: Path = RESULTS,
    models: Sequence[str] = MODELS,
    name: str = "voice",
    sets: Sequence[str] = tuple(SETS),
    quick: bool = False,
    threads: int = 1,
    runs: int = 300,
    note: str = "",
    say: Callable[[str], None] = print,
) -> dict[str, dict[str, Any]]:
    """``edgeemo bench`` of ``models`` on each held-out set, in this process; writes
    ``<name>_<set>.{json,md}`` and ``<name>/<set>/confusion-*.png`` under ``out``."""
    from edgeemo.bench import run_bench
    from edgeemo.report import write_json, write_plots

    models = list(models)
    manifest = manifest_of(models[-1])
    limit = QUICK_PER_CLASS if quick else None
    runs = 50 if quick else runs
    sets = [s for s in sets if s == "ravdess_17-20"] if quick else list(sets)
    note = note or ("QUICK smoke run on a slice; not a result." if quick else "")
    reports = {}
    for set_name in sets:
        corpus, speakers, title = SETS[set_name]
        report = run_bench(models, DATA / corpus, threads=threads, runs=runs, limit_per_class=limit,
                           speakers=speakers.split(","), progress=say)
        out_json = out / f"{name}_{set_name}.json"
        write_json(report, out_json)
        write_plots(report, out / name / set_name, say)
        shown = [str(m).replace(str(ROOT) + "/", "") for m in models]
        cmd = ["edgeemo", "bench", *shown, "--data", f"../shared/data/{corpus}", "--speakers", speakers]
        cmd += ["--threads", str(threads), "--runs", str(runs), *(["--limit-per-class", str(limit)] if limit else [])]
        cmd += ["--json", out_json.name, "--plot-dir", f"{name}/{set_name}/"]
        data = json.loads(out_json.read_text())
        if not any(corpus in str(d) for d in manifest["training"].get("data") or []):
            title = title.replace("speaker-independent, held out", "CROSS-CORPUS: the model never heard this corpus")
        intro = [*([f"Note: {note}", ""] if note else []), *training_lines(manifest)]
        outro = [
            "Prior work (../shared/reference/prior-work.md): small MFCC models reach 62-65% UAR speaker-independent",
            "on RAVDESS; random-split papers claim 90%+ but leak speakers.",
        ]
        md = render_markdown(data, f"Voice: {title}", " ".join(cmd), intro, outro, "clips", f"{name}/{set_name}/")
        (out / f"{name}_{set_name}.md").write_text(md)
        reports[set_name] = data
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--note", default="", help="A line about the conditions, written into the report.")
    parser.add_argument("--models", default=",".join(MODELS), help="Comma-separated shipped names or model files.")
    parser.add_argument("--name", default="voice", help="Result prefix: <name>_<set>.{md,json}, <name>/<set>/*.png")
    parser.add_argument("--sets", default=",".join(SETS), help=f"Held-out sets: {', '.join(SETS)}")
    parser.add_argument("--out", type=Path, default=RESULTS, help="Results folder.")
    parser.add_argument("--quick", action="store_true", help=f"RAVDESS only, {QUICK_PER_CLASS} clips per class.")
    args = parser.parse_args()
    run(args.out, args.models.split(","), args.name, args.sets.split(","), args.quick, args.threads, args.runs,
        args.note)


if __name__ == "__main__":
    main()
