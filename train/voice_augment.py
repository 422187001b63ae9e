"""Waveform augmentation for voice training (training clips only): noise injection, time
shift, pitch shift and time stretch (pitch and stretch through librosa).

Augmentation is offline: each training clip gets ``copies`` augmented versions whose
features are computed once through THE core front end, so an epoch costs no DSP.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgeemo.errors import EdgeemoError


@dataclass(frozen=True)
class VoiceAugmentation:
    """Ranges of the random waveform transforms; each is applied with probability ``p``."""

    copies: int = 8  # augmented versions per training clip (0 = off)
    noise_snr_db: tuple[float, float] = (15.0, 30.0)  # white noise at this SNR (relative to the clip's RMS)
    shift_s: float = 0.25  # max time shift, seconds (zeros fill the gap)
    pitch_semitones: float = 4.0  # max pitch shift up or down (0 = off)
    stretch: float = 0.15  # time stretch rate in [1 - stretch, 1 + stretch] (0 = off)
    p: float = 0.5

    def __post_init__(self) -> None:
        lo, hi = self.noise_snr_db
        if self.copies < 0 or not (0 <= self.p <= 1) or lo > hi or self.shift_s < 0:
            raise EdgeemoError("invalid voice augmentation (copies >= 0, 0 <= p <= 1, SNR min <= max, shift >= 0)")
        if self.pitch_semitones < 0 or not (0 <= self.stretch < 1):
            raise EdgeemoError("invalid voice augmentation (pitch >= 0 semitones, 0 <= stretch < 1)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def augment_waveform(x: np.ndarray, aug: VoiceAugmentation, rng: np.random.Generator,
                     sample_rate: int = 16000) -> np.ndarray:
    """One random augmented version of float samples ``x`` (mono, ``sample_rate``)."""
    y = np.asarray(x, np.float32)
    if aug.stretch > 0 and rng.random() < aug.p and len(y) > 2048:
        import librosa

        y = librosa.effects.time_stretch(y, rate=float(rng.uniform(1 - aug.stretch, 1 + aug.stretch)))
    if aug.pitch_semitones > 0 and rng.random() < aug.p and len(y) > 2048:
        import librosa

        steps = float(rng.uniform(-aug.pitch_semitones, aug.pitch_semitones))
        y = librosa.effects.pitch_shift(y, sr=sample_rate, n_steps=steps, res_type="soxr_hq")
    if aug.shift_s > 0 and rng.random() < aug.p:
        n = int(rng.uniform(-aug.shift_s, aug.shift_s) * sample_rate)
        y = np.concatenate([np.zeros(n, np.float32), y]) if n > 0 else y[-n:]
    if rng.random() < aug.p and len(y):
        rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
        snr = rng.uniform(*aug.noise_snr_db)
        y = y + rng.normal(0.0, rms / (10 ** (snr / 20)), len(y)).astype(np.float32)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class FeatureMasking:
    """SpecAugment-style masking of standardised MFCC batches (training only, on the fly):
    ``time_masks`` spans of up to ``time_width`` frames and ``coeff_masks`` spans of up to
    ``coeff_width`` coefficients are set to 0 (the training mean) in each clip."""

    time_masks: int = 2
    time_width: int = 20
    coeff_masks: int = 2
    coeff_width: int = 4

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def active(self) -> bool:
        return (self.time_masks > 0 and self.time_width > 0) or (self.coeff_masks > 0 and self.coeff_width > 0)


def mask_features(x: Any, masking: FeatureMasking, seed: int = 0) -> Any:
    """Apply ``masking`` to a (batch, frames, coeffs) tf tensor; a tf function for tf.data ``map``."""
    import tensorflow as tf

    shape = tf.shape(x)
    batch, frames, coeffs = shape[0], shape[1], shape[2]
    keep = tf.ones_like(x)
    for axis, count, width, size in ((1, masking.time_masks, masking.time_width, frames),
                                     (2, masking.coeff_masks, masking.coeff_width, coeffs)):
        for _ in range(count):
            w = tf.random.uniform([batch, 1], 0, width + 1, dtype=tf.int32)
            room = tf.cast(tf.maximum(size - w, 1), tf.float32)
            start = tf.cast(tf.random.uniform([batch, 1]) * room, tf.int32)
            idx = tf.range(size)[tf.newaxis, :]
            span = tf.cast((idx >= start) & (idx < start + w), x.dtype)  # (batch, size)
            span = span[:, :, tf.newaxis] if axis == 1 else span[:, tf.newaxis, :]
            keep = keep * (1.0 - span)
    return x * keep
