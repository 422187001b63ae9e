"""Readers for face datasets: FER2013 (image folders or the original CSV) and CK+48.

Every reader returns a FaceDataset of raw decoded grayscale images, canonical label
indices, and a group id per image (the CK+ subject) so splits can be subject-
independent. Labels that have no canonical class (CK+ ``contempt``) are counted in
``excluded`` and reported, never dropped silently. Any unreadable input raises an
EdgeemoError naming the file.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgeemo.errors import EdgeemoError
from edgeemo.face import to_gray_uint8
from edgeemo.labels import EMOTIONS, UnknownLabelError, index_of, to_canonical

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}
FER_CSV_USAGE = {"train": "Training", "publictest": "PublicTest", "privatetest": "PrivateTest"}
CKPLUS_NAME = re.compile(r"^(S\d{3})_(\d{3})_(\d{8})$")


@dataclass
class FaceDataset:
    """Decoded faces (uint8 gray, any size), labels (index into EMOTIONS), groups and sources."""

    name: str
    images: list[np.ndarray]
    labels: np.ndarray
    groups: np.ndarray
    sources: list[str]
    excluded: Counter = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, idx: np.ndarray | list[int], name: str | None = None) -> FaceDataset:
        idx = np.asarray(idx, dtype=np.int64)
        return FaceDataset(
            name or self.name,
            [self.images[i] for i in idx],
            self.labels[idx],
            self.groups[idx],
            [self.sources[i] for i in idx],
            Counter(self.excluded),
        )

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(EMOTIONS))
        return {name: int(c) for name, c in zip(EMOTIONS, counts, strict=True)}

    def summary(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.class_counts().items())
        text = f"{self.name}: {len(self)} faces ({counts})"
        if self.excluded:
            text += "; excluded (no canonical class): " + ", ".join(
                f"{k} {v}" for k, v in sorted(self.excluded.items())
            )
        return text


def read_image_color(path: str | Path) -> np.ndarray:
    """Decode an image file as stored (gray, BGR or BGRA), or raise an EdgeemoError naming it."""
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise EdgeemoError(f"cannot read file ({exc.strerror})", path) from None
    if data.size == 0:
        raise EdgeemoError("empty file, not an image", path)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise EdgeemoError("not a decodable image (corrupt or unsupported format)", path)
    return img


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to 2-D uint8 gray, or raise an EdgeemoError naming it."""
    img = read_image_color(path)
    try:
        return to_gray_uint8(img)
    except EdgeemoError as exc:
        raise EdgeemoError(str(exc), path) from None


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def load_image_folders(root: str | Path, dataset: str = "fer2013", limit_per_class: int | None = None) -> FaceDataset:
    """Read ``root/<label>/*.<img>``; label folder names go through the dataset's label map.

    For CK+ the subject id (``S010`` in ``S010_004_00000017.png``) becomes the group.
    ``limit_per_class`` keeps the first N files of each folder (sorted) for quick runs.
    """
    root = Path(root)
    if not root.is_dir():
        raise EdgeemoError("not a folder", root)
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise EdgeemoError(f"no label folders inside (expected <label>/*.jpg, labels: {', '.join(EMOTIONS)})", root)
    images: list[np.ndarray] = []
    labels: list[int] = []
    groups: list[str] = []
    sources: list[str] = []
    excluded: Counter = Counter()
    for class_dir in class_dirs:
        try:
            canonical = to_canonical(dataset, class_dir.name)
        except UnknownLabelError as exc:
            raise EdgeemoError(f"unexpected label folder: {exc}", class_dir) from None
        files = _image_files(class_dir)
        if limit_per_class is not None:
            files = files[:limit_per_class]
        if canonical is None:
            excluded[class_dir.name] += len(files)
            continue
        for path in files:
            images.append(read_image(path))
            labels.append(index_of(canonical))
            groups.append(_group_of(dataset, path))
            sources.append(str(path))
    if not images:
        raise EdgeemoError("no images found in the label folders", root)
    return FaceDataset(dataset, images, np.array(labels, np.int64), np.array(groups), sources, excluded)


def _group_of(dataset: str, path: Path) -> str:
    if dataset == "ckplus":
        match = CKPLUS_NAME.match(path.stem)
        if not match:
            raise EdgeemoError("CK+ file name is not S<subject>_<sequence>_<frame>", path)
        return match.group(1)
    return path.stem


def load_fer2013_csv(path: str | Path, split: str = "train", limit: int | None = None) -> FaceDataset:
    """Read the original ``fer2013.csv`` (``emotion,pixels,Usage``), keeping one Usage split."""
    path = Path(path)
    usage = FER_CSV_USAGE.get(split.lower())
    if usage is None:
        raise EdgeemoError(f"unknown FER2013 split {split!r} (expected one of {sorted(FER_CSV_USAGE)})")
    images: list[np.ndarray] = []
    labels: list[int] = []
    sources: list[str] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # tolerate a BOM (Excel)
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:3]] != ["emotion", "pixels", "Usage"]:
                raise EdgeemoError(f"expected header 'emotion,pixels,Usage', got {header}", path)
            for line_no, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != 3:
                    raise EdgeemoError(f"line {line_no}: expected 3 fields, got {len(row)}", path)
                if row[2].strip() != usage:
                    continue
                code, pixels = row[0].strip(), row[1].split()
                if code not in {str(i) for i in range(len(EMOTIONS))}:
                    raise EdgeemoError(f"line {line_no}: emotion must be 0-6, got {code!r}", path)
                if len(pixels) != 48 * 48:
                    raise EdgeemoError(f"line {line_no}: expected 2304 pixels, got {len(pixels)}", path)
                try:
                    values = np.array(pixels, dtype=np.int64)
                except (ValueError, OverflowError):
                    raise EdgeemoError(f"line {line_no}: pixels are not integers", path) from None
                if values.min() < 0 or values.max() > 255:
                    raise EdgeemoError(f"line {line_no}: pixel values outside 0-255", path)
                images.append(values.astype(np.uint8).reshape(48, 48))
                labels.append(int(code))
                sources.append(f"{path}:{line_no}")
                if limit is not None and len(images) >= limit:
                    break
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise EdgeemoError(f"cannot read CSV ({exc})", path) from None
    if not images:
        raise EdgeemoError(f"no rows with Usage={usage}", path)
    return FaceDataset("fer2013", images, np.array(labels, np.int64), np.array(sources), sources)


def detect_dataset(path: Path) -> str:
    """Guess 'fer2013' or 'ckplus' from a folder's layout (CK+ file names are S###_###_########)."""
    if path.suffix.lower() == ".csv":
        return "fer2013"
    for class_dir in sorted(p for p in path.iterdir() if p.is_dir()):
        for f in class_dir.iterdir():
            if f.suffix.lower() in IMAGE_SUFFIXES:
                return "ckplus" if CKPLUS_NAME.match(f.stem) else "fer2013"
    return "fer2013"


def load_faces(
    path: str | Path, dataset: str = "auto", split: str = "train", limit_per_class: int | None = None
) -> FaceDataset:
    """Read any supported face dataset.

    ``path`` is a label-folder root (``<label>/*.jpg``), a FER2013 root holding split
    folders (``train/``, ``publictest/``; ``split`` picks one), or ``fer2013.csv``
    (``split`` picks the Usage).
    """
    path = Path(path)
    if not path.exists():
        raise EdgeemoError("no such file or folder", path)
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise EdgeemoError("expected a dataset folder or a fer2013.csv file", path)
        limit = None if limit_per_class is None else limit_per_class * len(EMOTIONS)
        return load_fer2013_csv(path, split, limit=limit)
    if (path / split).is_dir():
        path = path / split
    if dataset == "auto":
        dataset = detect_dataset(path)
    if dataset not in ("fer2013", "ckplus"):
        raise EdgeemoError(f"unknown face dataset {dataset!r} (expected fer2013 or ckplus)")
    return load_image_folders(path, dataset, limit_per_class=limit_per_class)
