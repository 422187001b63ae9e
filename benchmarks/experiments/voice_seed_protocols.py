"""Reproduce the seed papers' voice rows with their (leaky) protocols, labelled as such.

    .venv/bin/python benchmarks/experiments/voice_seed_protocols.py [--archs conv1d,crnn,lstm] [--epochs 60]

Trains with ``edgeemo train voice --split random`` (clip-level split: the same speakers are
on both sides, which is what the seed reports did) on
- TESS (one speaker, YAF; seed 002: Conv1D 97%, LSTM 94%, CNN+LSTM 98.2% on a random split),
- CREMA-D + SAVEE combined (seed 000: Conv1D 63.5% with augmentation, LSTM 75.8%),
and writes benchmarks/results/voice_seed_protocols.{md,json} from each run's metrics.json
(Keras float model on the run's random 20% test split). These numbers are NOT comparable
with the speaker-independent results (voice_ravdess_17-20.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = "../shared/data"
RESULTS = ROOT / "benchmarks" / "results" / "experiments"
PROTOCOLS = {
    "tess-random": ([f"{DATA}/tess"], {"conv1d": "97%", "lstm": "94%", "crnn": "98.2%"}),
    "cremad+savee-random": ([f"{DATA}/cremad", f"{DATA}/savee"], {"conv1d": "63.5%", "lstm": "75.8%"}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="conv1d,crnn")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--runs", default="runs/seed", help="Folder for the training runs (resumable).")
    args = parser.parse_args()
    exe = Path(sys.executable).parent / "edgeemo"
    rows = []
    for name, (data, seed_numbers) in PROTOCOLS.items():
        for arch in args.archs.split(","):
            run = Path(args.runs) / f"{name}-{arch}"
            first = Path(args.runs) / f"{name}-{args.archs.split(',')[0]}" / "features.npz"
            if first.is_file() and not (ROOT / run / "features.npz").exists():  # same clips: reuse the MFCCs
                (ROOT / run).mkdir(parents=True, exist_ok=True)
                shutil.copy(first, ROOT / run / "features.npz")
            cmd = ["edgeemo", "train", "voice", "--data", ",".join(data), "--split", "random", "--arch", arch]
            cmd += ["--out", str(run), "--epochs", str(args.epochs)]
            subprocess.run([str(exe), *cmd[1:]], cwd=ROOT, check=True)
            metrics = json.loads((ROOT / run / "metrics.json").read_text())
            row = {"protocol": name, "arch": arch, "command": " ".join(cmd), "seed_reported": seed_numbers.get(arch)}
            rows.append({**row, **{k: metrics[k] for k in ("accuracy", "macro_f1", "uar", "n", "params")}})
    # the runs trained here, no shipped model
    (RESULTS / "voice_seed_protocols.json").write_text(json.dumps({"models_sha256": {}, "rows": rows}, indent=2))
    lines = [
        "# Voice: the seed papers' protocols (random clip-level splits: speakers LEAK)",
        "",
        f"Date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}. Keras float model of each run on its own "
        "random 20% test split.",
        "These splits put the same speakers in train and test; compare with the seed reports only. The honest",
        "numbers are speaker-independent: see voice_ravdess_17-20.md.",
        "Data differ from the seeds': ../shared/data has CREMA-D actors 1001-1010 only (807 clips; the seed used",
        "all 7,442) and TESS's younger speaker only (1,400 clips; the seed used both speakers, 2,800).",
        "",
        "| protocol | arch | params | test clips | accuracy | macro-F1 | UAR | seed reported |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['protocol']} | {r['arch']} | {r['params']:,} | {r['n']} | {100 * r['accuracy']:.2f}% | "
                     f"{r['macro_f1']:.3f} | {r['uar']:.3f} | {r['seed_reported'] or '–'} |")
    lines += ["", "Commands:", "", *[f"- `{r['command']}`" for r in rows], ""]
    (RESULTS / "voice_seed_protocols.md").write_text("\n".join(lines))
    print(f"wrote {RESULTS / 'voice_seed_protocols.md'}")


if __name__ == "__main__":
    main()
