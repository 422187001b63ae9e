"""Keras 3 model -> TFLite (float32, float16, or full-integer int8).

Conversion goes through a ``tf.function`` with a fixed input signature
(``[None, H, W, C]`` float32), not ``from_keras_model``, which is unreliable with
Keras 3. int8 is full integer: int8 weights, activations, input and output, calibrated
on a representative dataset that went through the core preprocessing.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from edgeemo.errors import EdgeemoError

MODES = ("none", "float16", "int8")

# A Keras 3 LSTM lowers to a TF while loop, which full-integer TFLite cannot quantise;
# unrolled over the fixed number of frames it becomes plain int8 FullyConnected/elementwise ops.
RECURRENT_NOTE = (
    "model contains recurrent layers: export converts them unrolled (edgeemo.export.tflite.unrolled); "
    "a layer that cannot be unrolled does not convert to full integer"
)


def input_spec(model: Any) -> Any:
    """``tf.TensorSpec([None, *input shape], float32)``: the model input with a dynamic batch."""
    shape = [None, *(int(d) for d in model.inputs[0].shape[1:])]
    return tf.TensorSpec(shape, tf.float32, name=model.inputs[0].name.split(":")[0] or "input")


def serving_function(model: Any) -> Any:
    """A ``tf.function`` ``x -> model(x, training=False)`` with a dynamic-batch input signature."""

    @tf.function(input_signature=[input_spec(model)])
    def serve(x: tf.Tensor) -> tf.Tensor:
        return model(x, training=False)

    return serve


def _converter(model: Any, workdir: str) -> Any:
    """A TFLiteConverter for the model's serving function.

    The function is written as a SavedModel endpoint through Keras' ExportArchive (which
    tracks the Keras 3 variables so they are frozen into constants) and read back with
    ``from_saved_model``; ``from_concrete_functions`` on a Keras 3 model leaves the weights
    as unresolved resource variables, and ``from_keras_model`` is unreliable with Keras 3.
    """
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serving_function(model))
    archive.write_out(workdir, verbose=False)
    return tf.lite.TFLiteConverter.from_saved_model(workdir, signature_keys=["serve"])


def unrolled(model: Any) -> Any:
    """The model with every LSTM/GRU/SimpleRNN rebuilt with ``unroll=True`` and the same
    weights (functional models); ``model`` itself when there is nothing to unroll."""
    import keras

    if not has_recurrent_layers(model) or not isinstance(model, keras.Model):
        return model
    config = model.get_config()
    changed = False
    for layer in config.get("layers", []):
        if layer.get("class_name") in ("LSTM", "GRU", "SimpleRNN") and not layer["config"].get("unroll"):
            layer["config"]["unroll"] = True
            changed = True
    if not changed:
        return model
    clone = model.__class__.from_config(config)
    clone.set_weights(model.get_weights())
    return clone


def has_recurrent_layers(model: Any) -> bool:
    """True if the Keras model (or a nested model) holds an LSTM/GRU/RNN layer."""
    names = {"LSTM", "GRU", "RNN", "SimpleRNN", "Bidirectional"}
    return any(type(layer).__name__ in names for layer in model._flatten_layers(include_self=False))


def convert_tflite(model: Any, mode: str = "none", representative: np.ndarray | None = None) -> bytes:
    """Convert a Keras model to TFLite bytes.

    ``mode``: "none" (float32), "float16" (float16 weights, float32 I/O) or "int8" (full
    integer with int8 input/output; needs ``representative``, float32 model inputs).
    """
    if mode not in MODES:
        raise EdgeemoError(f"unknown TFLite quantization {mode!r} (expected one of {', '.join(MODES)})")
    workdir = tempfile.mkdtemp(prefix="edgeemo-tflite-")
    try:
        return _convert(model, mode, representative, workdir)
    except EdgeemoError:
        raise
    except Exception as exc:  # the converter raises ConverterError, ValueError, RuntimeError...
        message = " ".join(str(exc).split())[:300]
        hint = f" ({RECURRENT_NOTE})" if has_recurrent_layers(model) else ""
        raise EdgeemoError(f"TFLite {mode} conversion failed: {message}{hint}") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _convert(model: Any, mode: str, representative: np.ndarray | None, workdir: str) -> bytes:
    converter = _converter(model, workdir)
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        if representative is None or len(representative) == 0:
            raise EdgeemoError("int8 TFLite conversion needs a representative dataset")
        data = np.asarray(representative, np.float32)

        def samples() -> Iterator[list[np.ndarray]]:
            for i in range(len(data)):
                yield [data[i : i + 1]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    tf.get_logger().setLevel(logging.ERROR)
    return converter.convert()


def write_tflite(model: Any, path: str | Path, mode: str = "none", representative: np.ndarray | None = None) -> Path:
    """Convert and write ``path``; returns the path."""
    path = Path(path)
    path.write_bytes(convert_tflite(model, mode, representative))
    return path
