"""The canonical emotion labels and the explicit map from every dataset's own labels.

Every model edgeemo trains predicts these seven classes in the FER2013 order: output
index i always means EMOTIONS[i]. A dataset label maps either to one of them or to ``None``
(excluded); excluded labels are counted and reported by the readers, never dropped
silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""Canonical class order: the FER2013 integer codes 0..6."""

# Per-dataset maps from the label as the dataset writes it (lower-cased) to a canonical
# class, or None where the dataset's class has no canonical counterpart.
DATASET_LABELS: dict[str, dict[str, str | None]] = {
    # FER2013 image folders use the canonical names; the CSV uses integer codes 0..6.
    "fer2013": {name: name for name in EMOTIONS} | {str(code): name for code, name in enumerate(EMOTIONS)},
    # CK+48 folders: anger, contempt, disgust, fear, happy, sadness, surprise (no neutral).
    "ckplus": {
        "anger": "angry",
        "contempt": None,  # not in the canonical 7; excluded and reported
        "disgust": "disgust",
        "fear": "fear",
        "happy": "happy",
        "sadness": "sad",
        "surprise": "surprise",
        "neutral": "neutral",
    },
    # FER+ (fer2013new.csv) vote columns; edgeemo.face_index takes FER+'s majority vote over them.
    "ferplus": {
        "neutral": "neutral",
        "happiness": "happy",
        "surprise": "surprise",
        "sadness": "sad",
        "anger": "angry",
        "disgust": "disgust",
        "fear": "fear",
        "contempt": None,  # not in the canonical 7
        "unknown": None,  # the annotators could not tell
        "nf": None,  # not a face
    },
    # RAVDESS emotion field 01..08.
    "ravdess": {
        "01": "neutral",
        "02": "neutral",  # calm: mapped to neutral by default (configurable by callers)
        "03": "happy",
        "04": "sad",
        "05": "angry",
        "06": "fear",
        "07": "disgust",
        "08": "surprise",
    },
    # TESS folder/file suffixes.
    "tess": {
        "angry": "angry",
        "disgust": "disgust",
        "fear": "fear",
        "happy": "happy",
        "sad": "sad",
        "ps": "surprise",  # pleasant surprise
        "pleasant_surprise": "surprise",
        "pleasant_surprised": "surprise",
        "neutral": "neutral",
    },
    # CREMA-D has no surprise class.
    "cremad": {
        "ang": "angry",
        "dis": "disgust",
        "fea": "fear",
        "hap": "happy",
        "sad": "sad",
        "neu": "neutral",
    },
    # SAVEE file-name codes.
    "savee": {
        "a": "angry",
        "d": "disgust",
        "f": "fear",
        "h": "happy",
        "sa": "sad",
        "su": "surprise",
        "n": "neutral",
    },
}


class UnknownLabelError(ValueError):
    """A dataset label that is in neither the canonical set nor the dataset's map."""


def to_canonical(dataset: str, raw: str, overrides: Mapping[str, str | None] | None = None) -> str | None:
    """Map a dataset's own label to a canonical emotion, ``None`` if it is excluded.

    Raises UnknownLabelError for a label the dataset's map does not know, so a
    misspelt folder is an error rather than a silently missing class.
    """
    table = dict(DATASET_LABELS[dataset])
    if overrides:
        table.update({k.lower(): v for k, v in overrides.items()})
    key = raw.strip().lower()
    if key not in table:
        known = ", ".join(sorted(k for k in table if not k.isdigit()) or sorted(table))
        raise UnknownLabelError(f"unknown {dataset} label {raw!r} (expected one of: {known})")
    return table[key]


def index_of(label: str) -> int:
    """Index of a canonical label in EMOTIONS."""
    try:
        return EMOTIONS.index(label)
    except ValueError:
        raise UnknownLabelError(f"{label!r} is not a canonical emotion {EMOTIONS}") from None


def class_counts(labels: Iterable[int], n_classes: int = len(EMOTIONS)) -> list[int]:
    """Number of samples per class index."""
    counts = [0] * n_classes
    for y in labels:
        counts[int(y)] += 1
    return counts
