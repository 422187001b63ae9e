"""The choices of ``edgeemo train``, free of TensorFlow: the command line checks every option
here before it creates the run folder or imports TensorFlow (a typo costs no 7 s import and
leaves no config.json behind)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgeemo.errors import EdgeemoError

FACE_ARCHS = ("custom-cnn", "mobilenetv3-small")
VOICE_ARCHS = ("conv1d", "lstm", "crnn", "stats", "mlp")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
SCHEDULES = ("plateau", "cosine", "constant")
CLASS_WEIGHTS = ("none", "balanced", "sqrt")
FACE_DATASETS = ("auto", "fer2013", "ckplus", "ferplus", "labels-csv")
DISTRIBUTE = ("none", "mirrored", "multi-worker")
FACE_SPLITS = ("subject", "random")
VOICE_SPLITS = ("speaker", "random")
BALANCE = ("corpus-class", "speaker-class", "none")  # train voice --balance
ADVERSARY_ON = ("corpus", "sentence")  # train voice --adversary-on
EXTRA_TEST_FRACTION = 0.3  # train face --extra-train: the fraction of its subjects held out (by --split-seed)
HEAD_UNITS = 64  # train voice --head-units: the dense head's width, as every shipped voice model has it


def check_choice(option: str, value: str, choices: Sequence[str]) -> None:
    """One-line error naming the option, the value and the choices."""
    if value not in choices:
        raise EdgeemoError(f"unknown {option} {value!r} (expected {', '.join(choices)})")


def db_range(option: str, value: str) -> tuple[float, float]:
    """``MIN,MAX`` in dB, or a one-line error naming the option."""
    try:
        lo, hi = (float(v) for v in value.split(","))
    except ValueError:
        raise EdgeemoError(f"{option} must be MIN,MAX in dB, got {value!r}") from None
    return lo, hi


def check_paths(option: str, paths: Sequence[Path]) -> None:
    """Every path must exist (the data is read only after TensorFlow is imported)."""
    for path in paths:
        if not path.exists():
            raise EdgeemoError(f"{option}: no such file or folder", path)


def check_common(arch: str, archs: Sequence[str], schedule: str, precision: str, class_weight: str,
                 split: str, splits: Sequence[str]) -> None:
    """The options face and voice training share."""
    check_choice("--arch", arch, archs)
    check_choice("--schedule", schedule, SCHEDULES)
    check_choice("--precision", precision, PRECISIONS)
    check_choice("--class-weight", class_weight, CLASS_WEIGHTS)
    check_choice("--split", split, splits)


def check_summary(arch: str, summary: str) -> None:
    """A voice model's input summary and its architecture must fit: functionals (a vector) go with mlp only."""
    from edgeemo.voice import SUMMARIES

    check_choice("--summary", summary, SUMMARIES)
    if (arch == "mlp") != (summary == "functionals"):
        raise EdgeemoError("--summary functionals goes with --arch mlp (a vector per clip), and only with it")
