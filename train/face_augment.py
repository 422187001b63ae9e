"""Training-time augmentation from Keras preprocessing layers (applied in the input pipeline only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import keras
from keras import layers


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


def face_augmenter(cfg: FaceAugmentation, seed: int = 0) -> keras.Sequential:
    """A stack of random layers; call it with ``training=True`` on a batch of (N, H, W, 1) images."""
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
    return keras.Sequential(stack, name="face_augmentation")
