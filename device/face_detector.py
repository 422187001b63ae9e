"""Face detection for the device: OpenCV's Haar cascade (ships with opencv), largest face wins."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edgeemo.errors import EdgeemoError
from edgeemo.face import to_gray_uint8


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h


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


def crop_face(image: np.ndarray, box: Box, margin: float = 0.1) -> np.ndarray:
    """Square crop around ``box`` grown by ``margin`` on each side, clipped to the image."""
    size = int(max(box.w, box.h) * (1 + 2 * margin))
    cx, cy = box.x + box.w // 2, box.y + box.h // 2
    x0, y0 = max(cx - size // 2, 0), max(cy - size // 2, 0)
    x1, y1 = min(x0 + size, image.shape[1]), min(y0 + size, image.shape[0])
    return image[y0:y1, x0:x1]
