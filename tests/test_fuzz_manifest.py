"""Property-based fuzzing of model manifests: whatever a manifest holds, opening its model either
works (and predicts) or fails with an EdgeemoError naming the file; never another exception."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeemo.errors import EdgeemoError
from edgeemo.manifest import read_manifest
from edgeemo.predict import open_emotion_model
from edgeemo.shipped import resolve_model

# The deadline catches a hang, not slowness: a 2 s one failed on a busy 2-core machine.
FUZZ = settings(max_examples=60, deadline=30_000, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.function_scoped_fixture])
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=6)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """Copies of the shipped face and voice int8 models with their manifests, in a temporary folder."""
    folder = tmp_path_factory.mktemp("models")
    out = {}
    for name in ("face", "voice"):
        src = resolve_model(name)
        shutil.copy(src, folder / src.name)
        out[name] = (folder / src.name, json.loads(src.with_name(src.name + ".json").read_text()))
    return out


def _paths(doc: dict) -> list[list]:
    """Every key path in a JSON document, nested ones included."""
    out: list[list] = []

    def walk(node, prefix):
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for key, value in items:
            out.append([*prefix, key])
            walk(value, [*prefix, key])

    walk(doc, [])
    return out


def _open(model, manifest_text: str | bytes, must_refuse: bool = False) -> None:
    """Open the model with this manifest: an EdgeemoError naming the file, or a model that predicts (never
    with ``must_refuse``: the manifest is certainly broken)."""
    manifest = model.with_name(model.name + ".json")
    manifest.write_bytes(manifest_text if isinstance(manifest_text, bytes) else manifest_text.encode())
    try:
        m = open_emotion_model(model)
    except EdgeemoError as exc:
        assert str(model) in str(exc) or str(manifest) in str(exc), str(exc)
        return
    assert not must_refuse, f"a broken manifest was accepted: {manifest_text[:80]!r}"
    probs = m.predict(np.zeros((1, *m.input_shape), np.float32))
    assert probs.shape == (1, len(m.labels)) and np.all(np.isfinite(probs))


@FUZZ
@given(task=st.sampled_from(["face", "voice"]), data=st.data(), op=st.sampled_from(["delete", "retype", "add"]),
       value=JSON)
def test_a_manifest_with_any_one_key_changed_opens_or_is_refused_clearly(shipped, task, data, op, value):
    model, doc = shipped[task]
    doc = json.loads(json.dumps(doc))
    path = data.draw(st.sampled_from(_paths(doc)))
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if op == "delete":
        del parent[path[-1]]
    elif op == "retype":
        parent[path[-1]] = value
    elif isinstance(parent, dict):
        parent["unknown_key"] = value
    else:
        parent.append(value)
    _open(model, json.dumps(doc))


@FUZZ
@given(task=st.sampled_from(["face", "voice"]), cut=st.integers(0, 10_000),
       edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4))
def test_corrupted_manifest_bytes_are_refused_clearly(shipped, task, cut, edits):
    model, doc = shipped[task]
    data = bytearray(json.dumps(doc, indent=1).encode())
    for offset, byte in edits:
        data[offset % len(data)] = byte
    truncated = cut % 3 == 0 and cut % (len(data) + 1) < len(data)  # a cut JSON document never parses
    _open(model, bytes(data[: cut % (len(data) + 1)] if truncated else data), must_refuse=truncated)


@pytest.mark.parametrize("text", [b"", b"[]", b"null", b"[" * 100_000 + b"]" * 100_000, b"\xff\xfe{}",
                                  '{"task": "face"}'.encode("utf-16"), b'{"labels": NaN}'])
def test_malformed_manifest_files_are_refused(shipped, text):
    _open(shipped["face"][0], text, must_refuse=True)


def test_wrong_types_are_named(shipped, tmp_path):
    _, doc = shipped["face"]
    for key, value in [("labels", 5), ("input", []), ("sha256", 12), ("quantization", "int8"), ("schema", True),
                       ("labels", [1, 2]), ("preprocessing", None)]:
        path = tmp_path / "m.json"
        path.write_text(json.dumps({**doc, key: value}))
        with pytest.raises(EdgeemoError, match=key):
            read_manifest(path)


def test_a_valid_model_with_another_models_manifest_is_refused(shipped):
    face, _ = shipped["face"]
    _, voice_doc = shipped["voice"]
    face.with_name(face.name + ".json").write_text(json.dumps(voice_doc))
    with pytest.raises(EdgeemoError, match="sha256"):
        open_emotion_model(face)


def test_non_finite_statistics_in_a_voice_manifest_are_refused(shipped):
    model, doc = shipped["voice"]
    doc = json.loads(json.dumps(doc))
    doc["preprocessing"]["standardize"]["std"][0] = math.inf
    model.with_name(model.name + ".json").write_text(json.dumps(doc))
    with pytest.raises(EdgeemoError, match="preprocessing"):
        open_emotion_model(model)
