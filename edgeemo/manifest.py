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
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise EdgeemoError("manifest not found", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EdgeemoError(f"manifest is not valid JSON ({exc})", path) from None
    if not isinstance(data, dict):
        raise EdgeemoError("manifest must be a JSON object", path)
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise EdgeemoError(f"manifest lacks {', '.join(missing)}", path)
    unknown = set(data) - set(Manifest.__dataclass_fields__)
    if unknown:
        raise EdgeemoError(f"manifest has unknown keys {sorted(unknown)}", path)
    schema = data.get("schema", SCHEMA)
    if not isinstance(schema, int) or isinstance(schema, bool):
        raise EdgeemoError(f"manifest schema must be an integer, got {schema!r}", path)
    if schema > SCHEMA:
        raise EdgeemoError(f"manifest schema {data['schema']} is newer than this edgeemo understands", path)
    try:
        return Manifest(**{"size_bytes": 0, "output": {}, **data})
    except TypeError as exc:
        raise EdgeemoError(f"manifest is malformed ({exc})", path) from None


def load_manifest_for(model_path: str | Path, verify_hash: bool = True) -> Manifest | None:
    """The manifest beside a model file (None if there is none), with its sha256 checked."""
    path = manifest_path(model_path)
    if not path.exists():
        return None
    manifest = read_manifest(path)
    if verify_hash:
        actual = sha256_of(model_path)
        if actual != manifest.sha256:
            raise EdgeemoError(
                f"sha256 {actual[:12]}... does not match its manifest ({manifest.sha256[:12]}...): "
                "the file was changed or corrupted; refusing to load it",
                model_path,
            )
    return manifest
