"""THE face preprocessing: one function from a face crop to the model input.

Training, calibration, export verification, benchmarks and the device all call
``preprocess_face`` with the parameters stored in the model's manifest, so what a
model sees at serve time is what it saw in training.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from edgeemo.errors import EdgeemoError

EQUALIZE = ("none", "hist", "clahe")
MAX_FACE_SIZE = 1024  # model input side, in pixels: anything larger is not a face model's input


@dataclass(frozen=True)
class FacePreprocessing:
    """Parameters of the face preprocessing, stored in every face model's manifest.

    The model input is ``gray_pixel * scale + offset`` at ``size`` x ``size`` x 1.
    With the defaults (scale 1/255, offset 0) an int8 model quantised with scale 1/255
    and zero point -128 receives exactly ``pixel - 128``: the input is lossless.
    ``equalize`` normalises illumination of the resized crop before scaling: ``hist``
    (global histogram equalisation, ``cv2.equalizeHist``), ``clahe`` (contrast-limited
    adaptive equalisation, clip limit 2, 4x4 tiles) or ``none``; a camera's exposure,
    gain and contrast then reach the model far less.
    """

    size: int = 48
    scale: float = 1.0 / 255.0
    offset: float = 0.0
    color: str = "gray"
    interpolation: str = "area"  # cv2.INTER_AREA when shrinking, bilinear when enlarging
    equalize: str = "none"

    def __post_init__(self) -> None:
        # preprocess_face implements only these; anything else (e.g. from a newer manifest)
        # must be refused, not silently served with the gray/area pipeline.
        if not isinstance(self.color, str) or self.color != "gray":
            raise EdgeemoError(f"unsupported face preprocessing color {self.color!r} (only 'gray')")
        if not isinstance(self.interpolation, str) or self.interpolation not in ("area", "linear"):
            raise EdgeemoError(
                f"unsupported face preprocessing interpolation {self.interpolation!r} (expected 'area' or 'linear')"
            )
        if not isinstance(self.equalize, str) or self.equalize not in EQUALIZE:
            raise EdgeemoError(
                f"unsupported face preprocessing equalize {self.equalize!r} (expected {', '.join(EQUALIZE)})"
            )
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 1 <= self.size <= MAX_FACE_SIZE:
            raise EdgeemoError(f"face preprocessing size must be an int from 1 to {MAX_FACE_SIZE}, got {self.size!r}")
        for name in ("scale", "offset"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise EdgeemoError(f"face preprocessing {name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "face", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FacePreprocessing:
        if not isinstance(d, dict):
            raise EdgeemoError(f"face preprocessing must be a table/object, got {type(d).__name__}")
        if d.get("kind", "face") != "face":
            raise EdgeemoError(f"not a face preprocessing (kind {d.get('kind')!r})")
        fields = {k: v for k, v in d.items() if k != "kind"}
        unknown = set(fields) - set(cls.__dataclass_fields__)
        if unknown:
            raise EdgeemoError(f"unknown face preprocessing keys {sorted(unknown)}")
        return cls(**fields)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of one model input."""
        return (self.size, self.size, 1)


DEFAULT_FACE = FacePreprocessing()


def to_gray_uint8(image: np.ndarray) -> np.ndarray:
    """Any decoded image (gray, gray+1 channel, BGR, BGRA; uint8/uint16/float in [0,1]) to 2-D uint8 gray."""
    img = np.asarray(image)
    if img.size == 0 or img.ndim not in (2, 3):
        raise EdgeemoError(f"expected a non-empty 2-D or 3-D image array, got shape {img.shape}")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    elif img.dtype.kind == "f":
        if not np.all(np.isfinite(img)):
            raise EdgeemoError("image contains NaN or infinite values")
        img = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise EdgeemoError(f"unsupported image dtype {img.dtype}")
    if img.ndim == 3:
        channels = img.shape[2]
        if channels == 1:
            img = img[:, :, 0]
        elif channels == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
        elif channels == 4:
            img = cv2.cvtColor(img, cv2.COLOR_BGRA2GRAY)
        else:
            raise EdgeemoError(f"expected 1, 3 or 4 channels, got {channels}")
    return img


def resize_face(gray: np.ndarray, spec: FacePreprocessing = DEFAULT_FACE) -> np.ndarray:
    """A 2-D uint8 crop at the model's ``size`` x ``size`` (area when shrinking, as ``spec`` says; bilinear
    when enlarging). The first step of ``preprocess_face``; training's camera augmentation starts here too."""
    if gray.shape == (spec.size, spec.size):
        return gray
    shrinking = gray.shape[0] >= spec.size and gray.shape[1] >= spec.size
    interp = cv2.INTER_AREA if (shrinking and spec.interpolation == "area") else cv2.INTER_LINEAR
    return cv2.resize(gray, (spec.size, spec.size), interpolation=interp)


def preprocess_face(image: np.ndarray, spec: FacePreprocessing = DEFAULT_FACE) -> np.ndarray:
    """A face crop of any size (gray or BGR) to the float32 model input (size, size, 1)."""
    gray = resize_face(to_gray_uint8(image), spec)
    if spec.equalize == "hist":
        gray = cv2.equalizeHist(np.ascontiguousarray(gray))
    elif spec.equalize == "clahe":
        gray = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply(np.ascontiguousarray(gray))
    out = gray.astype(np.float32) * np.float32(spec.scale) + np.float32(spec.offset)
    return out[:, :, None]


def preprocess_faces(images: list[np.ndarray] | np.ndarray, spec: FacePreprocessing = DEFAULT_FACE) -> np.ndarray:
    """Batch version of preprocess_face: (N, size, size, 1) float32."""
    if len(images) == 0:
        return np.zeros((0, *spec.input_shape), np.float32)
    return np.stack([preprocess_face(im, spec) for im in images])
