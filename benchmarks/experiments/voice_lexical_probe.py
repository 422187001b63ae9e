"""How much of what a clip *says* do voice features carry? Within each corpus, name the sentence from them.

    nice -n 5 .venv/bin/python benchmarks/experiments/voice_lexical_probe.py

Reads the caches of ``voice_functionals.py`` (MFCC functionals + pitch) and ``voice_speech_embedding.py``
(the pretrained speech embedding), which hold the same clips in the same order. The sentence of each clip
comes from its file name (``edgeemo.voice_datasets.clip_sentence``: RAVDESS' 2 statements, CREMA-D's 12
sentences, TESS' 200 words). A standardised logistic regression is trained and tested on different
speakers (RAVDESS 17-20 and CREMA-D 1008-1010 tested), or on a random half of TESS (one speaker).
Writes ``voice_lexical_probe.{md,json}``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from voice_functionals import CORPORA, DATA, ROOT, write_screen


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from edgeemo.audio import load_audio, trim_silence
    from edgeemo.voice_datasets import clip_sentence, load_voice

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functionals-cache", type=Path, default=Path("/tmp/voice_functionals.npz"))
    parser.add_argument("--embedding-cache", type=Path, default=Path("/tmp/voice_speech_embedding.npz"))
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results" / "experiments")
    args = parser.parse_args()
    f = np.load(args.functionals_cache, allow_pickle=True)
    e = np.load(args.embedding_cache, allow_pickle=True)
    groups = f["groups"]
    ds = load_voice([DATA / c for c in CORPORA])
    paths = [p for p in ds.paths if trim_silence(load_audio(p)[0]) is not None]  # the caches' clips
    if len(paths) != len(groups) or not np.array_equal(e["groups"], groups):
        raise SystemExit(f"{args.functionals_cache} and {args.embedding_cache} do not hold the same clips")
    sentence = np.array([clip_sentence(p) for p in paths], dtype=object)
    sets = {"MFCC functionals + pitch (the shipped kind of features)": np.hstack([f["mfcc"], f["pitch"]]),
            "pitch + loudness only": f["pitch"], "speech embedding (pretrained)": e["emb"]}
    rows = []
    for corpus, n_test in (("ravdess", 4), ("cremad", 3), ("tess", 0)):
        m = np.array([g.startswith(f"{corpus}:") for g in groups])
        if n_test:
            test = m & np.isin(groups, sorted(set(groups[m]))[-n_test:])
        else:
            idx = np.random.default_rng(0).permutation(np.flatnonzero(m))
            test = np.zeros(len(m), bool)
            test[idx[len(idx) // 2:]] = True
        train = m & ~test
        majority = max(float(np.mean(sentence[test] == s)) for s in set(sentence[test]))
        row = {"corpus": corpus, "sentences": len(set(sentence[m])), "majority": majority, "accuracy": {}}
        for name, x in sets.items():
            scale = StandardScaler().fit(x[train])
            clf = LogisticRegression(C=0.1, max_iter=3000).fit(scale.transform(x[train]), sentence[train])
            row["accuracy"][name] = float(np.mean(clf.predict(scale.transform(x[test])) == sentence[test]))
        rows.append(row)
    lines = ["# Voice: which sentence a clip says, named from its features (issue 26, a measurement)", "",
             "`benchmarks/experiments/voice_lexical_probe.py` (see its docstring): accuracy of naming the sentence "
             "within a corpus, on speakers the probe did not train on (TESS: a random half).", "",
             "| features | " + " | ".join(f"{r['corpus']}: {r['sentences']} sentences (majority {r['majority']:.1%})"
                                      for r in rows) + " |", "|---" * (len(rows) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(f"{r['accuracy'][name]:.1%}" for r in rows) + " |" for name in sets]
    write_screen(args.out_dir, "voice_lexical_probe", lines, rows, "features of the clips, no shipped model")


if __name__ == "__main__":
    main()
