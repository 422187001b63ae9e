"""Logit adjustment baked into a face/voice model: ``tau * log(class prior)`` subtracted from the
bias of the final Dense layer (the softmax's logits).

A model trained on an imbalanced set (FER2013: 1.5% disgust) carries the training prior in its
logits; the posed camera-path sets are class-balanced. Subtracting ``tau * log(prior)`` from the
logits is post-hoc logit adjustment (Menon et al., 2021): tau 1 removes the prior entirely, 0 is the
model as trained. Since softmax ignores a constant shift, moving the final bias is exact: the model's
file, size, speed and runtime stay as they are, and the int8 export quantizes the adjusted model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from edgeemo.errors import EdgeemoError


def training_prior(config: Mapping[str, Any]) -> np.ndarray:
    """The class prior of a run's training set, in the order of ``config['labels']``: the class counts
    of its train split plus those of any ``--extra-train`` subjects (as recorded in config.json)."""
    labels: Sequence[str] = config["labels"]
    split = config.get("split", {})
    try:
        counts = np.array([split["train"]["classes"].get(name, 0) for name in labels], np.float64)
        extra = split.get("extra_train", {}).get("train", {}).get("classes", {})
        repeat = int(split.get("extra_train", {}).get("repeat", 1))  # train face --extra-repeat
    except (KeyError, AttributeError, TypeError) as exc:
        raise EdgeemoError(f"config.json has no train class counts (split.train.classes): {exc}") from None
    counts += repeat * np.array([extra.get(name, 0) for name in labels], np.float64)
    if (counts <= 0).any():
        empty = [name for name, c in zip(labels, counts, strict=True) if c <= 0]
        raise EdgeemoError(f"no training samples of {', '.join(empty)}: the prior has no logarithm there")
    return counts / counts.sum()


def adjust_final_bias(model: Any, tau: float, prior: np.ndarray) -> np.ndarray:
    """Subtract ``tau * log(prior)`` from the bias of ``model``'s last layer (a Dense with a bias,
    softmax or linear output), in place. Returns the shift added to the bias."""
    import keras

    if not tau >= 0.0:
        raise EdgeemoError(f"tau must be >= 0, got {tau}")
    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense) or not last.use_bias:
        raise EdgeemoError(f"the model's last layer must be a Dense layer with a bias, got {type(last).__name__}")
    activation = getattr(last.activation, "__name__", str(last.activation))
    if activation not in ("softmax", "linear"):
        raise EdgeemoError(f"the last Dense layer's activation must be softmax or linear, got {activation}")
    prior = np.asarray(prior, np.float64)
    if prior.shape != (last.units,) or (prior <= 0).any():
        raise EdgeemoError(f"prior must hold {last.units} positive values, got shape {prior.shape}")
    prior = prior / prior.sum()
    shift = (-tau * np.log(prior)).astype(np.float32)
    kernel, bias = last.get_weights()
    last.set_weights([kernel, (bias + shift).astype(bias.dtype)])
    return shift
