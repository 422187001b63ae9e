"""Runtime backends behind one small interface: LiteRT / tflite-runtime / onnxruntime (/ Keras).

``open_model(path)`` picks the backend from the file type, imports it lazily (no
TensorFlow for .tflite/.onnx), checks the model against its manifest, and returns a
Runner whose ``predict`` takes float32 model inputs (the output of the core
preprocessing) and returns float32 class probabilities, whatever the model's own
input/output dtypes: int8 quantisation is applied here, in one place.

Model-file safety: LiteRT and onnxruntime can kill the whole process (a segfault, an
abort) on a malformed file, so a model is read once into memory, its sha256 is checked
against its manifest (a mismatch is refused: nothing is loaded), and the very bytes that
were checked are what the runtime loads. A model that no manifest vouches for is first
loaded and run on one zero input in a child process (``probe_model``); only if that child
survives is the model loaded here.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgeemo.errors import EdgeemoError, MissingDependencyError
from edgeemo.manifest import Manifest, load_manifest_for

BACKENDS = ("litert", "tflite-runtime", "onnxruntime", "keras")
PROBES = ("auto", "always", "never")
MAX_MODEL_BYTES = 512 * 1024 * 1024  # an edge model is a few MB; refuse before reading more into memory
PROBE_TIMEOUT_S = 60.0
_probed: set[tuple[str, str]] = set()  # (sha256, backend) that survived a probe in this process


@dataclass(frozen=True)
class TensorSpec:
    shape: tuple[int | None, ...]  # None for a dynamic dimension (batch)
    dtype: str  # numpy dtype name of the tensor as the model stores it
    scale: float | None = None  # int8/uint8 quantisation parameters, if any
    zero_point: int | None = None


class Runner(Protocol):
    path: Path
    backend: str
    input: TensorSpec
    output: TensorSpec
    manifest: Manifest | None

    def predict(self, x: np.ndarray) -> np.ndarray:
        """float32 batch (N, *input.shape[1:]) -> float32 probabilities (N, classes)."""
        ...

    def invoke_raw(self, x: np.ndarray) -> np.ndarray:
        """One call of the bare interpreter on an already-typed input (for overhead benchmarks)."""
        ...


def quantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if spec.scale is None or spec.dtype in ("float32", "float16"):
        return x.astype(spec.dtype, copy=False)
    info = np.iinfo(spec.dtype)
    q = np.round(x / spec.scale) + spec.zero_point
    return np.clip(q, info.min, info.max).astype(spec.dtype)


def dequantize(q: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if spec.scale is None or q.dtype.kind == "f":
        return q.astype(np.float32, copy=False)
    return ((q.astype(np.float32) - spec.zero_point) * spec.scale).astype(np.float32)


def _tflite_interpreter_class(prefer: str) -> tuple[Any, str]:
    order = ["litert", "tflite-runtime"] if prefer in ("auto", "litert") else ["tflite-runtime", "litert"]
    modules = {"litert": "ai_edge_litert.interpreter", "tflite-runtime": "tflite_runtime.interpreter"}
    for name in order:
        try:
            return importlib.import_module(modules[name]).Interpreter, name
        except ImportError:
            continue
    raise MissingDependencyError("ai-edge-litert (or tflite-runtime)", "device", "running a .tflite model")


def tflite_interpreter_class(prefer: str = "auto") -> tuple[Any, str]:
    """The LiteRT (or tflite-runtime) ``Interpreter`` class and the backend's name."""
    return _tflite_interpreter_class(prefer)


class TFLiteRunner:
    def __init__(self, path: Path, manifest: Manifest | None, threads: int | None, prefer: str = "auto",
                 content: bytes | None = None) -> None:
        interpreter_cls, self.backend = _tflite_interpreter_class(prefer)
        self.path, self.manifest = path, manifest
        self._content = content  # the interpreter reads the model from this buffer: keep it alive
        try:
            if content is not None:
                self.interpreter = interpreter_cls(model_content=content, num_threads=threads)
            else:
                self.interpreter = interpreter_cls(model_path=str(path), num_threads=threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise EdgeemoError(f"not a loadable TFLite model ({str(exc).splitlines()[0]})", path) from None
        ins, outs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(ins) != 1 or len(outs) != 1:
            raise EdgeemoError(f"expected 1 input and 1 output, got {len(ins)} and {len(outs)}", path)
        self._in, self._out = ins[0]["index"], outs[0]["index"]
        self.input, self.output = self._spec(ins[0]), self._spec(outs[0])
        self._batch = int(ins[0]["shape"][0])

    @staticmethod
    def _spec(detail: dict[str, Any]) -> TensorSpec:
        scale, zero = detail.get("quantization", (0.0, 0))
        sig = detail.get("shape_signature", detail["shape"])
        shape = tuple(None if int(d) < 0 else int(d) for d in sig)
        dtype = np.dtype(detail["dtype"]).name
        if scale:
            return TensorSpec(shape, dtype, float(scale), int(zero))
        return TensorSpec(shape, dtype)

    def _resize(self, n: int) -> None:
        if n != self._batch:
            if self.input.shape[0] is not None:
                raise EdgeemoError(f"model has a fixed batch of {self.input.shape[0]}, got {n}", self.path)
            self.interpreter.resize_tensor_input(self._in, [n, *self.input.shape[1:]])
            self.interpreter.allocate_tensors()
            self._batch = n

    def invoke_raw(self, x: np.ndarray) -> np.ndarray:
        self._resize(len(x))
        self.interpreter.set_tensor(self._in, x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._out)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return dequantize(self.invoke_raw(quantize(x, self.input)), self.output)


class OnnxRunner:
    backend = "onnxruntime"

    def __init__(self, path: Path, manifest: Manifest | None, threads: int | None,
                 content: bytes | None = None) -> None:
        ort = _import_onnxruntime()
        self.path, self.manifest = path, manifest
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            model: str | bytes = str(path) if content is None else content
            self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise EdgeemoError(f"not a loadable ONNX model ({str(exc).splitlines()[0][:200]})", path) from None
        ins, outs = self.session.get_inputs(), self.session.get_outputs()
        if len(ins) != 1 or len(outs) != 1:
            raise EdgeemoError(f"expected 1 input and 1 output, got {len(ins)} and {len(outs)}", path)
        self._in = ins[0].name
        types = {"tensor(float)": "float32", "tensor(int8)": "int8", "tensor(uint8)": "uint8"}
        self.input = TensorSpec(
            tuple(d if isinstance(d, int) else None for d in ins[0].shape), types.get(ins[0].type, ins[0].type)
        )
        self.output = TensorSpec(
            tuple(d if isinstance(d, int) else None for d in outs[0].shape), types.get(outs[0].type, outs[0].type)
        )

    def invoke_raw(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._in: x})[0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.invoke_raw(x.astype(np.float32, copy=False)).astype(np.float32, copy=False)


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingDependencyError("onnxruntime", "device", "running an .onnx model") from None
    return ort


class KerasRunner:
    """A .keras file, for comparing against the float parent. Imports TensorFlow/Keras."""

    backend = "keras"

    def __init__(self, path: Path, manifest: Manifest | None, threads: int | None) -> None:
        try:
            import keras
        except ImportError:
            raise MissingDependencyError("keras", "train", "running a .keras model") from None
        self.path, self.manifest = path, manifest
        try:
            self.model = keras.models.load_model(path, compile=False)
        except Exception as exc:  # keras raises many types for a bad file
            raise EdgeemoError(f"not a loadable Keras model ({str(exc).splitlines()[0][:200]})", path) from None
        shape = tuple(self.model.inputs[0].shape)
        self.input = TensorSpec(shape, "float32")
        self.output = TensorSpec(tuple(self.model.outputs[0].shape), "float32")

    def invoke_raw(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model(x, training=False))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict(x, batch_size=256, verbose=0), dtype=np.float32)


def read_model_bytes(path: str | Path) -> bytes:
    """A model file's bytes (at most ``MAX_MODEL_BYTES``), or an EdgeemoError naming it."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise EdgeemoError(f"file is {size:,} bytes, more than the {MAX_MODEL_BYTES:,} a model may be", path)
        return path.read_bytes()
    except OSError as exc:
        raise EdgeemoError(f"cannot read model file ({exc.strerror or exc})", path) from None


def _check_backend(path: Path, backend: str) -> str:
    """The file's format ("tflite", "onnx", "keras") after checking ``backend`` can run it."""
    if backend not in ("auto", *BACKENDS):
        raise EdgeemoError(f"unknown backend {backend!r} (expected auto or one of {', '.join(BACKENDS)})")
    kind = {".tflite": "tflite", ".onnx": "onnx", ".keras": "keras"}.get(path.suffix.lower())
    if kind is None:
        raise EdgeemoError("unknown model type (expected .tflite, .onnx or .keras)", path)
    if kind == "tflite" and backend not in ("auto", "litert", "tflite-runtime"):
        raise EdgeemoError(f"backend {backend} cannot run a .tflite file", path)
    if kind == "onnx" and backend not in ("auto", "onnxruntime"):
        raise EdgeemoError(f"backend {backend} cannot run an .onnx file", path)
    return kind


def _make_runner(path: Path, kind: str, manifest: Manifest | None, backend: str, threads: int | None,
                 content: bytes | None) -> Runner:
    if kind == "tflite":
        return TFLiteRunner(path, manifest, threads, backend, content)
    if kind == "onnx":
        return OnnxRunner(path, manifest, threads, content)
    return KerasRunner(path, manifest, threads)


# The probe child: imports the core from the same place as the parent, then _probe_child.
_PROBE_CODE = "import sys; sys.path.insert(0, sys.argv[1]); from edgeemo.runtime import _probe_child; _probe_child()"


def _probe_child() -> None:  # pragma: no cover - runs in the probe's child process
    """argv: root, path, backend, sha256. Prints one JSON line; exit 0 when the model loads and runs."""
    _, _, path_text, backend, sha = sys.argv
    path = Path(path_text)
    try:
        content = read_model_bytes(path)
        if sha and hashlib.sha256(content).hexdigest() != sha:
            raise EdgeemoError("the file changed while it was being checked")
        runner = _make_runner(path, _check_backend(path, backend), None, backend, 1, content)
        shape = [1 if d is None else int(d) for d in runner.input.shape]
        if shape:
            shape[0] = 1 if runner.input.shape[0] is None else shape[0]
        out = np.asarray(runner.predict(np.zeros(shape, np.float32)))
        print(json.dumps({"ok": True, "output_shape": list(out.shape)}), flush=True)
    except EdgeemoError as exc:
        message = str(exc)
        prefix = f"{path}: "
        print(json.dumps({"error": message[len(prefix):] if message.startswith(prefix) else message}), flush=True)
        sys.exit(2)
    except Exception as exc:  # any failure of the runtime is the model's problem: report it
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        print(json.dumps({"error": f"fails to run one input ({type(exc).__name__}: {first})"}), flush=True)
        sys.exit(2)


def probe_model(
    path: str | Path, backend: str = "auto", timeout_s: float = PROBE_TIMEOUT_S, sha256: str | None = None
) -> None:
    """Load ``path`` and run one zero input in a child process; raise an EdgeemoError naming the file
    if the child fails, crashes (a signal: a runtime that segfaults or aborts on a malformed file),
    or hangs for ``timeout_s``. ``sha256``: the bytes the caller will load (the child checks it).
    """
    path = Path(path)
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", _PROBE_CODE, root, str(path), backend, sha256 or ""]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise EdgeemoError(
            f"loading and running one input did not finish within {timeout_s:g} s in a test process "
            "(the runtime hangs on this file); refusing to load it", path) from None
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        raise EdgeemoError(
            f"the runtime crashed ({name}) loading or running this model in a test process: "
            "a malformed or unsupported model file; refusing to load it", path)
    reply: dict[str, Any] = {}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("{"):
            try:
                reply = json.loads(line)
            except json.JSONDecodeError:
                continue
            break
    if done.returncode == 0 and reply.get("ok"):
        return
    if "error" in reply:
        raise EdgeemoError(str(reply["error"]), path)
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
    raise EdgeemoError(f"the model check process failed (exit {done.returncode}: {tail})", path)


def open_model(
    path: str | Path,
    backend: str = "auto",
    threads: int | None = None,
    expected_input: tuple[int, ...] | None = None,
    probe: str = "auto",
) -> Runner:
    """Open a .tflite / .onnx / .keras model, verified against its manifest when it has one.

    ``expected_input`` (e.g. (48, 48, 1)) is checked against the model's per-sample input
    shape; a mismatch is a clear error rather than a crash inside the interpreter.
    ``probe``: "auto" runs ``probe_model`` first for a .tflite/.onnx file that has no
    manifest (a manifest whose sha256 matches vouches for the file; a mismatch is refused
    before anything is loaded), "always" probes every file, "never" skips it.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgeemoError("model file not found", path)
    if probe not in PROBES:
        raise EdgeemoError(f"unknown probe mode {probe!r} (expected one of {', '.join(PROBES)})")
    kind = _check_backend(path, backend)
    content = None if kind == "keras" else read_model_bytes(path)
    manifest = load_manifest_for(path, content=content)
    if content is not None and (probe == "always" or (probe == "auto" and manifest is None)):
        if kind == "tflite":
            _tflite_interpreter_class(backend)  # a missing runtime is MissingDependencyError, not a probe failure
        else:
            _import_onnxruntime()
        sha = hashlib.sha256(content).hexdigest()
        if (sha, backend) not in _probed:
            probe_model(path, backend, sha256=sha)
            _probed.add((sha, backend))
    runner = _make_runner(path, kind, manifest, backend, threads, content)
    per_sample = tuple(runner.input.shape[1:])
    if manifest is not None and tuple(manifest.input.get("shape", [])[1:]) != per_sample:
        raise EdgeemoError(f"input shape {per_sample} does not match its manifest {manifest.input.get('shape')}", path)
    if expected_input is not None and per_sample != tuple(expected_input):
        raise EdgeemoError(f"unexpected input shape {per_sample}, expected {tuple(expected_input)}", path)
    return runner
