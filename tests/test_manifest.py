"""Model manifests: round trip, sha256 check, and clear errors for bad files."""

import json

import pytest

from edgeemo.errors import EdgeemoError
from edgeemo.face import FacePreprocessing
from edgeemo.labels import EMOTIONS
from edgeemo.manifest import (
    Manifest,
    load_manifest_for,
    manifest_path,
    read_manifest,
    sha256_of,
    write_manifest,
)


def _manifest():
    return Manifest(
        task="face",
        labels=list(EMOTIONS),
        model_file="",
        format="tflite",
        sha256="",
        size_bytes=0,
        input={"shape": [None, 48, 48, 1], "dtype": "int8", "scale": 1 / 255, "zero_point": -128},
        output={"shape": [None, 7], "dtype": "float32"},
        preprocessing=FacePreprocessing().to_dict(),
        quantization={"mode": "int8", "calibration": {"n": 200}},
        training={"arch": "custom-cnn"},
        metrics={"accuracy": 0.61},
        name="face",
    )


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "face-int8.tflite"
    path.write_bytes(b"TFL3 fake model bytes" * 10)
    return path


def test_write_read_round_trip(model):
    m = _manifest()
    path = write_manifest(m, model)
    assert path == manifest_path(model) == model.with_name("face-int8.tflite.json")
    back = read_manifest(path)
    assert back == m
    assert back.model_file == "face-int8.tflite"
    assert back.sha256 == sha256_of(model)
    assert back.size_bytes == model.stat().st_size
    assert FacePreprocessing.from_dict(back.preprocessing) == FacePreprocessing()
    assert load_manifest_for(model) == m


def test_no_manifest_gives_none(model):
    assert load_manifest_for(model) is None


def test_sha256_mismatch_is_refused_naming_the_model(model):
    write_manifest(_manifest(), model)
    model.write_bytes(model.read_bytes() + b"x")
    with pytest.raises(EdgeemoError, match="sha256") as exc:
        load_manifest_for(model)
    assert str(model) in str(exc.value)
    assert load_manifest_for(model, verify_hash=False) is not None


def _write_json(model, text):
    path = manifest_path(model)
    path.write_text(text)
    return path


def _valid_dict(model):
    write_manifest(_manifest(), model)
    return json.loads(manifest_path(model).read_text())


@pytest.mark.parametrize("text", ["{not json", "", "\x00\x01", '{"task": "face",}'])
def test_invalid_json_names_the_file(model, text):
    path = _write_json(model, text)
    with pytest.raises(EdgeemoError, match="JSON") as exc:
        read_manifest(path)
    assert str(path) in str(exc.value)
    with pytest.raises(EdgeemoError):
        load_manifest_for(model)


def test_not_an_object_names_the_file(model):
    path = _write_json(model, "[1, 2]")
    with pytest.raises(EdgeemoError, match=str(path)):
        read_manifest(path)


@pytest.mark.parametrize("key", ["sha256", "labels", "preprocessing"])
def test_missing_key_names_file_and_key(model, key):
    d = _valid_dict(model)
    del d[key]
    path = _write_json(model, json.dumps(d))
    with pytest.raises(EdgeemoError, match=key) as exc:
        read_manifest(path)
    assert str(path) in str(exc.value)


def test_unknown_key_names_file_and_key(model):
    d = _valid_dict(model) | {"colour_space": "rgb"}
    path = _write_json(model, json.dumps(d))
    with pytest.raises(EdgeemoError, match="colour_space") as exc:
        read_manifest(path)
    assert str(path) in str(exc.value)


@pytest.mark.parametrize("schema", [99, "1", None, 1.5])
def test_newer_or_malformed_schema_is_refused(model, schema):
    d = _valid_dict(model) | {"schema": schema}
    path = _write_json(model, json.dumps(d))
    with pytest.raises(EdgeemoError, match="schema") as exc:
        read_manifest(path)
    assert str(path) in str(exc.value)


def test_missing_manifest_file_is_named(tmp_path):
    with pytest.raises(EdgeemoError, match="not found"):
        read_manifest(tmp_path / "nothing.json")
