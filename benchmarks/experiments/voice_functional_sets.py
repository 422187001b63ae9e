"""Which utterance functionals: variants of the shipped set screened with a logistic regression.

    nice -n 10 .venv/bin/python benchmarks/experiments/voice_functional_sets.py [--cache /tmp/voice_frames.pkl]

Same protocol as ``voice_functionals.py`` (clean clips of the four corpora, per-speaker causal
standardisation with a prior of 5 clips, corpus x class balanced logistic regression, the four
leave-one-corpus-out UARs with the held-out speakers excluded). Prints one line per set.
"""

from __future__ import annotations

import argparse
import pickle
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import kurtosis, skew
from voice_functionals import CORPORA, DATA, HELD, fit_score


def diff(f: np.ndarray) -> np.ndarray:
    return np.diff(f, axis=0) if len(f) > 1 else np.zeros_like(f)


def shipped(f: np.ndarray) -> list[np.ndarray]:  # edgeemo.voice.clip_functionals
    d = diff(f)
    return [f.mean(0), f.std(0), *np.percentile(f, [10, 50, 90], axis=0), np.abs(d).mean(0), d.std(0)]


def halves_and_slope(f: np.ndarray) -> list[np.ndarray]:
    n = len(f)
    t = np.arange(n) - (n - 1) / 2
    slope = (t[:, None] * (f - f.mean(0))).sum(0) / max((t * t).sum(), 1)
    h = max(n // 2, 1)
    return [*shipped(f), slope, f[:h].mean(0) - f[h:].mean(0) if n > 1 else np.zeros(f.shape[1])]


SETS = {
    "shipped (7 per coefficient)": shipped,
    "+ 25th/75th percentiles": lambda f: [*shipped(f), *np.percentile(f, [25, 75], axis=0)],
    "+ second differences, difference percentiles": lambda f: [
        *shipped(f), np.abs(diff(diff(f))).mean(0), diff(diff(f)).std(0), *np.percentile(diff(f), [10, 90], axis=0)],
    "+ slope and half-to-half change": halves_and_slope,
    "+ skewness, kurtosis": lambda f: [*shipped(f), np.nan_to_num(skew(f, axis=0)), np.nan_to_num(kurtosis(f, axis=0))],
    "mean and std only": lambda f: [f.mean(0), f.std(0)],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/voice_frames.pkl"))
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if not args.cache.exists():
        from edgeemo.audio import clip_features_span, load_audio
        from edgeemo.voice_datasets import load_voice

        ds = load_voice([DATA / c for c in CORPORA])
        frames, keep = [], []
        for path in ds.paths:
            out = clip_features_span(load_audio(path)[0])
            keep.append(out is not None)
            if out is not None:
                frames.append(out[0][out[1][0] : out[1][1]].astype(np.float32))
        args.cache.write_bytes(pickle.dumps((frames, ds.labels[np.array(keep)], ds.groups[np.array(keep)])))
    frames, y, groups = pickle.loads(args.cache.read_bytes())
    corpus = np.array([g.split(":")[0] for g in groups])
    held = np.isin(groups, HELD)
    for name, fn in SETS.items():
        x = np.stack([np.concatenate(fn(f)) for f in frames])
        uars = [fit_score(x, y, groups, corpus, np.flatnonzero((corpus != c) & ~held),
                          np.flatnonzero((corpus == c) & ~held), "speaker", "logreg")[1] for c in CORPORA]
        print(f"{name}: {x.shape[1]} values, LOCO UAR " + " / ".join(f"{u:.1%}" for u in uars)
              + f", transfer score {np.mean(uars):.2%}", flush=True)


if __name__ == "__main__":
    main()
