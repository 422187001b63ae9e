"""open_model refuses bad model files with an EdgeemoError naming the file (no TensorFlow)."""

import importlib.util

import numpy as np
import pytest

from edgeemo.errors import EdgeemoError
from edgeemo.manifest import Manifest, write_manifest
from edgeemo.runtime import TensorSpec, dequantize, open_model, quantize


def _needs(*modules):
    if not any(importlib.util.find_spec(m) for m in modules):
        pytest.skip(f"needs one of {', '.join(modules)} (pip install 'edgeemo[device]')")


def _refused(path, **kwargs):
    with pytest.raises(EdgeemoError) as exc:
        open_model(path, **kwargs)
    assert str(path) in str(exc.value)
    return str(exc.value)


def test_missing_file(tmp_path):
    assert "not found" in _refused(tmp_path / "face-int8.tflite")


def test_a_folder_is_not_a_model(tmp_path):
    _refused(tmp_path)


def test_text_file_named_tflite(tmp_path):
    _needs("ai_edge_litert", "tflite_runtime")
    path = tmp_path / "face.tflite"
    path.write_text("this is not a flatbuffer\n")
    assert "TFLite" in _refused(path)


def test_empty_tflite(tmp_path):
    _needs("ai_edge_litert", "tflite_runtime")
    path = tmp_path / "face.tflite"
    path.write_bytes(b"")
    _refused(path)


def test_random_bytes_onnx(tmp_path):
    _needs("onnxruntime")
    path = tmp_path / "face.onnx"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    assert "ONNX" in _refused(path)


@pytest.mark.parametrize("name", ["face.pt", "face.h5", "face"])
def test_unknown_suffix(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x00" * 16)
    assert "unknown model type" in _refused(path)


def test_backend_that_cannot_run_the_format(tmp_path):
    path = tmp_path / "face.onnx"
    path.write_bytes(b"\x00" * 16)
    _refused(path, backend="litert")


def test_unknown_backend(tmp_path):
    path = tmp_path / "face.onnx"
    path.write_bytes(b"\x00" * 16)
    with pytest.raises(EdgeemoError, match="cuda"):
        open_model(path, backend="cuda")


def test_model_changed_after_its_manifest_was_written_is_refused(tmp_path):
    path = tmp_path / "face.onnx"
    path.write_bytes(b"\x00" * 16)
    manifest = Manifest(
        task="face",
        labels=["a"],
        model_file="",
        format="onnx",
        sha256="",
        size_bytes=0,
        input={"shape": [None, 48, 48, 1]},
        output={},
        preprocessing={},
        quantization={"mode": "none"},
    )
    write_manifest(manifest, path)
    path.write_bytes(b"\x01" * 16)
    assert "sha256" in _refused(path)


def test_quantize_dequantize_int8_round_trip():
    spec = TensorSpec((None, 7), "int8", 1 / 256, -128)
    x = np.array([[0.0, 0.5, 1.0, 2.0, -1.0, 1 / 256, 0.25]], np.float32)
    q = quantize(x, spec)
    assert q.dtype == np.int8
    assert q.tolist() == [[-128, 0, 127, 127, -128, -127, -64]]  # clipped to the int8 range
    expected = [[0.0, 0.5, 255 / 256, 255 / 256, 0.0, 1 / 256, 0.25]]
    np.testing.assert_allclose(dequantize(q, spec), expected, rtol=1e-6)
    float_spec = TensorSpec((None, 7), "float32")
    assert quantize(x, float_spec).dtype == np.float32
