"""Peer comparison: the ``fer`` PyPI package (mini-Xception) vs edgeemo's face models on FER2013 PublicTest.

    nice -n 10 .venv/bin/python benchmarks/experiments/peer_fer.py [--threads 1] [--quick]

What it does, reproducibly:

1. Builds (once; idempotent, checked by a requirements marker) a SEPARATE virtualenv for fer outside the
   repository, default ``~/.cache/edgeemo-bench/fer-venv``, with exactly these commands::

       python -m venv ~/.cache/edgeemo-bench/fer-venv
       ~/.cache/edgeemo-bench/fer-venv/bin/pip install --no-deps fer==25.10.3
       ~/.cache/edgeemo-bench/fer-venv/bin/pip install ai-edge-litert==<ours> opencv-python-headless==<ours> \\
           numpy==<ours> pillow requests "setuptools<81"

   (fer's own pins pull TensorFlow, facenet-pytorch/torch, moviepy, pandas, matplotlib; none is needed to
   classify a face crop with its TFLite file. The runtime versions are pinned to this venv's, so both sides
   run the same LiteRT.)
2. Runs a worker in that venv (this file with ``--worker``). It imports fer's real ``fer/fer.py`` with a tiny
   ``tensorflow`` stand-in whose ``tf.lite.Interpreter`` is ai-edge-litert's Interpreter (fer 25.10.3 defaults
   to ``use_tflite=True`` and only uses ``tf.lite.Interpreter`` then) and records every tensor fer feeds and
   reads. For every crop it runs fer's own ``FER.detect_emotions(path, face_rectangles=[(10, 10, 28, 28)])``:
   that box, after fer's ``tosquare``, its (10, 10) offsets and its 40-px padding, selects exactly the whole
   48x48 crop, so fer's face detector is bypassed and fer's own code preprocesses the face. The worker checks
   that ``fer_preprocess`` below (used for timing) produces bit-identical input tensors and outputs.
3. Scores edgeemo's ``face`` (int8 TFLite) and ``face-float`` on the same decoded crops through
   ``edgeemo.predict.open_face_model`` + ``edgeemo.face.preprocess_faces``.
4. Optionally loads fer's Keras weights (``emotion_model.hdf5``) with this venv's TensorFlow in a subprocess
   to check that fer's TFLite file reproduces them (accuracy and top-1 agreement).
5. Times per-face latency (batch 1, after warm-up, the same loop for both): from a decoded 48x48 uint8 gray
   crop, each one's own preprocessing + the model call (fer: set_tensor/invoke/get_tensor as in fer's
   ``_classify_emotions``; edgeemo: ``Runner.predict`` = int8 quantise + set_tensor/invoke/get_tensor +
   dequantise). Rounds alternate between the two processes so machine load hits both alike.

Writes benchmarks/results/peer_fer.{md,json} (``--quick``: a smoke run into /tmp unless ``--out-dir``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import importlib
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import cv2
import numpy as np

FER_VERSION = "25.10.3"
FER_INPUT = 64  # fer.fer.FER._initialize_model: self.__emotion_target_size = (64, 64) on the TFLite path
FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer.fer.FER._get_labels
WHOLE_CROP_RECT = (10, 10, 28, 28)  # + fer's (10, 10) offsets = the whole 48x48 crop (see module docstring)
ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "experiments"
DEFAULT_VENV = Path.home() / ".cache" / "edgeemo-bench" / "fer-venv"
EDGEEMO_MODELS = ("face", "face-float")


# ----------------------------------------------------------------------------- shared by both processes


def fer_preprocess(gray: np.ndarray) -> np.ndarray:
    """fer 25.10.3's emotion-model input for one 2-D uint8 gray face crop: (1, 64, 64, 1) float32 in [-1, 1].

    The same operations, in the same order and dtypes, as ``fer/fer.py``: ``FER.detect_emotions`` does
    ``cv2.resize(gray_face, (64, 64))`` (OpenCV's default bilinear), ``np.array(gray_faces, dtype="float32")``,
    ``/ 255.0``, ``(x - 0.5) * 2.0``; ``FER._classify_emotions`` adds the channel axis and feeds float32.
    The worker checks bit-equality with what fer's own code feeds the interpreter.
    """
    face = cv2.resize(gray, (FER_INPUT, FER_INPUT))
    x = np.array([face], dtype="float32")
    x = x / 255.0
    x = (x - 0.5) * 2.0
    return np.expand_dims(x, -1).astype(np.float32)


def time_faces(
    grays: Sequence[np.ndarray],
    preprocess: Callable[[np.ndarray], np.ndarray],
    infer: Callable[[np.ndarray], np.ndarray],
    runs: int,
    warmup: int,
) -> np.ndarray:
    """Batch-1 latency loop used for every model: (runs, 2) ms of [own preprocessing, model call]."""
    for i in range(warmup):
        infer(preprocess(grays[i % len(grays)]))
    out = np.empty((runs, 2))
    clock = time.perf_counter
    for i in range(runs):
        g = grays[i % len(grays)]
        t0 = clock()
        x = preprocess(g)
        t1 = clock()
        infer(x)
        t2 = clock()
        out[i, 0], out[i, 1] = (t1 - t0) * 1e3, (t2 - t1) * 1e3
    return out


def gray_digest(grays: Sequence[np.ndarray]) -> str:
    """md5 of the decoded crops (shape + bytes): both processes must time the same pixels."""
    h = hashlib.md5()
    for g in grays:
        h.update(str(g.shape).encode())
        h.update(np.ascontiguousarray(g).tobytes())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- worker (runs in the fer venv)


def install_tf_shim(threads: int, record: dict[str, np.ndarray]) -> None:
    """A stand-in ``tensorflow`` module so that fer/fer.py imports without TensorFlow.

    ``tf.lite.Interpreter`` is ai-edge-litert's Interpreter (``threads`` threads) that records the last tensor
    set and read; ``tensorflow.keras.models.load_model`` (fer's non-TFLite path) raises.
    """
    from ai_edge_litert.interpreter import Interpreter

    class RecordingInterpreter(Interpreter):
        def __init__(self, model_path: str, **_: Any) -> None:
            super().__init__(model_path=model_path, num_threads=threads)

        def set_tensor(self, *args: Any, **kwargs: Any) -> None:
            record["input"] = np.array(args[1] if len(args) > 1 else kwargs["value"], copy=True)
            super().set_tensor(*args, **kwargs)

        def get_tensor(self, *args: Any, **kwargs: Any) -> np.ndarray:
            out = super().get_tensor(*args, **kwargs)
            record["output"] = np.array(out, copy=True)
            return out

    def load_model(*_: Any, **__: Any) -> None:
        raise RuntimeError("fer's Keras path needs TensorFlow; this benchmark venv runs fer's TFLite file")

    tf = types.ModuleType("tensorflow")
    tf.lite = types.SimpleNamespace(Interpreter=RecordingInterpreter)  # type: ignore[attr-defined]
    keras = types.ModuleType("tensorflow.keras")
    models = types.ModuleType("tensorflow.keras.models")
    models.load_model = load_model  # type: ignore[attr-defined]
    keras.models = models  # type: ignore[attr-defined]
    tf.keras = keras  # type: ignore[attr-defined]
    sys.modules.update({"tensorflow": tf, "tensorflow.keras": keras, "tensorflow.keras.models": models})


class FerWorker:
    """Everything fer-side: fer's own code path (verification, accuracy) and the timing loop."""

    def __init__(self, threads: int) -> None:
        from importlib.metadata import version

        from ai_edge_litert.interpreter import Interpreter

        self.record: dict[str, np.ndarray] = {}
        install_tf_shim(threads, self.record)
        fer_pkg = importlib.import_module("fer")
        self.fer_mod = importlib.import_module("fer.fer")
        self.fer = self.fer_mod.FER()  # fer's defaults: use_tflite=True, Haar detector, offsets (10, 10)
        labels = tuple(self.fer_mod.FER._get_labels()[i] for i in range(7))
        if labels != FER_LABELS:
            raise RuntimeError(f"fer's label order changed: {labels}")
        data = Path(fer_pkg.__file__).parent / "data"
        self.tflite = data / "emotion_model_quantized.tflite"
        self.hdf5 = data / "emotion_model.hdf5"
        self.interp = Interpreter(model_path=str(self.tflite), num_threads=threads)  # plain one, for timing
        self.interp.allocate_tensors()
        self._in = self.interp.get_input_details()[0]
        self._out = self.interp.get_output_details()[0]
        tensor_dtypes: dict[str, int] = {}
        for t in self.interp.get_tensor_details():
            name = np.dtype(t["dtype"]).name
            tensor_dtypes[name] = tensor_dtypes.get(name, 0) + 1
        self.info = {
            "fer_version": fer_pkg.__version__,
            "python": platform.python_version(),
            "ai_edge_litert": version("ai-edge-litert"),
            "opencv": cv2.__version__,
            "numpy": np.__version__,
            "tflite_file": str(self.tflite),
            "tflite_size_bytes": self.tflite.stat().st_size,
            "tflite_sha256": file_sha256(self.tflite),
            "hdf5_file": str(self.hdf5),
            "hdf5_size_bytes": self.hdf5.stat().st_size,
            "hdf5_sha256": file_sha256(self.hdf5),
            "input": {"shape": self._in["shape"].tolist(), "dtype": np.dtype(self._in["dtype"]).name},
            "output": {"shape": self._out["shape"].tolist(), "dtype": np.dtype(self._out["dtype"]).name},
            "tensor_dtypes": tensor_dtypes,
            "labels": list(labels),
            "threads": threads,
        }
        self.paths: list[str] = []
        self.timing_grays: list[np.ndarray] = []

    def invoke(self, x: np.ndarray) -> np.ndarray:
        """One model call as fer's ``_classify_emotions`` does it (TFLite path)."""
        self.interp.set_tensor(self._in["index"], x)
        self.interp.invoke()
        return self.interp.get_tensor(self._out["index"])

    def _fer_own(self, path: str, rect: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """fer's own ``detect_emotions`` on one image file with a given face box; (input fed, raw output)."""
        self.record.clear()
        faces = self.fer.detect_emotions(path, face_rectangles=[rect])
        if len(faces) != 1 or "input" not in self.record:
            raise RuntimeError(f"fer returned {len(faces)} faces for {path}")
        return self.record["input"], self.record["output"][0]

    def evaluate(self, paths: list[str]) -> dict[str, Any]:
        """Probabilities of fer's model on every crop, with the checks of the reimplemented preprocessing."""
        self.paths = paths
        probs, box_probs = np.zeros((len(paths), 7), np.float32), np.zeros((len(paths), 7), np.float32)
        input_equal = output_equal = 0
        max_in_diff = max_out_diff = 0.0
        haar_images = haar_faces = 0
        for i, path in enumerate(paths):
            gray = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
            x = fer_preprocess(gray)
            probs[i] = self.invoke(x)[0]
            ref_in, ref_out = self._fer_own(path, WHOLE_CROP_RECT)
            input_equal += int(ref_in.shape == x.shape and np.array_equal(ref_in, x))
            output_equal += int(np.array_equal(ref_out, probs[i]))
            if ref_in.shape == x.shape:
                max_in_diff = max(max_in_diff, float(np.abs(ref_in - x).max()))
            max_out_diff = max(max_out_diff, float(np.abs(ref_out - probs[i]).max()))
            h, w = gray.shape
            box_probs[i] = self._fer_own(path, (0, 0, w, h))[1]
            found = len(self.fer.find_faces(cv2.imread(path)))
            haar_faces += found
            haar_images += int(found > 0)
            if (i + 1) % 500 == 0:
                print(f"[fer worker] {i + 1}/{len(paths)} crops", file=sys.stderr, flush=True)
        return {
            "probs": probs.tolist(),
            "box_probs": box_probs.tolist(),
            "check": {
                "n": len(paths),
                "input_bit_identical": input_equal,
                "output_bit_identical": output_equal,
                "max_abs_input_diff": max_in_diff,
                "max_abs_output_diff": max_out_diff,
                "reference": "fer.fer.FER.detect_emotions(path, face_rectangles=[(10, 10, 28, 28)]), TFLite path",
            },
            "haar": {"images_with_a_face": haar_images, "faces": haar_faces, "n": len(paths)},
        }

    def prepare_timing(self, indices: list[int]) -> dict[str, Any]:
        """Decode the timing crops (2-D uint8 gray, as fer's gray conversion gives for these gray JPEGs)."""
        self.timing_grays = [cv2.imread(self.paths[i], cv2.IMREAD_GRAYSCALE) for i in indices]
        return {"digest": gray_digest(self.timing_grays)}

    def time(self, runs: int, warmup: int) -> dict[str, Any]:
        """One timing round; (runs, 2) ms as nested lists."""
        return {"ms": time_faces(self.timing_grays, fer_preprocess, self.invoke, runs, warmup).tolist()}


def worker_main(threads: int) -> None:
    """JSON-lines server on the original stdout; everything printed (Python or C) goes to stderr."""
    proto: TextIO = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    worker = FerWorker(threads)
    proto.write(json.dumps({"ok": True, "info": worker.info}) + "\n")
    proto.flush()
    for line in sys.stdin:
        req = json.loads(line)
        cmd = req.pop("cmd")
        if cmd == "quit":
            break
        result = getattr(worker, cmd)(**req)
        proto.write(json.dumps(result) + "\n")
        proto.flush()


# ----------------------------------------------------------------------------- Keras check (this venv's TF)


def keras_main(hdf5: str, paths_file: str, out: str) -> None:
    """Predict fer's Keras model (emotion_model.hdf5) on the listed crops with fer's preprocessing."""
    import keras

    model = keras.models.load_model(hdf5, compile=False)
    paths = json.loads(Path(paths_file).read_text())
    x = np.concatenate([fer_preprocess(cv2.imread(p, cv2.IMREAD_GRAYSCALE)) for p in paths])
    probs = model.predict(x, batch_size=256, verbose=0)
    np.save(out, probs.astype(np.float32))
    meta = {"keras": keras.__version__, "params": int(model.count_params()), "input_shape": list(model.input_shape)}
    Path(out).with_suffix(".json").write_text(json.dumps(meta))


# ----------------------------------------------------------------------------- main (edgeemo venv)


def _dist_version(*names: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    for name in names:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    raise RuntimeError(f"none of {names} is installed in {sys.prefix}")


def fer_install_commands(venv: Path) -> list[list[str]]:
    """The commands that build the fer venv; runtimes pinned to this venv's versions."""
    pip = str(venv / "bin" / "pip")
    deps = [
        f"ai-edge-litert=={_dist_version('ai-edge-litert')}",
        f"opencv-python-headless=={_dist_version('opencv-python-headless', 'opencv-python')}",
        f"numpy=={_dist_version('numpy')}",
        "pillow",  # fer/utils.py imports PIL
        "requests",  # fer/fer.py and fer/utils.py import requests
        "setuptools<81",  # fer/fer.py imports pkg_resources
    ]
    return [
        [sys.executable, "-m", "venv", str(venv)],
        [pip, "install", "--no-deps", f"fer=={FER_VERSION}"],
        [pip, "install", *deps],
    ]


def ensure_fer_venv(venv: Path) -> tuple[Path, list[str]]:
    """Create or reuse the separate fer venv; idempotent (a marker holds the install commands)."""
    commands = fer_install_commands(venv)
    exe = Path(sys.executable)
    shown_exe = str(exe.relative_to(ROOT)) if exe.is_relative_to(ROOT) else str(exe)
    shown = [
        shlex.join([shown_exe if a == sys.executable else a for a in c]).replace(str(Path.home()), "~")
        for c in commands
    ]
    marker = venv / "edgeemo-bench-install.txt"
    python = venv / "bin" / "python"
    if python.exists() and marker.exists() and marker.read_text() == "\n".join(shown) + "\n":
        print(f"fer venv ready: {venv}", flush=True)
        return python, shown
    for cmd, text in zip(commands, shown, strict=True):
        if cmd[1:3] == ["-m", "venv"] and python.exists():
            continue
        print(f"$ {text}", flush=True)
        subprocess.run(cmd, check=True)
    marker.write_text("\n".join(shown) + "\n")
    return python, shown


class WorkerClient:
    """The fer worker process and its JSON-lines protocol."""

    def __init__(self, python: Path, threads: int) -> None:
        cmd = [str(python), str(Path(__file__).resolve()), "--worker", "--threads", str(threads)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self.info = self._read()["info"]

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"fer worker exited (rc {self.proc.wait()}); see its stderr above")
        return json.loads(line)

    def call(self, cmd: str, **kwargs: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kwargs}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps({"cmd": "quit"}) + "\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def scores(y: np.ndarray, probs: np.ndarray, index: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1, UAR, per-class P/R/F1 (edgeemo.metrics) of probabilities whose column i is
    canonical class ``index[i]``."""
    from edgeemo.labels import EMOTIONS
    from edgeemo.metrics import classification_report

    pred = index[np.asarray(probs).argmax(axis=1)]
    return classification_report(y, pred, EMOTIONS) | {"pred": pred}


def percentiles(ms: np.ndarray) -> dict[str, float]:
    """p50/p90/p99/mean of a latency sample in ms."""
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(np.mean(ms))}


def keras_check(hdf5: str, paths: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Run ``keras_main`` in a subprocess of this venv (TensorFlow stays out of the timing process)."""
    with tempfile.TemporaryDirectory() as tmp:
        paths_file, out = Path(tmp) / "paths.json", Path(tmp) / "keras_probs.npy"
        paths_file.write_text(json.dumps(paths))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--keras-worker", hdf5, str(paths_file), str(out)]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        subprocess.run(cmd, check=True, cwd=ROOT, env=env)
        return np.load(out), json.loads(out.with_suffix(".json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fer2013" / "publictest"))
    parser.add_argument("--fer-venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=6, help="Timing rounds; each times every model in turn.")
    parser.add_argument("--runs", type=int, default=300, help="Timed faces per model per round.")
    parser.add_argument("--warmup", type=int, default=50, help="Untimed faces before each model's round.")
    parser.add_argument("--timing-faces", type=int, default=256, help="Distinct crops cycled through in timing.")
    parser.add_argument("--no-keras-check", action="store_true", help="Skip fer's Keras (hdf5) cross-check.")
    parser.add_argument("--quick", action="store_true", help="Smoke run: 20 faces per class, 2 short rounds.")
    parser.add_argument("--out-dir", type=Path, default=None, help="Default: benchmarks/results (quick: /tmp).")
    parser.add_argument("--render", action="store_true", help="Only re-render the markdown from the JSON.")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--keras-worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.threads)
        return
    if args.keras_worker:
        keras_main(*args.keras_worker)
        return
    if args.render:
        out_dir = args.out_dir or RESULTS
        (out_dir / "peer_fer.md").write_text(render(json.loads((out_dir / "peer_fer.json").read_text())))
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    """The benchmark: build/reuse the fer venv, score and time both sides, write the report."""
    from edgeemo import __version__ as edgeemo_version
    from edgeemo.bench import machine_info
    from edgeemo.face import preprocess_face, preprocess_faces
    from edgeemo.face_datasets import load_image_folders
    from edgeemo.labels import EMOTIONS
    from edgeemo.predict import open_face_model

    if args.quick:
        args.rounds, args.runs, args.warmup, args.timing_faces = 2, 50, 10, 32
    out_dir = args.out_dir or (Path(tempfile.gettempdir()) / "edgeemo-peer-fer-quick" if args.quick else RESULTS)
    started = dt.datetime.now(dt.timezone.utc)
    load_start = os.getloadavg()
    fer_python, install = ensure_fer_venv(args.fer_venv)
    faces = load_image_folders(args.data, "fer2013", limit_per_class=20 if args.quick else None)
    y = faces.labels
    print(f"{len(faces)} faces from {args.data}", flush=True)

    client = WorkerClient(fer_python, args.threads)
    try:
        info = client.info
        print(f"fer {info['fer_version']} worker up; scoring {len(faces)} crops with fer's own code path", flush=True)
        fer_eval = client.call("evaluate", paths=list(faces.sources))
        fer_index = np.array([EMOTIONS.index(c) for c in info["labels"]], np.int64)
        results: dict[str, dict[str, Any]] = {}
        fer_probs = np.asarray(fer_eval["probs"], np.float32)
        results["fer"] = scores(y, fer_probs, fer_index)
        results["fer-box"] = scores(y, np.asarray(fer_eval["box_probs"]), fer_index)
        models = {}
        for name in EDGEEMO_MODELS:
            model = open_face_model(name, threads=args.threads)
            x = preprocess_faces(faces.images, model.preprocessing)
            results[name] = scores(y, model.predict(x), model.canonical_index)
            models[name] = model
            print(f"{name}: accuracy {results[name]['accuracy']:.4f}", flush=True)
        keras_meta: dict[str, Any] | None = None
        if not args.no_keras_check:
            print("fer Keras (hdf5) cross-check in a TensorFlow subprocess", flush=True)
            keras_probs, keras_meta = keras_check(info["hdf5_file"], list(faces.sources))
            results["fer-keras"] = scores(y, keras_probs, fer_index)
            keras_meta["top1_agreement_tflite_vs_keras"] = float(np.mean(keras_probs.argmax(1) == fer_probs.argmax(1)))
            keras_meta["max_abs_prob_diff_tflite_vs_keras"] = float(np.abs(keras_probs - fer_probs).max())

        # timing: the same decoded crops, the same loop, rounds alternating between processes
        rng = np.random.default_rng(0)
        idx = sorted(rng.choice(len(faces), size=min(args.timing_faces, len(faces)), replace=False).tolist())
        grays = [faces.images[i] for i in idx]
        digest = client.call("prepare_timing", indices=idx)["digest"]
        if digest != gray_digest(grays):
            raise RuntimeError("fer worker decoded different pixels than edgeemo for the timing crops")
        timers: dict[str, Callable[[int, int], np.ndarray]] = {
            "fer": lambda runs, warmup: np.asarray(client.call("time", runs=runs, warmup=warmup)["ms"])
        }
        for name in EDGEEMO_MODELS:
            fresh = open_face_model(name, threads=args.threads)  # batch 1 from the start (no resize)
            spec = fresh.preprocessing

            def pre(g: np.ndarray, spec: Any = spec) -> np.ndarray:
                return preprocess_face(g, spec)[None]

            timers[name] = lambda runs, warmup, pre=pre, fresh=fresh: time_faces(
                grays, pre, fresh.runner.predict, runs, warmup
            )
        order = list(timers)
        samples: dict[str, list[np.ndarray]] = {k: [] for k in order}
        for r in range(args.rounds):
            for name in order[r % len(order) :] + order[: r % len(order)]:
                samples[name].append(timers[name](args.runs, args.warmup))
            p50s = ", ".join(f"{k} {np.median(samples[k][-1].sum(1)):.3f}" for k in order)
            print(f"timing round {r + 1}/{args.rounds}: p50 ms {p50s}", flush=True)
    finally:
        client.close()

    latency: dict[str, Any] = {}
    for name, rounds in samples.items():
        ms = np.concatenate(rounds)
        latency[name] = {
            "total_ms": percentiles(ms.sum(1)),
            "preprocess_ms": percentiles(ms[:, 0]),
            "model_ms": percentiles(ms[:, 1]),
            "p50_per_round_ms": [float(np.median(r.sum(1))) for r in rounds],
            "n": int(len(ms)),
        }
    sizes = {
        "fer": info["tflite_size_bytes"],
        "fer-keras": info["hdf5_size_bytes"],
        "fer-box": info["tflite_size_bytes"],
        **{n: models[n].path.stat().st_size for n in EDGEEMO_MODELS},
    }
    edge_params = json.loads(Path(str(models["face"].path) + ".json").read_text())["training"]["params"]
    report = {
        "title": "Peer comparison: fer (PyPI) vs edgeemo face models on FER2013 PublicTest",
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": "nice -n 10 .venv/bin/python benchmarks/experiments/peer_fer.py"
        + (f" --threads {args.threads}" if args.threads != 1 else "")
        + (" --quick" if args.quick else ""),
        "machine": machine_info() | {"loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "versions": {
            "edgeemo": edgeemo_version,
            "python": platform.python_version(),
            "ai_edge_litert": _dist_version("ai-edge-litert"),
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "fer_venv": {k: info[k] for k in ("fer_version", "python", "ai_edge_litert", "opencv", "numpy")},
            **({"keras_for_fer_check": keras_meta["keras"]} if keras_meta else {}),
        },
        "fer_install": install,
        "fer_model": {
            k: v.replace(str(Path.home()), "~") if isinstance(v, str) else v
            for k, v in info.items()
            if k not in ("fer_version", "python", "opencv", "numpy")
        }
        | ({"keras_params": keras_meta["params"]} if keras_meta else {}),
        "edgeemo_params": edge_params,
        "data": {"path": "../shared/data/fer2013/publictest", "n": len(faces), "classes": faces.class_counts()},
        "fer_preprocessing_check": fer_eval["check"],
        "fer_haar_detector_on_crops": fer_eval["haar"],
        "keras_check": keras_meta,
        "timing": {
            "threads": args.threads,
            "rounds": args.rounds,
            "runs_per_round": args.runs,
            "warmup_per_round": args.warmup,
            "timing_faces": len(idx),
            "timed": "per face, batch 1, from a decoded 48x48 uint8 gray crop: own preprocessing + model call "
            "(fer: cv2.resize to 64x64, scale to [-1, 1], set_tensor/invoke/get_tensor; edgeemo: preprocess_face "
            "from the manifest, Runner.predict = quantise + set_tensor/invoke/get_tensor + dequantise); "
            "image decoding and face detection not timed",
        },
        "models": {
            name: {
                "size_bytes": sizes[name],
                "latency": latency.get(name),
                **{k: v for k, v in res.items() if k not in ("pred", "confusion_matrix")},
                "confusion_matrix": np.asarray(res["confusion_matrix"]).tolist(),
            }
            for name, res in results.items()
        },
        "agreement": {
            "fer_vs_face_int8_top1": float(np.mean(results["fer"]["pred"] == results["face"]["pred"])),
            "face_int8_vs_float_top1": float(np.mean(results["face"]["pred"] == results["face-float"]["pred"])),
        },
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    from edgeemo.shipped import shipped_sha256

    report["models_sha256"] = shipped_sha256(EDGEEMO_MODELS)
    (out_dir / "peer_fer.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "peer_fer.md").write_text(render(report))
    print(f"wrote {out_dir / 'peer_fer.json'} and {out_dir / 'peer_fer.md'}")


# ----------------------------------------------------------------------------- markdown

SHORT = {
    "fer": "fer (TFLite)",
    "face": "edgeemo int8",
    "face-float": "edgeemo float",
    "fer-keras": "fer (Keras hdf5)",
    "fer-box": "fer (TFLite, box offsets)",
}
NAMES = {
    "fer": "fer 25.10.3 mini-Xception, its TFLite file",
    "face": "edgeemo `face` (int8 TFLite)",
    "face-float": "edgeemo `face-float` (float TFLite)",
    "fer-keras": "fer Keras weights (emotion_model.hdf5), accuracy cross-check",
    "fer-box": "fer TFLite, crop + fer's 10-px box offsets",
}


def reference_latency(report: dict[str, Any]) -> list[str]:
    """A caveat line with the p50s of the committed ``edgeemo bench`` face report, measured at another time."""
    path = RESULTS / "face_fer2013_publictest.json"
    if not path.exists():
        return []
    bench = {m["model"]: m for m in json.loads(path.read_text())["models"]}
    ours = report["models"]
    cells = [
        f"`{n}` {bench[n]['latency_ms']['p50']:.3f} ms there vs {ours[n]['latency']['total_ms']['p50']:.3f} ms here"
        for n in EDGEEMO_MODELS
        if n in bench and bench[n].get("threads") == report["timing"]["threads"]
    ]
    if not cells:
        return []
    date = json.loads(path.read_text()).get("date", "?")
    return [
        f"- For reference, `results/suite/face_fer2013_publictest.json` (`edgeemo bench`, predict() p50, {date}) has "
        + "; ".join(cells)
        + ": the float model's latency in particular depends on the machine's load at the time."
    ]


def render(report: dict[str, Any]) -> str:
    """The committed markdown from the JSON report."""
    models = report["models"]
    main_rows = [n for n in ("fer", "face", "face-float") if n in models]
    extra = [n for n in ("fer-keras", "fer-box") if n in models]
    classes = list(models["fer"]["per_class"])
    m, v, t = report["machine"], report["versions"], report["timing"]
    fer, face = models["fer"], models["face"]
    chk, haar = report["fer_preprocessing_check"], report["fer_haar_detector_on_crops"]
    lines = [
        f"# {report['title']}",
        "",
        f"Command: `{report['command']}`  ",
        f"Date: {report['date']}; machine: {m.get('cpu')}, {m.get('cores')} cores ({m.get('platform')}); "
        f"load average at start {m['loadavg_start'][0]:.1f}, at end {m['loadavg_end'][0]:.1f}.  ",
        f"Versions: edgeemo {v['edgeemo']}, Python {v['python']}, ai-edge-litert {v['ai_edge_litert']}, "
        f"numpy {v['numpy']}, OpenCV {v['opencv']}; fer venv: fer {v['fer_venv']['fer_version']}, "
        f"ai-edge-litert {v['fer_venv']['ai_edge_litert']}, numpy {v['fer_venv']['numpy']}, "
        f"OpenCV {v['fer_venv']['opencv']}.",
        "",
        f"Data: {report['data']['path']}, {report['data']['n']:,} faces (48x48 gray), never used for training by "
        "edgeemo. Both sides see exactly the same decoded crops.",
        "",
        "| model | accuracy | macro-F1 | UAR | disgust recall | fear recall | latency p50 / p90 / p99 (ms) "
        "| size on disk |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in main_rows + extra:
        r = models[name]
        lat = r.get("latency")
        lat_s = (
            f"{lat['total_ms']['p50']:.3f} / {lat['total_ms']['p90']:.3f} / {lat['total_ms']['p99']:.3f}"
            if lat
            else "not timed"
        )
        lines.append(
            f"| {NAMES[name]} | {100 * r['accuracy']:.2f}% | {r['macro_f1']:.4f} | {r['uar']:.4f} | "
            f"{100 * r['per_class']['disgust']['recall']:.1f}% | {100 * r['per_class']['fear']['recall']:.1f}% | "
            f"{lat_s} | {r['size_bytes']:,} B |"
        )
    acc_win = face["accuracy"] > fer["accuracy"]
    lat_win = face["latency"]["total_ms"]["p50"] < fer["latency"]["total_ms"]["p50"]
    fer_params = report["fer_model"].get("keras_params")
    params = f"{fer_params:,}" if isinstance(fer_params, int) else "n/a"
    lines += [
        "",
        f"Target (edgeemo's shipped int8 `face` beats fer): accuracy {'met' if acc_win else 'NOT met'} "
        f"({100 * face['accuracy']:.2f}% vs {100 * fer['accuracy']:.2f}%, "
        f"{100 * (face['accuracy'] - fer['accuracy']):+.2f} points); per-face latency p50 "
        f"{'met' if lat_win else 'NOT met'} ({face['latency']['total_ms']['p50']:.3f} ms vs "
        f"{fer['latency']['total_ms']['p50']:.3f} ms). Size: edgeemo's int8 file is "
        f"{face['size_bytes'] / fer['size_bytes']:.1f}x fer's TFLite file ({report['edgeemo_params']:,} vs "
        f"{params} parameters).",
        "",
        "## Per-class recall",
        "",
        "| class (support) | " + " | ".join(SHORT[n] for n in main_rows + extra) + " |",
        "|---|" + "---|" * len(main_rows + extra),
    ]
    for c in classes:
        cells = [f"{100 * models[n]['per_class'][c]['recall']:.1f}%" for n in main_rows + extra]
        lines.append(f"| {c} ({fer['per_class'][c]['support']}) | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Latency (ms per face, batch 1, 1 thread unless stated)",
        "",
        f"Timed: {t['timed']}. {t['rounds']} rounds x {t['runs_per_round']} timed faces per model "
        f"({t['warmup_per_round']} untimed warm-up faces before each), cycling through {t['timing_faces']} "
        f"PublicTest crops; rounds rotate the model order and alternate between the two processes. "
        f"Threads: {t['threads']}.",
        "",
        "| model | total p50 / p90 / p99 | preprocessing p50 | model call p50 | p50 per round |",
        "|---|---|---|---|---|",
    ]
    for name in main_rows:
        lat = models[name]["latency"]
        lines.append(
            f"| {NAMES[name]} | {lat['total_ms']['p50']:.3f} / {lat['total_ms']['p90']:.3f} / "
            f"{lat['total_ms']['p99']:.3f} | {lat['preprocess_ms']['p50']:.3f} | {lat['model_ms']['p50']:.3f} | "
            + ", ".join(f"{p:.3f}" for p in lat["p50_per_round_ms"])
            + " |"
        )
    fm = report["fer_model"]
    kc = report.get("keras_check")
    face_rounds, fer_rounds = face["latency"]["p50_per_round_ms"], fer["latency"]["p50_per_round_ms"]
    wins = sum(a < b for a, b in zip(face_rounds, fer_rounds, strict=True))
    lines += [
        "",
        "## How fer was installed and run",
        "",
        "Separate virtualenv outside the repository (fer's own requirements pull TensorFlow, facenet-pytorch/torch, "
        "moviepy, pandas, matplotlib; none is needed to classify a crop with its TFLite file):",
        "",
        "```",
        *report["fer_install"],
        "```",
        "",
        f"fer's model: `fer/data/emotion_model_quantized.tflite` ({fm['tflite_size_bytes']:,} B; input "
        f"{fm['input']['shape']} {fm['input']['dtype']}, output {fm['output']['shape']} {fm['output']['dtype']}; "
        f"tensors by dtype {fm['tensor_dtypes']}: int8 weights with float activations, i.e. dynamic-range "
        f"quantisation), run with ai-edge-litert, {fm['threads']} thread(s). Labels (fer.fer.FER._get_labels): "
        f"{', '.join(fm['labels'])} = the FER2013 order edgeemo uses.",
        "",
        "Preprocessing, from fer/fer.py `FER.detect_emotions` + `FER._classify_emotions` (TFLite path, fer's "
        "default `use_tflite=True`): gray crop -> `cv2.resize(face, (64, 64))` (bilinear) -> float32 / 255 -> "
        "(x - 0.5) * 2 (range [-1, 1]) -> (1, 64, 64, 1). The benchmark runs fer's own `detect_emotions` with "
        f"face box {list(WHOLE_CROP_RECT)} on every crop (with fer's 10-px offsets and 40-px padding that box is "
        "exactly the 48x48 crop, so fer's detector is bypassed) and records the tensor fer feeds LiteRT: the "
        f"reimplementation used for timing was bit-identical on {chk['input_bit_identical']:,}/{chk['n']:,} "
        f"inputs and {chk['output_bit_identical']:,}/{chk['n']:,} outputs (max abs differences "
        f"{chk['max_abs_input_diff']:.2g} / {chk['max_abs_output_diff']:.2g}).",
        "",
    ]
    if kc:
        lines += [
            f"TFLite vs Keras: fer's `emotion_model.hdf5` ({fm['hdf5_size_bytes']:,} B, {kc['params']:,} parameters, "
            f"loaded with Keras {kc['keras']} in a subprocess) on the same inputs: top-1 agreement with the TFLite "
            f"file {100 * kc['top1_agreement_tflite_vs_keras']:.2f}%, max abs probability difference "
            f"{kc['max_abs_prob_diff_tflite_vs_keras']:.3f}; its accuracy is the `fer Keras weights` row. The "
            "TFLite file is what fer 25.10.3 runs by default.",
            "",
        ]
    lines += [
        "## Caveats",
        "",
        f"- fer's own face detector (Haar cascade, `min_face_size=50`) finds a face in {haar['images_with_a_face']:,} "
        f"of {haar['n']:,} of these 48x48 crops, so `fer.FER().detect_emotions(crop)` would return nothing for "
        "them; the comparison therefore passes the face box explicitly (above).",
        "- `fer TFLite, crop + fer's 10-px box offsets`: what fer does when its detector returns the whole crop as "
        "the box: it widens the box by its (10, 10) offsets, filling the border with the mean of the crop's "
        "bottom rows, and resizes 68x68 -> 64x64. Shown for completeness; the main fer row uses the crop itself, "
        "which matches the training recipe in the next point (FER2013 crops resized to 64x64).",
        "- fer's mini-Xception comes from oarriaga/face_classification (fer/fer.py header). That project's "
        "training script (src/train_emotion_classifier.py with src/utils/datasets.py: input 64x64x1, every 48x48 "
        "face `cv2.resize`d to 64x64, `preprocess_input` to [-1, 1]; `split_data` with validation_split 0.2 of "
        "fer2013.csv in file order) trains on the first 28,709 rows (= Training) and uses the remaining "
        "PublicTest + PrivateTest rows as validation data for checkpointing (save best val_loss), early stopping "
        "and LR reduction. If fer's weights come from that recipe, PublicTest took part in selecting fer's "
        "checkpoint (an optimistic bias for fer), though not in fitting its weights. edgeemo never uses "
        "PublicTest for training, validation or tuning.",
        "- Latency was measured on a 2-core machine shared with other jobs (load averages above); rounds "
        "alternate between models so load affects all, and the per-round p50s show the spread: edgeemo int8's "
        f"p50 was below fer's in {wins} of {len(face_rounds)} rounds.",
        *reference_latency(report),
        f"- Top-1 agreement fer vs edgeemo int8: {100 * report['agreement']['fer_vs_face_int8_top1']:.2f}%; "
        f"edgeemo int8 vs float: {100 * report['agreement']['face_int8_vs_float_top1']:.2f}%.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
