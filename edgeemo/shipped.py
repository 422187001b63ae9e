"""Models shipped inside the package (``edgeemo/models/<task>/``), addressed by short names.

``edgeemo bench face`` or ``edgeemo predict face img.jpg`` resolve ``face`` here. A name
whose file is not installed (a source checkout without exported models, a slim wheel)
is a clear error listing the names that are.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from edgeemo.errors import EdgeemoError
from edgeemo.manifest import sha256_of

MODELS_DIR = Path(__file__).parent / "models"

# name -> (file relative to MODELS_DIR, one-line description). Every file has its manifest
# beside it as "<file>.json".
SHIPPED: dict[str, tuple[str, str]] = {
    "face": ("face/face-int8.tflite", "face emotion, int8 TFLite (LiteRT): the default for a Pi"),
    "face-float": (
        "face/face-float.tflite",
        "face emotion, float32 TFLite (reference for the int8 model)",
    ),
    "face-onnx": ("face/face-int8.onnx", "face emotion, int8 ONNX (onnxruntime)"),
    "face-float-onnx": (
        "face/face-float.onnx",
        "face emotion, float32 ONNX (onnxruntime; reference for the int8 ONNX model)",
    ),
    "voice": ("voice/voice-int8.tflite", "voice emotion (MFCC), int8 TFLite (LiteRT): the default for a Pi"),
    "voice-float": (
        "voice/voice-float.tflite",
        "voice emotion, float32 TFLite (reference for the int8 model)",
    ),
    "voice-onnx": ("voice/voice-int8.onnx", "voice emotion, int8 ONNX (onnxruntime)"),
    "voice-float-onnx": (
        "voice/voice-float.onnx",
        "voice emotion, float32 ONNX (onnxruntime; reference for the int8 ONNX model)",
    ),
}

MODEL_SUFFIXES = (".tflite", ".onnx", ".keras")


def available() -> list[str]:
    """Names of the shipped models whose files are installed."""
    return [name for name, (rel, _) in SHIPPED.items() if (MODELS_DIR / rel).is_file()]


def _names_text() -> str:
    installed = available()
    return ", ".join(installed) if installed else "none"


def shipped_path(name: str) -> Path:
    """The installed file of a shipped model, or an EdgeemoError naming the available ones."""
    if name not in SHIPPED:
        raise EdgeemoError(
            f"unknown model {name!r}: not a file, and not a shipped model name "
            f"(shipped: {', '.join(SHIPPED)}; installed: {_names_text()})"
        )
    path = MODELS_DIR / SHIPPED[name][0]
    if not path.is_file():
        raise EdgeemoError(
            f"shipped model {name!r} is not installed (no {path}); available: {_names_text()}. "
            "Pass a model file instead, e.g. one written by `edgeemo export`."
        )
    return path


def resolve_model(spec: str | Path) -> Path:
    """A model argument (a file path or a shipped name) to a model file path.

    An existing file wins over a name, a name over a folder; something that looks like a
    path but does not exist is reported as a missing file, not as an unknown name.
    """
    text = str(spec)
    path = Path(text)
    if path.is_file():
        return path
    if text in SHIPPED:
        return shipped_path(text)
    if path.exists():
        raise EdgeemoError("is a folder, expected a model file (.tflite, .onnx or .keras)", path)
    if path.suffix.lower() in MODEL_SUFFIXES or "/" in text or "\\" in text:
        raise EdgeemoError("model file not found", path)
    return shipped_path(text)


def shipped_sha256(names: Iterable[str] | None = None) -> dict[str, str]:
    """sha256 of each installed shipped model file (all of them by default): what a result JSON is
    stamped with, so that a result measured on a model no longer shipped can be told apart."""
    return {name: sha256_of(shipped_path(name)) for name in (available() if names is None else names)}


def stale_models(stamp: dict[str, str | None] | None) -> list[str] | None:
    """The shipped names in a result's ``models_sha256`` whose file has changed since; None for a result
    that has no stamp at all (measured before results were stamped: which models is not recorded)."""
    if stamp is None:
        return None
    current = shipped_sha256([name for name in stamp if name in SHIPPED and name in available()])
    return [name for name, sha in current.items() if stamp[name] != sha]
