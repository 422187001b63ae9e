"""Late fusion of the face and voice emotion distributions over the canonical 7 classes.

Each modality reports a probability vector with a timestamp, or reports explicitly that it
has nothing ("no face" in the frame, "no speech" in the window). ``Fusion.result(now)``
combines the fresh ones by weighted log-linear pooling (a product of experts)::

    log p(c) = sum_m w_m * c_m * log(p_m(c) + eps) - log Z

with a per-modality weight ``w_m`` and a per-reading confidence ``c_m`` (by default one
minus the normalised entropy of the distribution, so a flat, unsure distribution counts
less); the products ``w_m * c_m`` are scaled to sum 1 over the fresh modalities, so weights
are relative and a modality alone passes through (up to ``eps``). A reading older than its
modality's ``max_age_s`` is stale and dropped from fusion. The fused distribution is
smoothed over time with an exponential moving average whose time constant is
``smoothing_s`` (irregular update rates smooth the same per second); the EMA restarts when
no modality is fresh. Pure numpy; no model, camera or clock inside.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeemo.errors import EdgeemoError
from edgeemo.labels import EMOTIONS

EPS = 1e-4  # probability floor inside the log: one zero cannot veto a class
MODALITIES = ("face", "voice")

# Why a modality is not in the fused result.
OK, ABSENT, STALE, WAITING = "ok", "absent", "stale", "waiting"


def to_canonical(probs: Sequence[float] | np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """A model's output vector (in its manifest's label order) as float64 over EMOTIONS.

    Classes the model does not predict get probability 0; the result is renormalised.
    """
    p = np.asarray(probs, np.float64).reshape(-1)
    if len(p) != len(labels):
        raise EdgeemoError(f"{len(p)} probabilities for {len(labels)} labels")
    out = np.zeros(len(EMOTIONS), np.float64)
    for label, value in zip(labels, p, strict=True):
        if label not in EMOTIONS:
            raise EdgeemoError(f"label {label!r} is not a canonical emotion {list(EMOTIONS)}")
        out[EMOTIONS.index(label)] += value
    return normalize(out)


def normalize(p: np.ndarray) -> np.ndarray:
    """Clip negatives and non-finite values to 0 and scale to sum 1 (uniform if nothing is left)."""
    p = np.where(np.isfinite(p), np.maximum(p, 0.0), 0.0)
    total = p.sum()
    return p / total if total > 0 else np.full(len(p), 1.0 / len(p))


def entropy_confidence(p: np.ndarray) -> float:
    """1 - H(p) / log(K): 1 for a one-hot distribution, 0 for a uniform one."""
    q = normalize(np.asarray(p, np.float64))
    h = -float(np.sum(q * np.log(np.clip(q, 1e-12, 1.0))))
    return float(np.clip(1.0 - h / math.log(len(q)), 0.0, 1.0))


def log_linear(dists: Sequence[np.ndarray], weights: Sequence[float], eps: float = EPS) -> np.ndarray:
    """Weighted log-linear pooling: normalised prod_m (p_m + eps) ** w_m. Weights must be >= 0."""
    if not dists:
        raise EdgeemoError("log-linear fusion needs at least one distribution")
    if any(w < 0 for w in weights):
        raise EdgeemoError(f"fusion weights must be >= 0, got {list(weights)}")
    logp = sum(w * np.log(normalize(np.asarray(p, np.float64)) + eps) for p, w in zip(dists, weights, strict=True))
    logp = np.asarray(logp, np.float64)
    logp -= logp.max()
    return normalize(np.exp(logp))


@dataclass(frozen=True)
class Reading:
    """One modality's latest report: ``probs`` over EMOTIONS, or None for "nothing there"."""

    probs: np.ndarray | None
    ts: float
    confidence: float = 1.0


@dataclass(frozen=True)
class FusionConfig:
    """Per-modality weights and maximum ages, the EMA time constant and the confidence rule."""

    weights: dict[str, float] = field(default_factory=lambda: {"face": 1.0, "voice": 1.0})
    max_age_s: dict[str, float] = field(default_factory=lambda: {"face": 1.0, "voice": 2.0})
    smoothing_s: float = 0.5  # EMA time constant of the fused distribution; 0 = no smoothing
    confidence: str = "entropy"  # "entropy" (1 - normalised entropy) or "none" (always 1)

    def __post_init__(self) -> None:
        for table in ("weights", "max_age_s"):
            values = getattr(self, table)
            unknown = set(values) - set(MODALITIES)
            if unknown:
                raise EdgeemoError(f"fusion {table}: unknown modalities {sorted(unknown)} (known: face, voice)")
            for name, v in values.items():
                if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                    raise EdgeemoError(f"fusion {table}.{name} must be a number >= 0, got {v!r}")
        if not math.isfinite(self.smoothing_s) or self.smoothing_s < 0:
            raise EdgeemoError(f"fusion smoothing_s must be >= 0, got {self.smoothing_s!r}")
        if self.confidence not in ("entropy", "none"):
            raise EdgeemoError(f"fusion confidence must be 'entropy' or 'none', got {self.confidence!r}")


def _labelled(p: np.ndarray) -> dict[str, Any]:
    probs = {c: round(float(v), 4) for c, v in zip(EMOTIONS, p, strict=True)}
    return {"label": EMOTIONS[int(np.argmax(p))], "probs": probs}


class Fusion:
    """Holds each modality's latest reading and produces the fused, smoothed result."""

    def __init__(self, config: FusionConfig | None = None) -> None:
        self.config = config or FusionConfig()
        self.readings: dict[str, Reading] = {}
        self._ema: np.ndarray | None = None
        self._ema_ts: float | None = None

    def update(self, modality: str, probs: np.ndarray | None, ts: float, labels: Sequence[str] = EMOTIONS) -> None:
        """Record a modality's reading at capture time ``ts``; ``probs=None`` means no face / no speech."""
        if modality not in MODALITIES:
            raise EdgeemoError(f"unknown modality {modality!r} (known: face, voice)")
        if probs is None:
            self.readings[modality] = Reading(None, ts, 0.0)
            return
        p = to_canonical(probs, labels)
        conf = entropy_confidence(p) if self.config.confidence == "entropy" else 1.0
        self.readings[modality] = Reading(p, ts, conf)

    def status(self, modality: str, now: float) -> str:
        """ok, absent (no face / no speech), stale (older than max_age_s) or waiting (nothing yet)."""
        r = self.readings.get(modality)
        if r is None:
            return WAITING
        if now - r.ts > self.config.max_age_s.get(modality, math.inf):
            return STALE
        return ABSENT if r.probs is None else OK

    def result(self, now: float) -> dict[str, Any]:
        """The JSON-ready result at time ``now`` (see the README's Device section for the schema)."""
        out: dict[str, Any] = {"ts": round(now, 3)}
        status = {m: self.status(m, now) for m in MODALITIES}
        dists, weights = [], []
        for m in MODALITIES:
            r = self.readings.get(m)
            if status[m] != OK or r is None or r.probs is None:
                out[m] = None
                continue
            out[m] = {**_labelled(r.probs), "ts": round(r.ts, 3), "age_s": round(max(0.0, now - r.ts), 3),
                      "confidence": round(r.confidence, 3)}
            w = self.config.weights.get(m, 1.0) * r.confidence
            dists.append(r.probs)
            weights.append(w)
        if not dists or sum(weights) <= 0:
            fused = None if not dists else normalize(sum(dists))  # all weights 0: a plain average
        else:
            total = sum(weights)  # relative weights: a modality alone is passed through unchanged
            fused = log_linear(dists, [w / total for w in weights])
        out["fused"] = None if fused is None else _labelled(self._smooth(fused, now))
        if fused is None:
            self._ema = self._ema_ts = None
        out["status"] = status
        return out

    def _smooth(self, p: np.ndarray, now: float) -> np.ndarray:
        tau = self.config.smoothing_s
        if self._ema is None or self._ema_ts is None or tau == 0:
            self._ema = p
        else:
            alpha = 1.0 - math.exp(-max(0.0, now - self._ema_ts) / tau)
            self._ema = normalize((1 - alpha) * self._ema + alpha * p)
        self._ema_ts = now
        return self._ema
