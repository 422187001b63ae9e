"""Which eGeMAPS groups carry across corpora, and does THE front end's prosody (``edgeemo.prosody``) carry it?

    nice -n 10 .venv/bin/python benchmarks/experiments/voice_prosody.py [--cache /tmp/voice_functionals.npz]

A linear screen, as in ``voice_functionals.py`` (whose feature cache, with the opensmile eGeMAPS
functionals when they were available, this reads): each feature set standardised per speaker,
causally, with a prior of 5 clips, a logistic regression with corpus x class balanced weights; the
four leave-one-corpus-out UARs (held-out speakers excluded everywhere) and the held-out speakers.

1. eGeMAPS groups (research-only opensmile, a baseline): all 88, each group removed, and each group
   beside the 280 MFCC functionals. Shows where eGeMAPS' lead over the MFCC functionals comes from.
2. THE front end with ``AudioFeatures(prosody=True)``: the 280 MFCC functionals alone and with the 21
   prosody functionals (what ``--summary functionals --prosody`` feeds a model).
Writes ``voice_prosody.{md,json}`` to ``--out-dir``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from voice_functionals import CORPORA, DATA, ROOT, SCREEN_COLUMNS, screen, screen_cells, write_screen  # noqa: E402

EGEMAPS_GROUPS = {  # column ranges of opensmile's eGeMAPSv02 functionals, in its order
    "pitch (F0 semitones: 10)": range(0, 10), "loudness (10)": range(10, 20),
    "spectral flux, MFCC 1-4 (10)": range(20, 30), "jitter, shimmer, HNR, H1-H2, H1-A3 (10)": range(30, 40),
    "formants F1-F3 (18)": range(40, 58), "spectral balance, voiced (8)": range(58, 66),
    "flux, MFCC 1-4, voiced (10)": range(66, 76), "unvoiced balance and flux (5)": range(76, 81),
    "temporal (7)": range(81, 88),
}


def _front_end(path: str) -> np.ndarray | None:
    from edgeemo.audio import AudioFeatures, clip_features_span, load_audio
    from edgeemo.voice import clip_functionals

    feats = AudioFeatures(prosody=True)
    out = clip_features_span(load_audio(path)[0], feats)
    return None if out is None else clip_functionals(out[0], out[1], feats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/voice_functionals.npz"),
                        help="voice_functionals.py's feature cache (eGeMAPS rows are used when it has them)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results" / "experiments")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from edgeemo.voice_datasets import load_voice

    rows = []

    def add(name: str, x: np.ndarray, y: np.ndarray, groups: np.ndarray) -> None:
        r = {"features": name, "values": int(x.shape[1]), **screen(x, y, groups, "speaker", "logreg")}
        rows.append(r)
        print(f"{name}: {r['transfer_score']:.2%}", flush=True)

    if args.cache.exists():
        f = dict(np.load(args.cache, allow_pickle=True))
        if "egemaps" in f and f["egemaps"].size:
            e, m, y, g = f["egemaps"], f["mfcc"], f["labels"], f["groups"]
            add("eGeMAPS, all 88 (opensmile)", e, y, g)
            add("MFCC functionals (280; voice_functionals.py)", m, y, g)
            for name, idx in EGEMAPS_GROUPS.items():
                add(f"eGeMAPS without {name}", e[:, [i for i in range(88) if i not in idx]], y, g)
                add(f"MFCC functionals + eGeMAPS {name}", np.hstack([m, e[:, list(idx)]]), y, g)
    ds = load_voice([DATA / c for c in CORPORA])
    with Pool(2) as pool:
        vectors = pool.map(_front_end, [str(p) for p in ds.paths], chunksize=20)
    keep = np.array([v is not None for v in vectors])
    x = np.stack([v for v in vectors if v is not None])
    y, g = ds.labels[keep], ds.groups[keep]
    add("THE front end: MFCC functionals (280)", x[:, :280], y, g)
    add("THE front end: MFCC functionals + prosody functionals (301; --prosody)", x, y, g)

    lines = ["# Voice: where eGeMAPS' transfer comes from, and THE front end's prosody (issue 26)", "",
             "`benchmarks/experiments/voice_prosody.py` (a linear screen; see its docstring). Transfer score = mean "
             "of the four leave-one-corpus-out UARs.", "",
             "| features | values | " + SCREEN_COLUMNS, "|---|---|---|---|---|"]
    lines += [f"| {r['features']} | {r['values']} | " + screen_cells(r) for r in rows]
    write_screen(args.out_dir, "voice_prosody", lines, rows,
                 "measures features and classifiers fitted here, no shipped model")


if __name__ == "__main__":
    main()
