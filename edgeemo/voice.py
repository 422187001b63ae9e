"""THE voice model input: the audio front end (``edgeemo.audio``) plus the training set's
per-coefficient standardisation, as one value stored in every voice model's manifest.

``preprocess_clip`` is what training, calibration, export verification, bench and the
device call on a clip of samples; ``None`` means "no speech" (the clip is not classified).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeemo.audio import DEFAULT_VOICE, AudioFeatures, RunningStats, clip_features, load_audio, standardize
from edgeemo.errors import EdgeemoError


@dataclass(frozen=True)
class VoicePreprocessing:
    """Front-end parameters and the standardisation statistics of the training features."""

    features: AudioFeatures = DEFAULT_VOICE
    count: int = 0  # frames the statistics were computed over (0 = identity: no statistics)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    @classmethod
    def from_stats(cls, features: AudioFeatures, stats: RunningStats) -> VoicePreprocessing:
        d = stats.to_dict()
        if len(d["mean"]) != features.n_features:
            raise EdgeemoError(f"statistics have {len(d['mean'])} coefficients, features {features.n_features}")
        return cls(features, d["count"], tuple(d["mean"]), tuple(d["std"]))

    @property
    def input_shape(self) -> tuple[int, int]:
        """(frames, coefficients) of one model input."""
        return (self.features.n_frames, self.features.n_features)

    def standardize(self, x: np.ndarray) -> np.ndarray:
        """(x - mean) / std per coefficient, float32 (identity without statistics)."""
        if not self.count:
            return np.asarray(x, np.float32)
        return standardize(x, self.mean, self.std)

    def to_dict(self) -> dict[str, Any]:
        d = self.features.to_dict()
        if self.count:
            d["standardize"] = {"kind": "standardize", "count": self.count, "mean": list(self.mean),
                                "std": list(self.std)}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VoicePreprocessing:
        if not isinstance(d, dict):
            raise EdgeemoError(f"voice preprocessing must be a table/object, got {type(d).__name__}")
        d = dict(d)
        standardize = d.pop("standardize", None)
        features = AudioFeatures.from_dict(d)
        if standardize is None:
            return cls(features)
        RunningStats.from_dict(standardize)  # validates kind, count, finite mean, std >= 0
        mean, std = tuple(float(v) for v in standardize["mean"]), tuple(float(v) for v in standardize["std"])
        if len(mean) != features.n_features:
            raise EdgeemoError(f"statistics have {len(mean)} coefficients, features {features.n_features}")
        return cls(features, int(standardize["count"]), mean, std)  # exactly as stored: no round trip


def preprocess_clip(samples: np.ndarray, pre: VoicePreprocessing) -> np.ndarray | None:
    """Float mono samples at 16 kHz -> standardised (frames, coefficients) float32, or None for no speech."""
    feats = clip_features(samples, pre.features)
    return None if feats is None else pre.standardize(feats)


def preprocess_file(path: str | Path, pre: VoicePreprocessing) -> np.ndarray | None:
    """preprocess_clip of an audio file (any rate/format load_audio accepts)."""
    samples, _ = load_audio(path, pre.features.sample_rate)
    return preprocess_clip(samples, pre)


def preprocess_files(
    paths: Sequence[str | Path],
    pre: VoicePreprocessing,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs for many files: (x (n_speech, frames, coeffs), kept indices into ``paths``).

    Clips without speech are left out (their indices are missing from ``kept``).
    """
    rows, kept = [], []
    for i, path in enumerate(paths):
        x = preprocess_file(path, pre)
        if x is not None:
            rows.append(x)
            kept.append(i)
        if progress is not None:
            progress(i + 1)
    frames, coeffs = pre.input_shape
    x = np.stack(rows) if rows else np.zeros((0, frames, coeffs), np.float32)
    return x, np.asarray(kept, np.int64)
