"""Probe run identically on x86 (the project venv) and on aarch64 (qemu-user, benchmarks/experiments/aarch64_env.sh).

Two jobs, both with 1 interpreter thread (deterministic, like a single Pi core):

``dump``: per-sample outputs of shipped models on a dataset slice, to an .npz: the inputs this machine
preprocessed (OpenCV resize / MFCC front end), float probabilities and raw model outputs (int8 for int8
TFLite) on them, and, with ``--inputs REF.npz``, the same on the reference machine's inputs (so runtime
and preprocessing differences can be told apart). ``benchmarks/experiments/aarch64_smoke.py`` compares the files.

``count``: a fixed sequence of inferences bracketed by markers that the instruction-count plugin
(benchmarks/experiments/aarch64_insn_plugin.c) turns into exact counter snapshots: a call lseek(-1, MAGIC + k, 0),
which fails with EBADF and changes nothing. Regions: 0-1 open the model, 1-2 first predict, 2-3 N
predicts (batch 1, the quantise/dequantise included), 3-4 N bare interpreter calls on prepared inputs.
Run natively it just prints wall-clock milliseconds of the same regions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

MARK_MAGIC = 0x4544474545000


def mark(k: int) -> None:
    with contextlib.suppress(OSError):
        os.lseek(-1, MARK_MAGIC + k, 0)


def _load_face_data(args: argparse.Namespace):
    from edgeemo.face_datasets import load_faces

    faces = load_faces(args.data, split=args.split, limit_per_class=args.limit_per_class)
    return faces.images, np.asarray(faces.labels)


def _preprocess(model, raw, voice_paths):
    from edgeemo.face import preprocess_faces
    from edgeemo.voice import preprocess_files

    if model.task == "voice":
        x, kept = preprocess_files(voice_paths, model.preprocessing)
        return x, kept
    return preprocess_faces(raw, model.preprocessing), np.arange(len(raw))


def _run_each(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batch-1 probabilities (as on the device) and the raw model outputs they come from.

    Exactly what ``Runner.predict`` does for one input (quantise, interpreter, dequantise), split so
    the int8 outputs are kept; one interpreter call per input (emulated float kernels are slow)."""
    from edgeemo.runtime import dequantize, quantize

    runner = model.runner
    probs, raws = [], []
    for i in range(len(x)):
        raw = np.asarray(runner.invoke_raw(quantize(x[i : i + 1].astype(np.float32), runner.input)))
        probs.append(dequantize(raw, runner.output).astype(np.float32)[0])
        raws.append(raw[0])
    return np.stack(probs), np.stack(raws)


def cmd_dump(args: argparse.Namespace) -> None:
    from edgeemo.bench import load_clips
    from edgeemo.predict import open_emotion_model

    models = [open_emotion_model(name, threads=1) for name in args.models]
    tasks = {m.task for m in models}
    if len(tasks) != 1:
        sys.exit("dump: give models of one task")
    voice_paths, raw = None, None
    if tasks == {"voice"}:
        speakers = args.speakers.split(",") if args.speakers else None
        clips = load_clips(args.data, speakers, args.limit_per_class)
        voice_paths, labels = clips.paths, np.asarray(clips.labels)
        names = np.asarray([str(p) for p in clips.paths])
    else:
        raw, labels = _load_face_data(args)
        names = np.arange(len(raw)).astype(str)
    ref = np.load(args.inputs) if args.inputs else None
    out: dict[str, np.ndarray] = {"labels": labels, "names": names}
    for name, model in zip(args.models, models, strict=True):
        x, kept = _preprocess(model, raw, voice_paths)
        out[f"x/{name}"], out[f"kept/{name}"] = x.astype(np.float32), kept
        out[f"probs/{name}"], out[f"raw/{name}"] = _run_each(model, x)
        out[f"labels_out/{name}"] = np.asarray(model.labels)
        if ref is not None:
            out[f"probs_ref/{name}"], out[f"raw_ref/{name}"] = _run_each(model, ref[f"x/{name}"])
        print(f"{name}: {len(x)} inputs", file=sys.stderr)
    out["machine"] = np.asarray(os.uname().machine)
    np.savez(args.out, **out)


def cmd_count(args: argparse.Namespace) -> None:
    from edgeemo.predict import open_emotion_model
    from edgeemo.runtime import quantize

    x = np.load(args.inputs)[f"x/{args.model}"].astype(np.float32)
    samples = [x[i % len(x) : i % len(x) + 1] for i in range(args.n)]
    times = []
    t0 = time.perf_counter()
    mark(0)
    model = open_emotion_model(args.model, backend=args.backend, threads=1)
    runner = model.runner
    prepared = [quantize(s, runner.input) for s in samples]
    mark(1)
    times.append(time.perf_counter())
    model.predict(x[:1], batch_size=1)
    mark(2)
    times.append(time.perf_counter())
    for s in samples:
        model.predict(s, batch_size=1)
    mark(3)
    times.append(time.perf_counter())
    for q in prepared:
        runner.invoke_raw(q)
    mark(4)
    times.append(time.perf_counter())
    edges = [t0, *times]
    ms = {k: (b - a) * 1e3 for k, a, b in zip(("open", "first", "predict", "invoke"), edges, edges[1:], strict=False)}
    print(json.dumps({"model": args.model, "n": args.n, "backend": runner.backend, "ms": ms}))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("dump", help="per-sample outputs of models on a dataset slice -> .npz")
    d.add_argument("--models", nargs="+", required=True)
    d.add_argument("--data", required=True)
    d.add_argument("--split", default="publictest")
    d.add_argument("--speakers", default=None)
    d.add_argument("--limit-per-class", type=int, default=10)
    d.add_argument("--inputs", type=Path, default=None, help="reference .npz whose inputs are run too")
    d.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("count", help="marked inference regions for the instruction counter")
    c.add_argument("--model", required=True)
    c.add_argument("--inputs", type=Path, required=True, help=".npz from dump holding x/<model>")
    c.add_argument("--n", type=int, default=10)
    c.add_argument("--backend", default="auto")
    args = p.parse_args(argv)
    {"dump": cmd_dump, "count": cmd_count}[args.cmd](args)


if __name__ == "__main__":
    main()
