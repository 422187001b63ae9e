"""Which face image files a dataset holds, with their labels and subjects, without decoding any.

The index is what a training run splits (by subject where there are subjects) and what
streaming training reads file by file; ``edgeemo.face_datasets.load_faces`` decodes it into
memory. Layouts (``index_faces`` recognises them from the files):

- label folders: ``<root>/<label>/*.jpg`` (FER2013's ``train/`` and ``publictest/``; CK+48,
  whose ``S<subject>_<seq>_<frame>`` file names give the subject). A root of split folders
  (``train/``, ``publictest/``) is read one split at a time.
- ``labels.csv`` with columns ``path`` (relative to the CSV's folder), ``label`` (a canonical
  name or a FER2013 code 0-6) and optionally ``subject`` (then splits hold out whole subjects).
- FER+ (``fer2013new.csv``, Barsoum et al. 2016): FER2013 relabelled by 10 annotators, with the
  images as FER+'s ``generate_training_data.py`` writes them (``FER2013Train/``,
  ``FER2013Valid/``, ``FER2013Test/`` beside the CSV, named by its ``Image name`` column).
  The label is FER+'s majority vote: single votes are dropped as outliers, and the emotion
  with more than half of the remaining votes wins. Rows whose winner is ``unknown``, ``NF``
  (not a face) or ``contempt`` (no canonical class), rows without a majority and rows without
  an image are excluded and counted.

Every problem is an ``EdgeemoError`` naming the file (and the CSV line).
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeemo.errors import EdgeemoError
from edgeemo.labels import EMOTIONS, UnknownLabelError, index_of, to_canonical

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}
CKPLUS_NAME = re.compile(r"^(S\d{3})_(\d{3})_(\d{8})$")
LABELS_CSV = "labels.csv"
FERPLUS_CSV = "fer2013new.csv"
FERPLUS_VOTES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown",
                 "NF")
FERPLUS_FOLDERS = {"train": ("Training", "FER2013Train"), "publictest": ("PublicTest", "FER2013Valid"),
                   "privatetest": ("PrivateTest", "FER2013Test")}
LAYOUTS = ("fer2013", "ckplus", "ferplus", "labels-csv")  # the dataset names index_faces gives


@dataclass
class FaceIndex:
    """Image files (``sources``), labels (index into EMOTIONS), groups (the subject where
    ``subjects``, else the file) and the excluded labels' counts."""

    name: str
    sources: list[str]
    labels: np.ndarray
    groups: np.ndarray
    excluded: Counter = field(default_factory=Counter)
    subjects: bool = False

    def __len__(self) -> int:
        return len(self.sources)

    def subset(self, idx: np.ndarray | list[int], name: str | None = None) -> FaceIndex:
        idx = np.asarray(idx, dtype=np.int64)
        return FaceIndex(name or self.name, [self.sources[i] for i in idx], self.labels[idx], self.groups[idx],
                         Counter(self.excluded), self.subjects)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(EMOTIONS))
        return {name: int(c) for name, c in zip(EMOTIONS, counts, strict=True)}


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def group_of(dataset: str, path: Path) -> str:
    if dataset == "ckplus":
        match = CKPLUS_NAME.match(path.stem)
        if not match:
            raise EdgeemoError("CK+ file name is not S<subject>_<sequence>_<frame>", path)
        return match.group(1)
    return path.stem


def detect_dataset(path: Path) -> str:
    """Guess 'fer2013' or 'ckplus' from a folder's layout (CK+ file names are S###_###_########)."""
    if path.suffix.lower() == ".csv":
        return "fer2013"
    for class_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        for f in class_dir.iterdir():
            if f.suffix.lower() in IMAGE_SUFFIXES:
                return "ckplus" if CKPLUS_NAME.match(f.stem) else "fer2013"
    return "fer2013"


def split_folder(path: Path, split: str) -> tuple[Path, str | None]:
    """The folder ``load_faces`` reads and the split it holds: ``path/split`` in a root of split folders
    (FER2013: ``train/``, ``publictest/``), or ``path`` itself, with no split, for label folders such as CK+48.

    A root of split folders without ``split`` is an error that names the splits it has."""
    if (path / split).is_dir():
        return path / split, split
    subdirs = sorted(p for p in path.iterdir() if p.is_dir())
    if subdirs and all(any(q.is_dir() for q in p.iterdir()) for p in subdirs):  # folders of label folders
        raise EdgeemoError(f"no {split!r} split folder here; the splits present are: "
                           f"{', '.join(p.name for p in subdirs)}", path)
    return path, None


def index_label_folders(root: str | Path, dataset: str = "fer2013", limit_per_class: int | None = None) -> FaceIndex:
    """``root/<label>/*.<img>``; label folder names go through the dataset's label map.

    For CK+ the subject id (``S010`` in ``S010_004_00000017.png``) becomes the group.
    ``limit_per_class`` keeps the first N files of each folder (sorted) for quick runs.
    """
    root = Path(root)
    if not root.is_dir():
        raise EdgeemoError("not a folder", root)
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise EdgeemoError(f"no label folders inside (expected <label>/*.jpg, labels: {', '.join(EMOTIONS)})", root)
    sources: list[str] = []
    labels: list[int] = []
    groups: list[str] = []
    excluded: Counter = Counter()
    for class_dir in class_dirs:
        try:
            canonical = to_canonical(dataset, class_dir.name)
        except UnknownLabelError as exc:
            raise EdgeemoError(f"unexpected label folder: {exc}", class_dir) from None
        files = image_files(class_dir)[:limit_per_class]
        if canonical is None:
            excluded[class_dir.name] += len(files)
            continue
        for path in files:
            sources.append(str(path))
            labels.append(index_of(canonical))
            groups.append(group_of(dataset, path))
    if not sources:
        raise EdgeemoError("no images found in the label folders", root)
    return FaceIndex(dataset, sources, np.array(labels, np.int64), np.array(groups), excluded, dataset == "ckplus")


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row with stripped keys and values) of a CSV with a header; blank rows skipped."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # tolerate a BOM (Excel)
            reader = csv.DictReader(f)
            reader.fieldnames = [(c or "").strip() for c in reader.fieldnames or []]
            for line_no, row in enumerate(reader, start=2):
                row = {k: (v or "").strip() for k, v in row.items() if k is not None}
                if any(row.values()):
                    yield line_no, row
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EdgeemoError(f"cannot read CSV ({exc})", path) from None


def csv_header(path: Path) -> list[str]:
    """The stripped column names of a CSV file's first line (empty if it has none)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            return [c.strip() for c in next(csv.reader(f), [])]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EdgeemoError(f"cannot read CSV ({exc})", path) from None


def _limited(labels: list[int], limit: int | None) -> np.ndarray:
    """Indices of the first ``limit`` rows of each class (all rows without a limit), in file order."""
    y = np.asarray(labels, np.int64)
    if limit is None:
        return np.arange(len(y))
    return np.sort(np.concatenate([np.flatnonzero(y == c)[:limit] for c in range(len(EMOTIONS))]))


def index_labels_csv(path: str | Path, limit_per_class: int | None = None) -> FaceIndex:
    """A ``labels.csv``: ``path`` (relative to the CSV's folder), ``label``, optional ``subject``."""
    path = Path(path)
    header = csv_header(path)
    if "path" not in header or "label" not in header:
        raise EdgeemoError(f"expected 'path' and 'label' columns (and optionally 'subject'), got {header}", path)
    with_subjects = "subject" in header
    sources, labels, groups = [], [], []
    excluded: Counter = Counter()
    for line_no, row in _csv_rows(path):
        image = path.parent / row.get("path", "")
        if not row.get("path") or not image.is_file():
            raise EdgeemoError(f"line {line_no}: no such image file {row.get('path', '')!r}", path)
        try:
            canonical = to_canonical("fer2013", row.get("label", ""))
        except UnknownLabelError:
            raise EdgeemoError(f"line {line_no}: unknown label {row.get('label', '')!r} (expected one of "
                               f"{', '.join(EMOTIONS)} or 0-6)", path) from None
        if with_subjects and not row.get("subject"):
            raise EdgeemoError(f"line {line_no}: empty subject", path)
        if canonical is None:
            excluded[row["label"]] += 1
            continue
        sources.append(str(image))
        labels.append(index_of(canonical))
        groups.append(row["subject"] if with_subjects else image.stem)
    keep = _limited(labels, limit_per_class)
    if not len(keep):
        raise EdgeemoError("no labelled images listed", path)
    return FaceIndex("labels-csv", [sources[i] for i in keep], np.asarray(labels, np.int64)[keep],
                     np.asarray(groups)[keep], excluded, with_subjects)


def ferplus_label(votes: list[float]) -> str:
    """FER+'s majority vote over ``FERPLUS_VOTES`` counts: single votes dropped as outliers, then the
    emotion with more than half of the remaining votes, else ``"no majority"``."""
    kept = [v if v > 1 else 0.0 for v in votes]
    best = int(np.argmax(kept))
    return FERPLUS_VOTES[best] if kept[best] > 0.5 * sum(kept) else "no majority"


def index_ferplus(path: str | Path, split: str = "train", limit_per_class: int | None = None) -> FaceIndex:
    """FER+ labels (``fer2013new.csv``) of one FER2013 usage (``split``: train, publictest, privatetest) over
    the images in ``FER2013Train/``, ``FER2013Valid/``, ``FER2013Test/`` beside the CSV."""
    path = Path(path)
    if split.lower() not in FERPLUS_FOLDERS:
        raise EdgeemoError(f"unknown FER+ split {split!r} (expected one of {sorted(FERPLUS_FOLDERS)})")
    usage, folder = FERPLUS_FOLDERS[split.lower()]
    header = csv_header(path)
    missing = [c for c in ("Usage", "Image name", *FERPLUS_VOTES) if c not in header]
    if missing:
        raise EdgeemoError(f"not a FER+ label file: no column(s) {', '.join(missing)}", path)
    sources, labels = [], []
    excluded: Counter = Counter()
    for line_no, row in _csv_rows(path):
        if row["Usage"] != usage:
            continue
        if not row["Image name"]:  # FER+ left out the FER2013 images that are not faces
            excluded["no image"] += 1
            continue
        try:
            votes = [float(row[c] or 0) for c in FERPLUS_VOTES]
        except ValueError:
            raise EdgeemoError(f"line {line_no}: vote counts must be numbers", path) from None
        winner = ferplus_label(votes)
        canonical = None if winner == "no majority" else to_canonical("ferplus", winner)
        if canonical is None:
            excluded[winner] += 1
            continue
        image = path.parent / folder / row["Image name"]
        if not image.is_file():
            raise EdgeemoError(f"line {line_no}: no such image file {folder}/{row['Image name']} (FER+'s "
                               "generate_training_data.py writes them beside the CSV)", path)
        sources.append(str(image))
        labels.append(index_of(canonical))
    keep = _limited(labels, limit_per_class)
    if not len(keep):
        raise EdgeemoError(f"no labelled {usage} rows", path)
    kept = [sources[i] for i in keep]
    return FaceIndex("ferplus", kept, np.asarray(labels, np.int64)[keep], np.asarray([Path(s).stem for s in kept]),
                     excluded)


def csv_layout(path: Path) -> str:
    """'ferplus', 'labels-csv' or 'fer2013' (the original pixel CSV) by a CSV file's header."""
    header = csv_header(path)
    if "Image name" in header and "Usage" in header:
        return "ferplus"
    if "path" in header and "label" in header:
        return "labels-csv"
    return "fer2013"


def layout_of(path: Path) -> tuple[str, Path]:
    """(layout, the file or folder to read) of a dataset path: a CSV file by its header, a folder by a
    ``labels.csv`` or ``fer2013new.csv`` inside, else label folders ('folders')."""
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise EdgeemoError("expected a dataset folder or a CSV file", path)
        return csv_layout(path), path
    if (path / LABELS_CSV).is_file():
        return "labels-csv", path / LABELS_CSV
    if (path / FERPLUS_CSV).is_file():
        return "ferplus", path / FERPLUS_CSV
    return "folders", path


def has_official_test(path: str | Path) -> bool:
    """Whether ``path`` holds FER2013's PublicTest beside its training split (a FER2013 root with
    ``publictest/``, or FER+), read with ``split="publictest"``."""
    path = Path(path)
    if not path.exists():
        return False
    if path.is_dir() and (path / "publictest").is_dir():
        return True
    return layout_of(path)[0] == "ferplus" if path.is_dir() or path.suffix.lower() == ".csv" else False


def index_faces(
    path: str | Path, dataset: str = "auto", split: str = "train", limit_per_class: int | None = None
) -> FaceIndex:
    """The image files of any supported layout (module docstring); ``split`` picks FER2013's or FER+'s
    split, ``dataset`` the label map of label folders (auto: CK+ by its file names, else FER2013)."""
    path = Path(path)
    if not path.exists():
        raise EdgeemoError("no such file or folder", path)
    layout, source = layout_of(path)
    if layout == "fer2013":
        raise EdgeemoError("holds pixels, not image files: this needs FER2013 image folders, a labels.csv or "
                           "FER+ images", path)
    if layout in ("labels-csv", "ferplus"):
        if dataset not in ("auto", layout):
            raise EdgeemoError(f"--dataset {dataset} does not fit a {layout} dataset", source)
        if layout == "ferplus":
            return index_ferplus(source, split, limit_per_class)
        return index_labels_csv(source, limit_per_class)
    folder, _ = split_folder(path, split)
    if dataset == "auto":
        dataset = detect_dataset(folder)
    if dataset not in ("fer2013", "ckplus"):
        raise EdgeemoError(f"--dataset {dataset} does not fit label folders (expected fer2013 or ckplus)", folder)
    return index_label_folders(folder, dataset, limit_per_class)
