"""Model-file safety: a model whose sha256 does not match its manifest is never loaded, and a model
no manifest vouches for is loaded and run first in a child process (``probe_model``), so a runtime
that crashes or hangs on a malformed file takes down the child, not the caller."""

from __future__ import annotations

import json
import shutil
import signal

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeemo import runtime
from edgeemo.errors import EdgeemoError
from edgeemo.predict import open_emotion_model, open_face_model, open_voice_model
from edgeemo.runtime import open_model, probe_model
from edgeemo.shipped import resolve_model

pytest.importorskip("ai_edge_litert")
pytest.importorskip("onnxruntime")


@pytest.fixture
def face(tmp_path):
    """A copy of the shipped int8 face model, without its manifest (nothing vouches for it)."""
    path = tmp_path / "face.tflite"
    shutil.copy(resolve_model("face"), path)
    return path


@pytest.fixture
def probes(monkeypatch):
    """Records the files probe_model is asked about (and still probes them)."""
    seen: list[str] = []
    real = runtime.probe_model
    monkeypatch.setattr(runtime, "_probed", set())

    def spy(path, *args, **kwargs):
        seen.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(runtime, "probe_model", spy)
    return seen


def test_a_model_without_a_manifest_is_probed_once_then_loaded(face, probes):
    model = open_face_model(face)
    assert probes == [str(face)]
    assert model.predict(np.zeros((1, 48, 48, 1), np.float32)).shape == (1, 7)
    open_face_model(face)  # same bytes: already probed in this process
    assert probes == [str(face)]


def test_a_model_vouched_for_by_its_manifest_is_not_probed(probes):
    open_face_model("face")
    open_voice_model("voice-onnx")
    assert probes == []


def test_probe_always(face, probes):
    open_model(resolve_model("face"), probe="always")
    assert probes == [str(resolve_model("face"))]
    with pytest.raises(EdgeemoError, match="probe mode"):
        open_model(face, probe="sometimes")


def test_sha256_mismatch_is_refused_before_anything_is_loaded(tmp_path, monkeypatch):
    src = resolve_model("face")
    path = tmp_path / src.name
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit flipped
    path.write_bytes(bytes(data))
    shutil.copy(src.with_name(src.name + ".json"), path.with_name(path.name + ".json"))

    def never(*args, **kwargs):
        raise AssertionError("a runtime was asked to load a file whose sha256 does not match")

    monkeypatch.setattr(runtime, "TFLiteRunner", never)
    monkeypatch.setattr(runtime, "probe_model", never)
    with pytest.raises(EdgeemoError, match="sha256") as exc:
        open_face_model(path)
    assert str(path) in str(exc.value)


def test_a_valid_model_with_someone_elses_manifest_is_refused(tmp_path):
    path = tmp_path / "face-int8.onnx"
    shutil.copy(resolve_model("face-onnx"), path)
    voice = resolve_model("voice-onnx")
    shutil.copy(voice.with_name(voice.name + ".json"), path.with_name(path.name + ".json"))
    with pytest.raises(EdgeemoError, match="sha256"):
        open_emotion_model(path)


def test_a_valid_face_model_is_not_a_voice_model(face):
    with pytest.raises(EdgeemoError, match="voice model has no manifest"):
        open_voice_model(face)


def test_a_crash_in_the_probe_is_a_clear_error(face, monkeypatch):
    monkeypatch.setattr(runtime, "_PROBE_CODE", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    with pytest.raises(EdgeemoError, match=r"crashed \(SIGSEGV\)") as exc:
        probe_model(face)
    assert str(face) in str(exc.value)


def test_a_hang_in_the_probe_is_a_clear_error(face, monkeypatch):
    monkeypatch.setattr(runtime, "_PROBE_CODE", "import time; time.sleep(30)")
    with pytest.raises(EdgeemoError, match="did not finish within 1 s") as exc:
        probe_model(face, timeout_s=1.0)
    assert str(face) in str(exc.value)


def test_an_abort_in_the_probe_is_a_clear_error(face, monkeypatch):
    monkeypatch.setattr(runtime, "_PROBE_CODE", "import os; os.abort()")
    with pytest.raises(EdgeemoError, match=signal.SIGABRT.name):
        probe_model(face)


def test_a_file_changed_between_hash_and_probe_is_refused(face):
    with pytest.raises(EdgeemoError, match="changed"):
        probe_model(face, sha256="0" * 64)


@settings(max_examples=6, deadline=20_000, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["face", "face-onnx", "voice"]), cut=st.floats(0.0, 1.0),
       flips=st.lists(st.integers(0, 2**31), max_size=40), truncate=st.booleans())
def test_truncated_or_bit_flipped_models_are_refused_clearly_or_work(tmp_path, kind, cut, flips, truncate):
    src = resolve_model(kind)
    data = bytearray(src.read_bytes())
    for f in flips:
        data[f % len(data)] ^= 1 << (f % 8)
    if truncate:
        data = data[: int(cut * len(data))]
    path = tmp_path / f"m{src.suffix}"
    path.write_bytes(bytes(data))
    try:
        model = open_emotion_model(path)
    except EdgeemoError as exc:
        assert str(path) in str(exc)
        return
    probs = model.predict(np.zeros((1, *model.input_shape), np.float32))
    assert probs.shape == (1, len(model.labels))


def test_the_manifest_check_and_the_load_see_the_same_bytes(tmp_path, monkeypatch):
    """The bytes that were hashed are the bytes the runtime loads (no second read of the file)."""
    src = resolve_model("face")
    path = tmp_path / src.name
    shutil.copy(src, path)
    shutil.copy(src.with_name(src.name + ".json"), path.with_name(path.name + ".json"))
    loaded = {}
    real = runtime.TFLiteRunner

    def spy(p, manifest, threads, prefer="auto", content=None):
        loaded["content"] = content
        path.write_bytes(b"swapped after the check")  # too late: the checked bytes are loaded
        return real(p, manifest, threads, prefer, content)

    monkeypatch.setattr(runtime, "TFLiteRunner", spy)
    model = open_face_model(path)
    assert loaded["content"] == src.read_bytes()
    assert model.predict(np.zeros((1, 48, 48, 1), np.float32)).shape == (1, 7)
    assert json.loads(path.with_name(path.name + ".json").read_text())["sha256"]
