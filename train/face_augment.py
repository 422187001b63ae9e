"""Training-time augmentation from Keras preprocessing layers (applied in the input pipeline only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import keras
import numpy as np
from keras import layers

from edgeemo.face_detect import DetectorSettings, crop_face, detect_faces, face_in_frame, make_detector


@dataclass(frozen=True)
class FaceAugmentation:
    """Ranges for face augmentation; 0 disables a transform. Images are in the [0, 1] model range."""

    rotation_deg: float = 10.0
    shift: float = 0.1
    zoom: float = 0.1
    flip: bool = True
    brightness: float = 0.2
    contrast: float = 0.2
    noise_std: float = 0.02

    def to_dict(self) -> dict:
        return asdict(self)


def face_augmenter(cfg: FaceAugmentation, seed: int = 0) -> keras.Sequential | None:
    """A stack of random layers; call it with ``training=True`` on a batch of (N, H, W, 1) images.
    None when every transform is off (no augmentation)."""
    stack: list[layers.Layer] = []
    if cfg.flip:
        stack.append(layers.RandomFlip("horizontal", seed=seed))
    if cfg.rotation_deg:
        stack.append(layers.RandomRotation(cfg.rotation_deg / 360.0, fill_mode="reflect", seed=seed + 1))
    if cfg.shift:
        stack.append(layers.RandomTranslation(cfg.shift, cfg.shift, fill_mode="reflect", seed=seed + 2))
    if cfg.zoom:
        stack.append(layers.RandomZoom(cfg.zoom, fill_mode="reflect", seed=seed + 3))
    if cfg.brightness:
        stack.append(layers.RandomBrightness(cfg.brightness, value_range=(0.0, 1.0), seed=seed + 4))
    if cfg.contrast:
        stack.append(layers.RandomContrast(cfg.contrast, value_range=(0.0, 1.0), seed=seed + 5))
    if cfg.noise_std:
        stack.append(layers.GaussianNoise(cfg.noise_std, seed=seed + 6))
    return keras.Sequential(stack, name="face_augmentation") if stack else None


@dataclass(frozen=True)
class CameraAugmentation:
    """What a camera does to a face before THE preprocessing sees it, applied to the raw gray
    crop (each transform with probability ``p``): exposure (pixels times a factor in
    ``exposure``, as in low light), blur (Gaussian, sigma up to ``blur_sigma`` px at the
    model size), a small face (shrunk to ``min_side``-``size`` px and enlarged back),
    sensor noise (sigma up to ``noise_sigma`` grey levels) and JPEG (quality in ``jpeg_quality``).
    Then the crop goes through the model's preprocessing (equalisation included), so
    training sees what the device will. ``detector_p``: probability that the face is first
    re-framed as the device's detector and crop frame it (``detector_framed``), so training
    sees the daemon's framing as well as the dataset's."""

    p: float = 0.3
    exposure: tuple[float, float] = (0.3, 1.3)
    blur_sigma: float = 2.0
    min_side: int = 16
    noise_sigma: float = 12.0
    jpeg_quality: tuple[int, int] = (20, 90)
    detector_p: float = 0.0

    def to_dict(self) -> dict:
        return {"kind": "camera", **asdict(self)}


def degrade_face(gray: np.ndarray, cfg: CameraAugmentation, rng: np.random.Generator) -> np.ndarray:
    """One random camera degradation of a 2-D uint8 crop (same size back)."""
    img = gray.astype(np.float32)
    h, w = gray.shape
    if rng.random() < cfg.p:
        img = img * rng.uniform(*cfg.exposure)
    if rng.random() < cfg.p:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, cfg.blur_sigma))
    if rng.random() < cfg.p:
        side = int(rng.integers(cfg.min_side, max(cfg.min_side + 1, min(h, w))))
        img = cv2.resize(cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA), (w, h),
                         interpolation=cv2.INTER_LINEAR)
    if rng.random() < cfg.p:
        img = img + rng.normal(0.0, rng.uniform(0, cfg.noise_sigma), img.shape)
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < cfg.p:
        quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return out


def detector_framed(images: list[np.ndarray], settings: DetectorSettings | None = None
                    ) -> tuple[list[np.ndarray], int]:
    """Each face as the device would crop it: enlarged into a mid-gray frame, found by the daemon's
    detector (``detect_faces``) and cut by THE crop (``crop_face``, the settings' margin) from the
    same frame with the face's edges extended instead of gray. A face the detector misses stays as
    it is. Returns the crops (any size, gray uint8) and how many faces were found."""
    s = settings or DetectorSettings()
    detector = make_detector(s)
    out, found = [], 0
    for im in images:
        boxes = detect_faces(face_in_frame(im), detector, s.detect_width)
        crop = crop_face(face_in_frame(im, cv2.BORDER_REPLICATE), boxes[0], s.face_margin) if boxes else None
        if crop is None or crop.size == 0:
            out.append(np.asarray(im))
            continue
        found += 1
        out.append(crop)
    return out, found
