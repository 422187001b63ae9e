"""Do utterance functionals transfer across corpora better than a network over MFCC frames?

    nice -n 10 .venv/bin/python benchmarks/experiments/voice_functionals.py [--cache /tmp/vfunc.npz]

Per clip (clean, all four shared corpora): THE front end's MFCC frames over the speech span
(``clip_features_span``) summarised as functionals (mean, std, 10/50/90th percentiles, mean absolute
and std of frame differences: 280 values); a crude pitch and loudness summary (``librosa.yin`` F0 in
semitones over loud frames, voiced fraction, level spread, speech duration: 11 values); and, where
the ``opensmile`` package is importable, the 88 eGeMAPS functionals as the classical baseline of
issue 26 (its licence allows research use only: a baseline, never a device dependency). Install it
beside the project, e.g. ``pip install --target /tmp/osmpkg opensmile`` and ``--opensmile-path /tmp/osmpkg``.

Each set is standardised with the training statistics ("global") or per speaker, causally, in a
seeded order, shrunk towards the training statistics with a prior of 5 clips ("speaker", as the
shipped model's adaptation does to frames), then classified by a logistic regression or a small MLP
with corpus x class balanced weights. Scored as in ``voice_transfer_attempts.md``: the four
leave-one-corpus-out UARs (held-out speakers excluded everywhere) and the held-out speakers.
Writes ``voice_functionals.{md,json}`` to ``--out-dir``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
CORPORA = ("ravdess", "cremad", "tess", "savee")
HELD = ("ravdess:17", "ravdess:18", "ravdess:19", "ravdess:20", "cremad:1009", "cremad:1010")
HELD_SETS = {"RAVDESS 17-20": HELD[:4], "CREMA-D 1009-10": HELD[4:], "SAVEE JE": ("savee:JE",)}


def extract(opensmile_path: str | None) -> dict[str, np.ndarray]:
    import librosa

    from edgeemo.audio import SAMPLE_RATE, clip_features_span, load_audio, trim_silence
    from edgeemo.voice_datasets import load_voice

    smile = None
    if opensmile_path:
        sys.path.append(opensmile_path)
    try:
        import opensmile

        smile = opensmile.Smile(opensmile.FeatureSet.eGeMAPSv02, opensmile.FeatureLevel.Functionals)
    except ImportError:
        print("opensmile not importable: no eGeMAPS baseline")
    ds = load_voice([DATA / c for c in CORPORA])
    mfcc, pitch, egemaps, keep = [], [], [], []
    for i, path in enumerate(ds.paths):
        samples, _ = load_audio(path)
        out = clip_features_span(samples)
        keep.append(out is not None)
        if out is None:
            continue
        frames = out[0][out[1][0] : out[1][1]]
        diff = np.diff(frames, axis=0) if len(frames) > 1 else np.zeros_like(frames)
        mfcc.append(np.concatenate([frames.mean(0), frames.std(0), np.percentile(frames, [10, 50, 90], axis=0).ravel(),
                                    np.abs(diff).mean(0), diff.std(0)]))
        speech = trim_silence(samples)
        f0 = librosa.yin(speech, fmin=60, fmax=600, sr=SAMPLE_RATE, frame_length=1024, hop_length=160)
        db = librosa.amplitude_to_db(librosa.feature.rms(y=speech, frame_length=1024, hop_length=160)[0])
        n = min(len(f0), len(db))
        f0, db = f0[:n], db[:n]
        voiced = (db > db.max() - 25) & (f0 > 62) & (f0 < 590)
        st = 12 * np.log2(f0[voiced] / 55.0) if voiced.sum() > 2 else np.zeros(3)
        p10, p50, p90 = np.percentile(st, [10, 50, 90])
        pitch.append([st.mean(), st.std(), p10, p50, p90, p90 - p10, np.abs(np.diff(st)).mean(), voiced.mean(),
                      db.std(), np.percentile(db, 90) - np.percentile(db, 10), len(speech) / SAMPLE_RATE])
        if smile is not None:
            egemaps.append(smile.process_signal(samples, SAMPLE_RATE).values[0])
        if i % 500 == 0:
            print(f"{i}/{len(ds.paths)} clips", flush=True)
    kept = np.array(keep)
    sets = {"mfcc": np.array(mfcc), "pitch": np.array(pitch)}
    if egemaps:
        sets["egemaps"] = np.array(egemaps)
    return {**sets, "labels": ds.labels[kept], "groups": ds.groups[kept]}


def speaker_norm(x: np.ndarray, groups: np.ndarray, mu: np.ndarray, sd: np.ndarray, seed: int,
                 prior: float = 5.0) -> np.ndarray:
    """Each row standardised by its speaker's rows so far (itself included) and ``prior`` rows of (mu, sd)."""
    out = np.empty_like(x)
    rng = np.random.default_rng(seed)
    for g in np.unique(groups):
        n, s1, s2 = 0, np.zeros(x.shape[1]), np.zeros(x.shape[1])
        for i in rng.permutation(np.flatnonzero(groups == g)):
            n, s1, s2 = n + 1, s1 + x[i], s2 + x[i] ** 2
            m = (prior * mu + s1) / (prior + n)
            var = (prior * (sd**2 + mu**2) + s2) / (prior + n) - m * m
            out[i] = (x[i] - m) / np.sqrt(np.maximum(var, 1e-6))
    return out


def balanced(corpus: np.ndarray, y: np.ndarray) -> np.ndarray:
    w = np.ones(len(y))
    for c in np.unique(corpus):
        for k in np.unique(y[corpus == c]):
            m = (corpus == c) & (y == k)
            w[m] = 1.0 / m.sum()
    return w * len(y) / w.sum()


def uar(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean([(pred[y == k] == k).mean() for k in np.unique(y)]))


def fit_score(x: np.ndarray, y: np.ndarray, groups: np.ndarray, corpus: np.ndarray, train: np.ndarray,
              test: np.ndarray, norm: str, clf: str) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    mu, sd = x[train].mean(0), x[train].std(0) + 1e-6
    if norm == "global":
        xtr, xte = (x[train] - mu) / sd, (x[test] - mu) / sd
    else:
        xtr = speaker_norm(x[train], groups[train], mu, sd, seed=1)
        xte = speaker_norm(x[test], groups[test], mu, sd, seed=0)
    xtr, xte = np.clip(xtr, -6, 6), np.clip(xte, -6, 6)
    if clf == "logreg":
        model = LogisticRegression(C=0.05, max_iter=3000)
    else:
        model = MLPClassifier((128,), alpha=1.0, max_iter=300, random_state=0)
    model.fit(xtr, y[train], sample_weight=balanced(corpus[train], y[train]))
    pred = model.predict(xte)
    return float((pred == y[test]).mean()), uar(y[test], pred)


def screen(x: np.ndarray, y: np.ndarray, groups: np.ndarray, norm: str = "speaker", clf: str = "logreg") -> dict:
    """One feature set scored as ``voice_transfer_attempts.md`` scores a recipe: the four leave-one-corpus-out
    folds (held-out speakers excluded everywhere) and the held-out speakers of the all-corpora fit."""
    corpus = np.array([g.split(":")[0] for g in groups])
    held = np.isin(groups, HELD)
    loco = {c: fit_score(x, y, groups, corpus, np.flatnonzero((corpus != c) & ~held),
                         np.flatnonzero((corpus == c) & ~held), norm, clf) for c in CORPORA}
    train = np.flatnonzero(~(held | (groups == "savee:JE")))
    heldout = {k: fit_score(x, y, groups, corpus, train, np.flatnonzero(np.isin(groups, v)), norm, clf)[0]
               for k, v in HELD_SETS.items()}
    return {"loco_uar": {k: v[1] for k, v in loco.items()}, "loco_accuracy": {k: v[0] for k, v in loco.items()},
            "transfer_score": float(np.mean([v[1] for v in loco.values()])), "heldout_accuracy": heldout}


SCREEN_COLUMNS = ("LOCO UAR RAVDESS / CREMA-D / TESS / SAVEE | transfer score "
                  "| held-out accuracy RAVDESS 17-20 / CREMA-D 1009-10 / SAVEE JE |")


def screen_cells(row: dict) -> str:
    """The ``SCREEN_COLUMNS`` cells of a ``screen`` row."""
    return (" / ".join(f"{row['loco_uar'][c]:.1%}" for c in CORPORA) + f" | **{row['transfer_score']:.2%}** | "
            + " / ".join(f"{v:.1%}" for v in row["heldout_accuracy"].values()) + " |")


def write_screen(out_dir: Path, stem: str, lines: list[str], rows: list[dict], note: str) -> None:
    """``stem``.md (the lines) and ``stem``.json (the rows) in ``out_dir``; the table is printed too."""
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"models_sha256": {}, "note": note, "rows": rows}
    (out_dir / f"{stem}.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out_dir / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/voice_functionals.npz"),
                        help="features of every clip (computed once, about 5 minutes on 2 cores)")
    parser.add_argument("--opensmile-path", default=None, help="a folder holding the opensmile package")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results" / "experiments")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.cache.exists():
        f = dict(np.load(args.cache, allow_pickle=True))
    else:
        f = extract(args.opensmile_path)
        np.savez(args.cache, **f)
    y, groups = f["labels"], f["groups"]
    sets = {"MFCC functionals (280)": f["mfcc"], "pitch + loudness (11)": f["pitch"],
            "MFCC functionals + pitch (291)": np.hstack([f["mfcc"], f["pitch"]])}
    if "egemaps" in f and f["egemaps"].size:
        sets["eGeMAPS (88, opensmile; research only)"] = f["egemaps"]
    rows = []
    for name, x in sets.items():
        for norm in ("global", "speaker"):
            for clf in ("logreg", "mlp"):
                rows.append({"features": name, "norm": norm, "classifier": clf, **screen(x, y, groups, norm, clf)})
                print(name, norm, clf, f"{rows[-1]['transfer_score']:.2%}", flush=True)
    lines = ["# Voice: utterance functionals across corpora (issue 26, a lever measured)", "",
             "`benchmarks/experiments/voice_functionals.py` (clean clips; see its docstring). Transfer score = mean of "
             "the four leave-one-corpus-out UARs, as in `voice_transfer_attempts.md` (the shipped conv1d `voice`, "
             "run A: 39.56; per fold 34.0 / 28.4 / 59.4 / 36.4).", "",
             "| features | normalisation | classifier | " + SCREEN_COLUMNS, "|---|---|---|---|---|---|"]
    lines += [f"| {r['features']} | {r['norm']} | {r['classifier']} | " + screen_cells(r) for r in rows]
    write_screen(args.out_dir, "voice_functionals", lines, rows,
                 "measures features and classifiers fitted here, no shipped model")


if __name__ == "__main__":
    main()
