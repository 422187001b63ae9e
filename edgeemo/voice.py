"""THE voice model input: the audio front end (``edgeemo.audio``) plus the per-coefficient
standardisation, as one value stored in every voice model's manifest.

``preprocess_clip`` is what training, calibration, export verification, bench and the
device call on a clip of samples; ``None`` means "no speech" (the clip is not classified).

Standardisation is either global (the training set's mean and std) or, when the manifest
has an ``adaptation`` record, adapted to the speaker being heard without labels: each clip
is standardised with the running statistics of the speech heard so far from that speaker
(``SpeakerState``), shrunk towards the training statistics while few clips are in. A
device hears the same few people through one microphone and room, so this removes much of
the speaker's and the channel's offset. Training simulates the same causal estimate.

The model sees either the standardised frames (``summary="frames"``: (frames, coefficients)) or
one vector of utterance functionals of the speech frames (``summary="functionals"``: mean, std,
10/50/90th percentiles, mean absolute and std of frame differences per coefficient; (1, 7 x
coefficients)), plus, when the front end has ``prosody``, the 21 pitch and spectral-balance
functionals of ``edgeemo.prosody``; standardised and adapted the same way, as a vector per clip.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeemo.audio import (
    DEFAULT_VOICE,
    AudioFeatures,
    RunningStats,
    clip_features_span,
    load_audio,
    standardize,
)
from edgeemo.errors import EdgeemoError
from edgeemo.prosody import PROSODY_FUNCTIONALS, prosody_functionals

SUMMARIES = ("frames", "functionals")
FUNCTIONALS = ("mean", "std", "p10", "p50", "p90", "delta_abs_mean", "delta_std")


def clip_functionals(x: np.ndarray, span: tuple[int, int], features: AudioFeatures = DEFAULT_VOICE) -> np.ndarray:
    """The utterance functionals of a clip's speech frames, float32: ``FUNCTIONALS`` of each cepstral
    value, then (``features.prosody``) the ``PROSODY_FUNCTIONALS`` of the prosody columns."""
    frames = np.asarray(x[span[0] : span[1]], np.float64)
    cep = frames[:, : features.n_cepstral]
    diff = np.diff(cep, axis=0) if len(cep) > 1 else np.zeros_like(cep)
    p10, p50, p90 = np.percentile(cep, [10, 50, 90], axis=0)
    parts = [cep.mean(0), cep.std(0), p10, p50, p90, np.abs(diff).mean(0), diff.std(0)]
    if features.prosody:
        parts.append(prosody_functionals(frames[:, features.n_cepstral :], 1.0 / features.winstep,
                                         features.pitch_hop_frames))
    return np.concatenate(parts).astype(np.float32)


def summarize(x: np.ndarray, span: tuple[int, int], summary: str,
              features: AudioFeatures = DEFAULT_VOICE) -> tuple[np.ndarray, tuple[int, int]]:
    """Raw clip features and speech span as the model's summary sees them: unchanged for 'frames',
    a (1, values) row of ``clip_functionals`` with span (0, 1) for 'functionals'."""
    if summary == "frames":
        return x, span
    return clip_functionals(x, span, features)[None, :], (0, 1)


@dataclass(frozen=True)
class SpeakerAdaptation:
    """How a model standardises by the speaker it hears (stored in the manifest as ``adaptation``).

    The statistics of a speaker are the mean of the per-clip moments (mean and mean square
    of each coefficient over the clip's speech frames) of the clips heard so far, the
    current one included, plus ``prior_clips`` clips' worth of the training statistics.
    Beyond ``memory_clips`` clips older ones are forgotten exponentially. The device starts
    a new speaker state after ``reset_after_silence_s`` seconds without speech.
    """

    prior_clips: float = 5.0
    memory_clips: float = 100.0
    reset_after_silence_s: float = 30.0

    def __post_init__(self) -> None:
        for name in ("prior_clips", "memory_clips", "reset_after_silence_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise EdgeemoError(f"voice adaptation {name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.prior_clips <= 0 or self.memory_clips < 1 or self.reset_after_silence_s <= 0:
            raise EdgeemoError("voice adaptation needs prior_clips > 0, memory_clips >= 1, reset_after_silence_s > 0")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "speaker_running", **asdict(self)}

    @classmethod
    def from_dict(cls, d: Any) -> SpeakerAdaptation:
        if not isinstance(d, dict) or d.get("kind") != "speaker_running":
            raise EdgeemoError("voice adaptation must be a table with kind = 'speaker_running'")
        fields = {k: v for k, v in d.items() if k != "kind"}
        unknown = set(fields) - set(cls.__dataclass_fields__)
        if unknown:
            raise EdgeemoError(f"unknown voice adaptation keys {sorted(unknown)}")
        return cls(**fields)


def clip_moments(x: np.ndarray, span: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and mean square of each coefficient over a clip's speech frames (float64)."""
    speech = np.asarray(x[span[0] : span[1]], np.float64)
    return speech.mean(axis=0), np.square(speech).mean(axis=0)


def shrunk_stats(
    sum_mean: np.ndarray, sum_sq: np.ndarray, n: float, mean: np.ndarray, std: np.ndarray, prior: float
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) of ``n`` clips' summed moments plus ``prior`` clips of the training (mean, std)."""
    mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)
    m = (prior * mean + sum_mean) / (prior + n)
    sq = (prior * (std * std + mean * mean) + sum_sq) / (prior + n)
    return m, np.sqrt(np.maximum(sq - m * m, RunningStats.STD_FLOOR**2))


class SpeakerState:
    """The running statistics of one speaker (or one device's listener) for ``SpeakerAdaptation``."""

    def __init__(self, adaptation: SpeakerAdaptation) -> None:
        self.adaptation = adaptation
        self.reset()

    def reset(self) -> None:
        self.n = 0.0
        self.sum_mean: np.ndarray | float = 0.0
        self.sum_sq: np.ndarray | float = 0.0

    def observe(self, x: np.ndarray, span: tuple[int, int], weight: float = 1.0) -> None:
        """Fold one clip's speech frames in (``weight`` < 1 for overlapping device windows)."""
        mean, sq = clip_moments(x, span)
        keep = 1.0
        if self.n + weight > self.adaptation.memory_clips:  # forget the oldest clips exponentially
            keep = max(0.0, (self.adaptation.memory_clips - weight) / self.n)
        self.n = self.n * keep + weight
        self.sum_mean = self.sum_mean * keep + weight * mean
        self.sum_sq = self.sum_sq * keep + weight * sq

    def stats(self, mean: Sequence[float], std: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        n = self.n
        zeros = np.zeros(len(mean))
        sum_mean = self.sum_mean if n else zeros
        sum_sq = self.sum_sq if n else zeros
        return shrunk_stats(np.asarray(sum_mean), np.asarray(sum_sq), n, np.asarray(mean), np.asarray(std),
                            self.adaptation.prior_clips)


def adapted_input(x: np.ndarray, span: tuple[int, int], mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Standardise ``x`` with a speaker's (mean, std); frames outside the speech span become 0."""
    out = standardize(x, mean, std)
    out[: span[0]] = 0.0
    out[span[1] :] = 0.0
    return out


@dataclass(frozen=True)
class VoicePreprocessing:
    """Front-end parameters and the standardisation statistics of the training features."""

    features: AudioFeatures = DEFAULT_VOICE
    count: int = 0  # frames the statistics were computed over (0 = identity: no statistics)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    adaptation: SpeakerAdaptation | None = None  # None: every clip standardised with the training statistics
    summary: str = "frames"  # frames, or functionals: one vector of utterance statistics per clip (SUMMARIES)

    def __post_init__(self) -> None:
        if self.summary not in SUMMARIES:
            raise EdgeemoError(f"voice summary must be one of {', '.join(SUMMARIES)}, got {self.summary!r}")

    @classmethod
    def from_stats(cls, features: AudioFeatures, stats: RunningStats,
                   adaptation: SpeakerAdaptation | None = None, summary: str = "frames") -> VoicePreprocessing:
        d = stats.to_dict()
        pre = cls(features, d["count"], tuple(d["mean"]), tuple(d["std"]), adaptation, summary)
        pre.check_stats()
        return pre

    @property
    def n_values(self) -> int:
        """Values per model input row: the coefficients, or their functionals."""
        if self.summary == "frames":
            return self.features.n_features
        extra = len(PROSODY_FUNCTIONALS) if self.features.prosody else 0
        return self.features.n_cepstral * len(FUNCTIONALS) + extra

    def check_stats(self) -> None:
        if self.count and len(self.mean) != self.n_values:
            raise EdgeemoError(f"statistics have {len(self.mean)} values, the {self.summary} input {self.n_values}")

    def new_speaker(self) -> SpeakerState | None:
        """A fresh running state for one speaker, or None when the model does not adapt."""
        return SpeakerState(self.adaptation) if self.adaptation is not None and self.count else None

    @property
    def input_shape(self) -> tuple[int, int]:
        """(frames, coefficients) of one model input; (1, functionals) for the functionals summary."""
        if self.summary == "functionals":
            return (1, self.n_values)
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
        if self.adaptation is not None:
            d["adaptation"] = self.adaptation.to_dict()
        if self.summary != "frames":
            d["summary"] = self.summary
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VoicePreprocessing:
        if not isinstance(d, dict):
            raise EdgeemoError(f"voice preprocessing must be a table/object, got {type(d).__name__}")
        d = dict(d)
        standardize = d.pop("standardize", None)
        adaptation = d.pop("adaptation", None)
        summary = d.pop("summary", "frames")
        features = AudioFeatures.from_dict(d)
        if adaptation is not None:
            if standardize is None:
                raise EdgeemoError("voice adaptation needs the training statistics (standardize)")
            adaptation = SpeakerAdaptation.from_dict(adaptation)
        if standardize is None:
            return cls(features, summary=summary)
        RunningStats.from_dict(standardize)  # validates kind, count, finite mean, std >= 0
        mean, std = tuple(float(v) for v in standardize["mean"]), tuple(float(v) for v in standardize["std"])
        # exactly as stored: no round trip
        pre = cls(features, int(standardize["count"]), mean, std, adaptation, summary)
        pre.check_stats()
        return pre


def standardize_clip(x: np.ndarray, span: tuple[int, int], pre: VoicePreprocessing,
                     speaker: SpeakerState | None = None, weight: float = 1.0) -> np.ndarray:
    """Raw clip features -> model input. An adapting model folds the clip into ``speaker`` first
    (``weight`` of a clip) and standardises with its statistics; with ``speaker`` None it
    standardises the clip as the first clip of a new speaker (per clip, no memory). With the
    functionals summary the clip's functionals are standardised and adapted instead of its frames."""
    x, span = summarize(x, span, pre.summary, pre.features)
    if pre.adaptation is None or not pre.count:
        return pre.standardize(x)
    state = speaker if speaker is not None else SpeakerState(pre.adaptation)
    state.observe(x, span, weight if speaker is not None else 1.0)  # alone: one whole clip, as a file
    mean, std = state.stats(pre.mean, pre.std)
    return adapted_input(x, span, mean, std)


def preprocess_clip(samples: np.ndarray, pre: VoicePreprocessing, speaker: SpeakerState | None = None,
                    weight: float = 1.0) -> np.ndarray | None:
    """Float mono samples at 16 kHz -> standardised (frames, coefficients) float32, or None for no speech.

    ``speaker`` (from ``pre.new_speaker()``) carries an adapting model's running statistics
    from clip to clip; see ``standardize_clip``.
    """
    out = clip_features_span(samples, pre.features)
    if out is None:
        return None
    return standardize_clip(out[0], out[1], pre, speaker, weight)


def preprocess_file(path: str | Path, pre: VoicePreprocessing,
                    speaker: SpeakerState | None = None) -> np.ndarray | None:
    """preprocess_clip of an audio file (any rate/format load_audio accepts)."""
    samples, _ = load_audio(path, pre.features.sample_rate)
    return preprocess_clip(samples, pre, speaker)


def preprocess_files(
    paths: Sequence[str | Path],
    pre: VoicePreprocessing,
    progress: Callable[[int], None] | None = None,
    speakers: Sequence[str] | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Model inputs for many files: (x (n_speech, frames, coeffs), kept indices into ``paths``).

    Clips without speech are left out (their indices are missing from ``kept``). An adapting
    model with ``speakers`` (one name per path) hears each speaker's clips in a seeded random
    order, each standardised by that speaker's running statistics so far, current clip
    included: causal, as on a device. The order depends on the set of paths and the seed, not
    on the order they are given in. Without ``speakers`` every clip stands alone. Rows come
    back in the order of ``paths`` either way.
    """
    order = np.arange(len(paths))
    states: dict[str, SpeakerState | None] = {}
    if speakers is not None and pre.adaptation is not None:
        if len(speakers) != len(paths):
            raise EdgeemoError(f"got {len(paths)} clips and {len(speakers)} speaker names")
        by_name = np.argsort(np.asarray([str(p) for p in paths]), kind="stable")  # the same set: the same order
        order = by_name[np.random.default_rng(seed).permutation(len(paths))]
    rows: dict[int, np.ndarray] = {}
    for done, i in enumerate(order):
        state = None
        if speakers is not None and pre.adaptation is not None:
            state = states.setdefault(str(speakers[i]), pre.new_speaker())
        x = preprocess_file(paths[i], pre, state)
        if x is not None:
            rows[int(i)] = x
        if progress is not None:
            progress(done + 1)
    kept = sorted(rows)
    frames, coeffs = pre.input_shape
    x = np.stack([rows[i] for i in kept]) if kept else np.zeros((0, frames, coeffs), np.float32)
    return x, np.asarray(kept, np.int64)
