"""Keras 3 model -> float ONNX (tf2onnx, opset 17) -> static int8 QDQ ONNX (onnxruntime).

Static quantisation: per-channel int8 weights, uint8 (U8S8) or int8 (S8S8) activations,
MinMax-calibrated on the same representative faces as the TFLite model. Which activation
type is faster depends on the CPU (VNNI, ARM dot-product), so the pipeline measures both.

Recurrent models: static quantisation leaves LSTM/GRU nodes in float (onnxruntime has
no static int8 LSTM kernel). ``recurrent_ops`` finds them and ``quantize_onnx_dynamic``
is the hook for the voice models, which will use dynamic quantisation.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from onnxruntime.quantization import CalibrationDataReader

from edgeemo.errors import EdgeemoError

OPSET = 17
ACTIVATIONS = ("uint8", "int8")
RECURRENT_OPS = ("LSTM", "GRU", "RNN")


def _quiet() -> None:
    for name in ("tf2onnx", "onnxruntime", "root"):
        logging.getLogger(name).setLevel(logging.ERROR)


def convert_onnx(model: Any, path: str | Path, opset: int = OPSET) -> Path:
    """Convert a Keras model (through a tf.function, dynamic batch) to a float32 ONNX file."""
    import tensorflow as tf
    import tf2onnx

    from edgeemo.export.tflite import serving_function

    _quiet()
    path = Path(path)
    serve = serving_function(model)
    try:
        tf2onnx.convert.from_function(serve, input_signature=serve.input_signature, opset=opset, output_path=str(path))
    except Exception as exc:  # tf2onnx raises many types
        raise EdgeemoError(f"ONNX conversion failed: {' '.join(str(exc).split())[:300]}", path) from None
    finally:
        tf.get_logger().setLevel(logging.ERROR)
    return path


def recurrent_ops(path: str | Path) -> list[str]:
    """Names of LSTM/GRU/RNN nodes in an ONNX graph (static int8 leaves these float)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [node.name or node.op_type for node in graph.node if node.op_type in RECURRENT_OPS]


class ArrayReader(CalibrationDataReader):
    """onnxruntime CalibrationDataReader over an array of float32 model inputs."""

    def __init__(self, input_name: str, x: np.ndarray, batch: int = 32) -> None:
        self.input_name, self.x, self.batch = input_name, np.asarray(x, np.float32), batch
        self.rewind()

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.pos >= len(self.x):
            return None
        chunk = self.x[self.pos : self.pos + self.batch]
        self.pos += self.batch
        return {self.input_name: chunk}

    def rewind(self) -> None:
        self.pos = 0


def quantize_onnx(
    float_path: str | Path,
    out_path: str | Path,
    calibration: np.ndarray,
    activations: str = "uint8",
) -> dict[str, Any]:
    """Static QDQ quantisation: per-channel int8 weights, ``activations`` uint8 or int8.

    Runs ``quant_pre_process`` (shape inference + graph optimisation) first. Returns
    the settings used, for the manifest.
    """
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    if activations not in ACTIVATIONS:
        raise EdgeemoError(f"unknown ONNX activation type {activations!r} (expected uint8 or int8)")
    _quiet()
    float_path, out_path = Path(float_path), Path(out_path)
    input_name = onnx.load(str(float_path), load_external_data=False).graph.input[0].name
    reader = ArrayReader(input_name, calibration)
    recurrent = recurrent_ops(float_path)
    with tempfile.TemporaryDirectory(prefix="edgeemo-onnx-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=False)
        except Exception:  # symbolic shape inference fails on some graphs; ONNX shape inference suffices
            quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        try:
            quantize_static(
                str(prepared),
                str(out_path),
                calibration_data_reader=reader,
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                reduce_range=False,
                activation_type=QuantType.QUInt8 if activations == "uint8" else QuantType.QInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
            )
        except Exception as exc:
            raise EdgeemoError(
                f"ONNX static quantization failed: {' '.join(str(exc).split())[:300]}", float_path
            ) from None
    info: dict[str, Any] = {
        "format": "QDQ",
        "weights": "int8",
        "per_channel": True,
        "reduce_range": False,
        "activations": activations,
        "scheme": "U8S8" if activations == "uint8" else "S8S8",
        "calibrate_method": "MinMax",
        "opset": OPSET,
        "io": "float32 (quantize/dequantize inside the graph)",
    }
    if recurrent:
        info["float_ops"] = recurrent
        info["note"] = (
            "static quantization left the recurrent nodes in float; use quantize_onnx_dynamic "
            "for recurrent (voice) models"
        )
    return info


def quantize_onnx_dynamic(float_path: str | Path, out_path: str | Path) -> dict[str, Any]:
    """Hook for recurrent (voice) models: dynamic int8 quantisation (weights int8, activations
    quantised at run time), which covers LSTM/GRU and MatMul. Not used for face CNNs."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    _quiet()
    quantize_dynamic(str(float_path), str(out_path), weight_type=QuantType.QInt8, per_channel=True)
    return {
        "format": "dynamic",
        "weights": "int8",
        "per_channel": True,
        "activations": "dynamic uint8",
        "opset": OPSET,
    }
