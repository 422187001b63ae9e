"""Face detection and THE face crop, shared by the daemon (``FacePath``), ``edgeemo bench --detect``
and ``edgeemo predict face --detect``: a frame goes through ``detect_faces`` (shrink to
``detect_width``, detect, boxes back in frame pixels) and ``crop_face`` (square crop with a margin),
so every caller measures and serves the same path.

Detectors (``make_detector`` builds the one ``DetectorSettings`` name):

- ``blazeface`` (default): MediaPipe's BlazeFace short-range DNN (faces within about 2 m, any
  in-plane pose the cascade misses), run by LiteRT; the most confident face comes first. Its
  model file ships inside edgeemo (``edgeemo/detectors``, Apache-2.0, sha256-pinned).
- ``haar``: OpenCV's frontal-face Haar cascade (ships with opencv); the largest face comes first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edgeemo.errors import EdgeemoError
from edgeemo.face import to_gray_uint8

DETECTORS = ("blazeface", "haar")
DEFAULT_DETECTOR = "blazeface"
# Crop margin around the detected box, per side. 0 (the box itself, squared) was chosen on the Taiwanese
# development photos: it beats 0.1 by 3 points with BlazeFace and 7 with Haar, mean of five box shifts
# (benchmarks/results/experiments/face_crop_margin.md); wider crops frame the face unlike FER2013.
DEFAULT_FACE_MARGIN = 0.0


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int
    score: float = 1.0  # detector confidence (the Haar cascade has none: 1.0)

    @property
    def area(self) -> int:
        return self.w * self.h


class FaceDetector(Protocol):
    """Anything with ``detect(image) -> list[Box]`` (the face to use first)."""

    def detect(self, image: np.ndarray) -> list[Box]: ...


@dataclass(frozen=True)
class DetectorSettings:
    """Which detector and how it is run: the detection keys of the daemon's ``[pipeline]`` table."""

    detector: str = DEFAULT_DETECTOR  # blazeface (DNN, most confident face) or haar (cascade, largest face)
    detector_model: str = ""  # blazeface: another copy of its model file (same sha256); default: the shipped one
    detect_min_score: float = 0.5  # blazeface: lowest face confidence kept
    detect_width: int = 320  # frames are shrunk to this width for detection (0 = full size)
    detect_scale_factor: float = 1.2  # haar: pyramid step (1.1: finer and about twice as slow)
    min_face: int = 40  # haar: smallest face (pixels, in the detection image)
    face_margin: float = DEFAULT_FACE_MARGIN  # crop margin around the detected box, per side

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise EdgeemoError(f"detector must be one of {', '.join(DETECTORS)}, got {self.detector!r}")
        if not 0.0 < self.detect_min_score < 1.0:
            raise EdgeemoError(f"detect_min_score must be in (0, 1), got {self.detect_min_score}")
        if not self.detect_scale_factor > 1.0:
            raise EdgeemoError(f"detect_scale_factor must be > 1, got {self.detect_scale_factor}")
        if self.min_face < 1:
            raise EdgeemoError(f"min_face must be >= 1, got {self.min_face}")
        if self.detect_width < 0 or self.face_margin < 0:
            raise EdgeemoError("detect_width and face_margin must be >= 0")


class HaarFaceDetector:
    """Frontal-face Haar cascade. ``detect`` returns boxes, largest first."""

    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml", min_size: int = 40,
                 scale_factor: float = 1.1) -> None:
        path = cv2.data.haarcascades + cascade
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise EdgeemoError("cannot load the Haar cascade shipped with opencv", path)
        if scale_factor <= 1.0:
            raise EdgeemoError(f"Haar scale_factor must be > 1, got {scale_factor}")
        self.min_size = min_size
        self.scale_factor = scale_factor  # step between pyramid levels: 1.2 is about twice as fast as 1.1

    def detect(self, image: np.ndarray) -> list[Box]:
        gray = cv2.equalizeHist(to_gray_uint8(image))
        found = self.cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=5, minSize=(self.min_size, self.min_size)
        )
        boxes = [Box(int(x), int(y), int(w), int(h)) for x, y, w, h in found]
        return sorted(boxes, key=lambda b: b.area, reverse=True)


# MediaPipe's BlazeFace short-range model, shipped in edgeemo/detectors (see its README.md for provenance).
BLAZEFACE_MODEL = Path(__file__).resolve().parent / "detectors" / "face_detection_short_range.tflite"
BLAZEFACE_SHA256 = "3bc182eb9f33925d9e58b5c8d59308a760f4adea8f282370e428c51212c26633"


def blazeface_anchors() -> np.ndarray:
    """The 896 SSD anchor centres (x, y in 0-1) of MediaPipe's short-range face detector:
    a 16x16 grid with 2 anchors per cell (stride 8), then an 8x8 grid with 6 (three stride-16 layers)."""
    centres = []
    for grid, per_cell in ((16, 2), (8, 6)):
        ys, xs = np.meshgrid((np.arange(grid) + 0.5) / grid, (np.arange(grid) + 0.5) / grid, indexing="ij")
        cells = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cells, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


class BlazeFaceDetector:
    """BlazeFace short-range on LiteRT. ``detect`` returns boxes, most confident first.

    The frame is letterboxed to a square (as MediaPipe does), scaled to 128x128 RGB in [-1, 1];
    scores are sigmoids, boxes decoded against the anchors, overlaps removed by NMS.
    """

    SIZE = 128

    def __init__(self, model: str | Path | None = None, min_score: float = 0.5, nms_iou: float = 0.3,
                 threads: int | None = 1) -> None:
        from edgeemo.runtime import tflite_interpreter_class

        path = Path(model) if model else BLAZEFACE_MODEL
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise EdgeemoError(f"cannot read the face detector model ({exc.strerror or exc})", path) from None
        if hashlib.sha256(content).hexdigest() != BLAZEFACE_SHA256:
            raise EdgeemoError(
                "not the BlazeFace short-range model edgeemo decodes (sha256 differs from the file "
                "shipped in edgeemo/detectors); refusing to load it", path)
        if not 0.0 < min_score < 1.0 or not 0.0 < nms_iou < 1.0:
            raise EdgeemoError(f"blazeface min_score and nms_iou must be in (0, 1), got {min_score} and {nms_iou}")
        interpreter_cls, self.backend = tflite_interpreter_class()
        self._content = content  # the interpreter reads from this buffer: keep it alive
        self.interpreter = interpreter_cls(model_content=content, num_threads=threads)
        self.interpreter.allocate_tensors()
        self._in = self.interpreter.get_input_details()[0]["index"]
        outs = {tuple(o["shape"]): o["index"] for o in self.interpreter.get_output_details()}
        self._boxes, self._scores = outs[(1, 896, 16)], outs[(1, 896, 1)]
        self.min_score, self.nms_iou = min_score, nms_iou
        self.path = path

    @cached_property
    def anchors(self) -> np.ndarray:
        return blazeface_anchors()

    def detect(self, image: np.ndarray) -> list[Box]:
        if image.size == 0:
            return []
        rgb = _to_rgb(image)
        h, w = rgb.shape[:2]
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        square = cv2.copyMakeBorder(rgb, top, side - h - top, left, side - w - left, cv2.BORDER_CONSTANT)
        x = cv2.resize(square, (self.SIZE, self.SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)
        self.interpreter.set_tensor(self._in, (x / 127.5 - 1.0)[None])
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self._boxes)[0]
        logits = np.clip(self.interpreter.get_tensor(self._scores)[0, :, 0].astype(np.float64), -100.0, 100.0)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = np.flatnonzero(scores >= self.min_score)
        if keep.size == 0:
            return []
        centre = raw[keep, :2] / self.SIZE + self.anchors[keep]
        size = raw[keep, 2:4] / self.SIZE
        corners = np.concatenate([centre - size / 2, size], axis=1) * side  # x, y, w, h in the square
        corners[:, 0] -= left
        corners[:, 1] -= top
        rects = [[float(v) for v in c] for c in corners]
        picked = cv2.dnn.NMSBoxes(rects, scores[keep].tolist(), self.min_score, self.nms_iou)
        boxes = []
        for i in np.asarray(picked, dtype=np.int64).reshape(-1):
            bx, by, bw, bh = corners[i]
            x0, y0 = max(int(round(bx)), 0), max(int(round(by)), 0)
            x1, y1 = min(int(round(bx + bw)), w), min(int(round(by + bh)), h)
            if x1 > x0 and y1 > y0:
                boxes.append(Box(x0, y0, x1 - x0, y1 - y0, float(scores[keep][i])))
        return sorted(boxes, key=lambda b: b.score, reverse=True)


def _to_rgb(image: np.ndarray) -> np.ndarray:
    """BGR/BGRA/gray uint8 frame (OpenCV order) to RGB uint8."""
    gray = to_gray_uint8(image) if image.ndim == 2 or image.dtype != np.uint8 else None
    if gray is not None:
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    if image.shape[2] == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def make_detector(settings: DetectorSettings | None = None, threads: int | None = 1) -> FaceDetector:
    """The face detector the settings name (default: BlazeFace with its shipped model file)."""
    s = settings or DetectorSettings()
    if s.detector == "blazeface":
        return BlazeFaceDetector(s.detector_model or None, s.detect_min_score, threads=threads)
    return HaarFaceDetector(min_size=s.min_face, scale_factor=s.detect_scale_factor)


def detect_faces(frame: np.ndarray, detector: FaceDetector, detect_width: int = 320) -> list[Box]:
    """Face boxes in full-frame pixels, in the detector's order (the face to use first); the
    detector sees a copy shrunk to ``detect_width`` (0, or a narrower frame: full size)."""
    h, w = frame.shape[:2]
    scale = detect_width / w if 0 < detect_width < w else 1.0
    small = frame if scale == 1.0 else cv2.resize(frame, (detect_width, max(1, round(h * scale))),
                                                  interpolation=cv2.INTER_AREA)
    boxes = detector.detect(small)
    if scale == 1.0:
        return list(boxes)
    return [Box(round(b.x / scale), round(b.y / scale), round(b.w / scale), round(b.h / scale), b.score)
            for b in boxes]


FRAMED_SIDE = 144  # a 48x48 face at x3
FRAME_PAD = (48, 48, 88, 88)  # top, bottom, left, right: the face as a head in a 320x240 frame


def face_in_frame(image: np.ndarray, border: int = cv2.BORDER_CONSTANT) -> np.ndarray:
    """A dataset face (e.g. 48x48) enlarged to ``FRAMED_SIDE`` px in the middle of a 320x240 gray
    uint8 frame, so the detector can find it: mid-gray around it, or its own edges extended with
    ``border=cv2.BORDER_REPLICATE``."""
    face = cv2.resize(to_gray_uint8(image), (FRAMED_SIDE, FRAMED_SIDE), interpolation=cv2.INTER_CUBIC)
    return cv2.copyMakeBorder(face, *FRAME_PAD, border, value=128)


def crop_face(image: np.ndarray, box: Box, margin: float = DEFAULT_FACE_MARGIN) -> np.ndarray:
    """Square crop around ``box`` grown by ``margin`` on each side, clipped to the image."""
    size = int(max(box.w, box.h) * (1 + 2 * margin))
    cx, cy = box.x + box.w // 2, box.y + box.h // 2
    x0, y0 = max(cx - size // 2, 0), max(cy - size // 2, 0)
    x1, y1 = min(x0 + size, image.shape[1]), min(y0 + size, image.shape[0])
    return image[y0:y1, x0:x1]


def find_face(frame: np.ndarray, detector: FaceDetector, settings: DetectorSettings | None = None
              ) -> tuple[list[Box], np.ndarray | None]:
    """THE camera path up to the model: every face box (the first is the one used) and the crop
    of the first face, or ([], None). The daemon's ``FacePath``, ``edgeemo bench --detect`` and
    ``edgeemo predict face --detect`` all detect with ``detect_faces`` and crop with ``crop_face``."""
    s = settings or DetectorSettings()
    boxes = detect_faces(frame, detector, s.detect_width)
    if not boxes:
        return [], None
    crop = crop_face(frame, boxes[0], s.face_margin)
    return boxes, crop if crop.size else None
