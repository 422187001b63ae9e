"""The model manifest (model card): everything needed to run a model file correctly.

A manifest is stored beside its model as ``<model file name>.json`` (``face-int8.tflite``
-> ``face-int8.tflite.json``). Inference preprocessing is rebuilt from it, never re-typed,
and a model is only loaded when its sha256 matches the manifest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgeemo import __version__
from edgeemo.errors import EdgeemoError

SCHEMA = 1
REQUIRED = ("task", "labels", "model_file", "format", "sha256", "input", "preprocessing", "quantization")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # a manifest is a few kB (a voice one holds 2 x n_mfcc statistics)
# the JSON type each key must have (a wrong type is refused here, not met later as a crash)
TYPES: dict[str, type | tuple[type, ...]] = {
    "task": str, "labels": list, "model_file": str, "format": str, "sha256": str, "size_bytes": int,
    "input": dict, "output": dict, "preprocessing": dict, "quantization": dict, "training": dict,
    "metrics": dict, "name": str, "edgeemo_version": str, "created": str, "schema": int,
}


@dataclass
class Manifest:
    """Model card of one model file. ``input``/``output``: shape, dtype, and int8 scale/zero point."""

    task: str  # "face" or "voice"
    labels: list[str]
    model_file: str  # file name, relative to the manifest
    format: str  # "tflite", "onnx" or "keras"
    sha256: str
    size_bytes: int
    input: dict[str, Any]
    output: dict[str, Any]
    preprocessing: dict[str, Any]
    quantization: dict[str, Any]  # {"mode": "int8"|"float16"|"none", ...calibration details}
    training: dict[str, Any] = field(default_factory=dict)  # arch, params, data, split
    metrics: dict[str, Any] = field(default_factory=dict)  # measured at export
    name: str = ""
    edgeemo_version: str = __version__
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    schema: int = SCHEMA

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False)


def manifest_path(model_path: str | Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(model_path.name + ".json")


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(manifest: Manifest, model_path: str | Path) -> Path:
    """Write the manifest beside ``model_path``, filling in file name, size and sha256."""
    model_path = Path(model_path)
    manifest.model_file = model_path.name
    manifest.sha256 = sha256_of(model_path)
    manifest.size_bytes = model_path.stat().st_size
    path = manifest_path(model_path)
    path.write_text(manifest.to_json() + "\n")
    return path


def read_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest JSON file (missing keys and unknown keys are errors)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            raise EdgeemoError(f"manifest is {size:,} bytes (a manifest is at most {MAX_MANIFEST_BYTES:,})", path)
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise EdgeemoError("manifest not found", path) from None
    except UnicodeDecodeError as exc:
        raise EdgeemoError(f"manifest is not UTF-8 text ({exc.reason} at byte {exc.start})", path) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise EdgeemoError(f"manifest is not valid JSON ({exc})", path) from None
    except RecursionError:
        raise EdgeemoError("manifest is not valid JSON (nested too deeply)", path) from None
    if not isinstance(data, dict):
        raise EdgeemoError("manifest must be a JSON object", path)
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise EdgeemoError(f"manifest lacks {', '.join(missing)}", path)
    unknown = set(data) - set(Manifest.__dataclass_fields__)
    if unknown:
        raise EdgeemoError(f"manifest has unknown keys {sorted(unknown)}", path)
    for key, value in data.items():
        expected = TYPES[key]
        if isinstance(value, bool) and expected is int or not isinstance(value, expected):
            raise EdgeemoError(f"manifest {key} must be a {_json_type(expected)}, got {_json_type(type(value))}", path)
    if not all(isinstance(label, str) for label in data["labels"]):
        raise EdgeemoError("manifest labels must be a list of strings", path)
    if not isinstance(data["input"].get("shape", []), list):
        raise EdgeemoError("manifest input shape must be a list", path)
    schema = data.get("schema", SCHEMA)
    if not isinstance(schema, int) or isinstance(schema, bool):
        raise EdgeemoError(f"manifest schema must be an integer, got {schema!r}", path)
    if schema > SCHEMA:
        raise EdgeemoError(f"manifest schema {data['schema']} is newer than this edgeemo understands", path)
    try:
        return Manifest(**{"size_bytes": 0, "output": {}, **data})
    except TypeError as exc:
        raise EdgeemoError(f"manifest is malformed ({exc})", path) from None


def _json_type(t: type | tuple[type, ...]) -> str:
    names = {str: "string", list: "list", dict: "object", int: "integer", float: "number", bool: "true/false",
             type(None): "null"}
    return names.get(t, getattr(t, "__name__", str(t)))  # type: ignore[arg-type]


def load_manifest_for(
    model_path: str | Path, verify_hash: bool = True, content: bytes | None = None
) -> Manifest | None:
    """The manifest beside a model file (None if there is none), with its sha256 checked.

    ``content``: the model's bytes as already read (and about to be loaded), hashed instead of
    re-reading the file, so what is checked is exactly what is loaded.
    """
    path = manifest_path(model_path)
    if not path.exists():
        return None
    manifest = read_manifest(path)
    if verify_hash:
        actual = hashlib.sha256(content).hexdigest() if content is not None else sha256_of(model_path)
        if actual != manifest.sha256:
            raise EdgeemoError(
                f"sha256 {actual[:12]}... does not match its manifest ({manifest.sha256[:12]}...): "
                "the file was changed or corrupted; refusing to load it",
                model_path,
            )
    return manifest
