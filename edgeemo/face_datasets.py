"""Readers for face datasets: every layout of ``edgeemo.face_index`` (FER2013 and CK+ folders,
``labels.csv``, FER+) decoded into memory, and the original FER2013 CSV of pixels.

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

from edgeemo import MAX_IMAGE_PIXELS
from edgeemo.errors import EdgeemoError
from edgeemo.face import to_gray_uint8
from edgeemo.face_index import FaceIndex, index_faces, index_label_folders, layout_of
from edgeemo.labels import EMOTIONS

FER_CSV_USAGE = {"train": "Training", "publictest": "PublicTest", "privatetest": "PrivateTest"}


@dataclass
class FaceDataset:
    """Decoded faces (uint8 gray, any size), labels (index into EMOTIONS), groups and sources."""

    name: str
    images: list[np.ndarray]
    labels: np.ndarray
    groups: np.ndarray
    sources: list[str]
    excluded: Counter = field(default_factory=Counter)
    subjects: bool = False  # the groups are subjects (CK+, a labels.csv with a subject column)

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
            self.subjects,
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


MAX_IMAGE_BYTES = 100 * 1024 * 1024  # a face photo is far smaller; refuse before reading it into memory


def _be(data: bytes, offset: int, size: int) -> int:
    return int.from_bytes(data[offset : offset + size], "big")


def _le(data: bytes, offset: int, size: int) -> int:
    return int.from_bytes(data[offset : offset + size], "little")


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first SOFn marker of a JPEG stream."""
    i, n = 2, len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):  # standalone markers: no length
            i += 2
            continue
        length = _be(data, i + 2, 2)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return (_be(data, i + 7, 2), _be(data, i + 5, 2)) if i + 9 <= n else None
        if marker == 0xDA or length < 2:
            return None
        i += 2 + length
    return None


def _pnm_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of a PBM/PGM/PPM/PFM (P1-P6, Pf/PF) or PAM (P7) header."""
    head = data[:4096]
    if head[:2] == b"P7":
        w = re.search(rb"\bWIDTH\s+(\d+)", head)
        h = re.search(rb"\bHEIGHT\s+(\d+)", head)
        return (int(w.group(1)), int(h.group(1))) if w and h else None
    text = re.sub(rb"#[^\n]*", b" ", head[2:])
    tokens = text.split()
    if len(tokens) >= 2 and tokens[0].isdigit() and tokens[1].isdigit():
        return int(tokens[0]), int(tokens[1])
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first IFD of a classic TIFF."""
    order = "little" if data[:2] == b"II" else "big"

    def num(offset: int, size: int) -> int:
        return int.from_bytes(data[offset : offset + size], order)

    ifd = num(4, 4)
    if ifd + 2 > len(data):
        return None
    found: dict[int, int] = {}
    for k in range(min(num(ifd, 2), 4096)):
        entry = ifd + 2 + 12 * k
        if entry + 12 > len(data):
            break
        tag, kind = num(entry, 2), num(entry + 2, 2)
        if tag in (256, 257):
            found[tag] = num(entry + 8, 2) if kind == 3 else num(entry + 8, 4)
    return (found[256], found[257]) if 256 in found and 257 in found else None


def image_header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) an image file's header claims, read without decoding; None if the format is not known.

    Covers PNG, JPEG, BMP, GIF, WebP, TIFF, PNM/PAM/PFM, Sun raster and Radiance HDR, so a
    small file claiming a huge image is refused before a decoder allocates for it.
    """
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return (_be(data, 16, 4), _be(data, 20, 4)) if len(data) >= 24 else None
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    if data[:2] == b"BM" and len(data) >= 26:
        if _le(data, 14, 4) == 12:
            return _le(data, 18, 2), _le(data, 20, 2)
        return abs(int.from_bytes(data[18:22], "little", signed=True)), abs(
            int.from_bytes(data[22:26], "little", signed=True)
        )
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return _le(data, 6, 2), _le(data, 8, 2)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8 ":
            return _le(data, 26, 2) & 0x3FFF, _le(data, 28, 2) & 0x3FFF
        if chunk == b"VP8L":
            bits = _le(data, 21, 4)
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            return _le(data, 24, 3) + 1, _le(data, 27, 3) + 1
        return None
    if data[:4] in (b"II*\x00", b"MM\x00*") and len(data) >= 8:
        return _tiff_size(data)
    if data[:1] == b"P" and data[1:2] in b"1234567fF" and len(data) > 2:
        return _pnm_size(data)
    if data[:4] == b"\x59\xa6\x6a\x95" and len(data) >= 12:
        return _be(data, 4, 4), _be(data, 8, 4)
    if data[:2] == b"#?":
        m = re.search(rb"\n[-+]Y (\d+) [-+]X (\d+)", data[:8192])
        return (int(m.group(2)), int(m.group(1))) if m else None
    return None


def decode_image(data: bytes | np.ndarray, path: str | Path) -> np.ndarray:
    """Decode encoded image bytes as stored (gray, BGR or BGRA), or raise an EdgeemoError naming ``path``.

    The size the header claims is checked first (at most ``MAX_IMAGE_PIXELS`` pixels), so a
    decompression bomb is refused without allocating for it.
    """
    buf = np.frombuffer(data, np.uint8) if isinstance(data, bytes | bytearray) else np.asarray(data, np.uint8)
    if buf.size == 0:
        raise EdgeemoError("empty file, not an image", path)
    size = image_header_size(buf[:65536].tobytes())
    if size is not None:
        width, height = size
        if width == 0 or height == 0:
            raise EdgeemoError(f"image header claims a {width}x{height} (empty) image", path)
        if width * height > MAX_IMAGE_PIXELS:
            raise EdgeemoError(
                f"image header claims {width}x{height} pixels, more than the {MAX_IMAGE_PIXELS:,} edgeemo decodes",
                path,
            )
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:  # OpenCV's own size limits and decoder asserts
        reason = str(exc).strip().splitlines()[-1].strip()[:200]
        raise EdgeemoError(f"not a decodable image ({reason})", path) from None
    if img is None or img.size == 0:
        raise EdgeemoError("not a decodable image (corrupt or unsupported format)", path)
    return img


def read_image_color(path: str | Path) -> np.ndarray:
    """Decode an image file as stored (gray, BGR or BGRA), or raise an EdgeemoError naming it."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_IMAGE_BYTES:
            raise EdgeemoError(f"file is {path.stat().st_size:,} bytes, too large for an image (limit "
                               f"{MAX_IMAGE_BYTES:,})", path)
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise EdgeemoError(f"cannot read file ({exc.strerror or exc})", path) from None
    return decode_image(data, path)


def read_image(path: str | Path) -> np.ndarray:
    """Decode an image file to 2-D uint8 gray, or raise an EdgeemoError naming it."""
    img = read_image_color(path)
    try:
        return to_gray_uint8(img)
    except EdgeemoError as exc:
        raise EdgeemoError(str(exc), path) from None


def decoded(index: FaceIndex) -> FaceDataset:
    """The images of ``index``, decoded (an unreadable one is an error naming it)."""
    return FaceDataset(index.name, [read_image(p) for p in index.sources], index.labels, index.groups,
                       list(index.sources), index.excluded, index.subjects)


def load_image_folders(root: str | Path, dataset: str = "fer2013", limit_per_class: int | None = None) -> FaceDataset:
    """Read ``root/<label>/*.<img>`` (``edgeemo.face_index.index_label_folders``), decoded."""
    return decoded(index_label_folders(root, dataset, limit_per_class))


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


def load_faces(
    path: str | Path, dataset: str = "auto", split: str = "train", limit_per_class: int | None = None
) -> FaceDataset:
    """Read any supported face dataset into memory.

    ``path`` is a label-folder root (``<label>/*.jpg``), a FER2013 root holding split
    folders (``train/``, ``publictest/``; ``split`` picks one), a ``labels.csv`` (or a folder
    holding one), FER+ (``fer2013new.csv`` or its folder; ``split`` picks the usage), or
    ``fer2013.csv`` (``split`` picks the Usage). See ``edgeemo.face_index``.
    """
    path = Path(path)
    if not path.exists():
        raise EdgeemoError("no such file or folder", path)
    if layout_of(path)[0] == "fer2013":  # the original CSV of pixels
        limit = None if limit_per_class is None else limit_per_class * len(EMOTIONS)
        return load_fer2013_csv(path, split, limit=limit)
    return decoded(index_faces(path, dataset, split, limit_per_class))
