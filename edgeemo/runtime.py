"""Runtime backends behind one small interface: LiteRT / tflite-runtime / onnxruntime (/ Keras).

``open_model(path)`` picks the backend from the file type, imports it lazily (no
TensorFlow for .tflite/.onnx), checks the model against its manifest, and returns a
Runner whose ``predict`` takes float32 model inputs (the output of the core
preprocessing) and returns float32 class probabilities, whatever the model's own
input/output dtypes: int8 quantisation is applied here, in one place.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgeemo.errors import EdgeemoError, MissingDependencyError
from edgeemo.manifest import Manifest, load_manifest_for

BACKENDS = ("litert", "tflite-runtime", "onnxruntime", "keras")


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


class TFLiteRunner:
    def __init__(self, path: Path, manifest: Manifest | None, threads: int | None, prefer: str = "auto") -> None:
        interpreter_cls, self.backend = _tflite_interpreter_class(prefer)
        self.path, self.manifest = path, manifest
        try:
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

    def __init__(self, path: Path, manifest: Manifest | None, threads: int | None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependencyError("onnxruntime", "device", "running an .onnx model") from None
        self.path, self.manifest = path, manifest
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
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


def open_model(
    path: str | Path,
    backend: str = "auto",
    threads: int | None = None,
    expected_input: tuple[int, ...] | None = None,
) -> Runner:
    """Open a .tflite / .onnx / .keras model, verified against its manifest when it has one.

    ``expected_input`` (e.g. (48, 48, 1)) is checked against the model's per-sample input
    shape; a mismatch is a clear error rather than a crash inside the interpreter.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgeemoError("model file not found", path)
    if backend not in ("auto", *BACKENDS):
        raise EdgeemoError(f"unknown backend {backend!r} (expected auto or one of {', '.join(BACKENDS)})")
    manifest = load_manifest_for(path)
    suffix = path.suffix.lower()
    runner: Runner
    if suffix == ".tflite":
        if backend not in ("auto", "litert", "tflite-runtime"):
            raise EdgeemoError(f"backend {backend} cannot run a .tflite file", path)
        runner = TFLiteRunner(path, manifest, threads, backend)
    elif suffix == ".onnx":
        if backend not in ("auto", "onnxruntime"):
            raise EdgeemoError(f"backend {backend} cannot run an .onnx file", path)
        runner = OnnxRunner(path, manifest, threads)
    elif suffix == ".keras":
        runner = KerasRunner(path, manifest, threads)
    else:
        raise EdgeemoError("unknown model type (expected .tflite, .onnx or .keras)", path)
    per_sample = tuple(runner.input.shape[1:])
    if manifest is not None and tuple(manifest.input.get("shape", [])[1:]) != per_sample:
        raise EdgeemoError(f"input shape {per_sample} does not match its manifest {manifest.input.get('shape')}", path)
    if expected_input is not None and per_sample != tuple(expected_input):
        raise EdgeemoError(f"unexpected input shape {per_sample}, expected {tuple(expected_input)}", path)
    return runner
