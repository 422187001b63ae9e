"""Domain-adversarial voice training (``--adversary W``): the head's hidden layer is trained to carry
emotion and, through a gradient-reversal layer, *not* the training corpus a clip comes from
(``--adversary-on corpus``, Ganin & Lempitsky 2015) or *not* the sentence it says within its corpus
(``--adversary-on sentence``). Only the emotion model is kept: the adversary exists during training."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from edgeemo.errors import EdgeemoError
from edgeemo.labels import EMOTIONS
from edgeemo.train.options import ADVERSARY_ON, check_choice
from edgeemo.voice_datasets import clip_sentence

HIDDEN = "head_dense"  # the layer whose output must not tell the corpora apart (voice_models._head)


@keras.saving.register_keras_serializable(package="edgeemo")
class GradientReversal(layers.Layer):
    """Identity forward; the gradient times ``-weight`` backward."""

    def __init__(self, weight: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.weight = float(weight)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        weight = self.weight

        @tf.custom_gradient
        def reverse(t: tf.Tensor) -> Any:
            return tf.identity(t), lambda dy: -weight * dy

        return reverse(x)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "weight": self.weight}


@keras.saving.register_keras_serializable(package="edgeemo")
class DomainAdversarial(keras.Model):
    """Wraps an emotion model during training. Its targets are the emotion one-hot, the domain one-hot
    and the mask of the domains the row's softmax runs over (``domain_targets``); validation targets
    are the emotion one-hot alone. ``call`` is the emotion model's, so prediction, metrics and
    checkpoints by validation accuracy work as usual; its ``emotion`` model is what gets saved and
    exported."""

    def __init__(self, emotion: keras.Model, n_domains: int, weight: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.emotion = emotion
        self.n_domains = int(n_domains)
        self.adversary_weight = float(weight)
        self.hidden = keras.Model(emotion.inputs, emotion.get_layer(HIDDEN).output)
        self.reverse = GradientReversal(weight)
        self.domain = layers.Dense(self.n_domains, dtype="float32", name="domain_logits")
        self.domain_loss = keras.losses.CategoricalCrossentropy(from_logits=True)

    def call(self, x: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.emotion(x, training=training)

    def build(self, input_shape: Any) -> None:
        self.domain.build(self.hidden.output.shape)
        super().build(input_shape)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):  # noqa: ANN001, ANN201
        k = len(EMOTIONS)
        if y is None or y.shape[-1] == k:  # validation: emotion targets only
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        loss = super().compute_loss(x, y[:, :k], y_pred, sample_weight, training)
        n = self.n_domains
        logits = self.domain(self.reverse(self.hidden(x, training=training)))
        logits = logits + (y[:, k + n:] - 1.0) * 1e9  # the softmax runs over the row's own domains only
        return loss + self.domain_loss(y[:, k:k + n], logits, sample_weight=sample_weight)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):  # noqa: ANN001, ANN201
        return super().compute_metrics(x, y[:, :len(EMOTIONS)], y_pred, sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {"emotion": keras.saving.serialize_keras_object(self.emotion), "n_domains": self.n_domains,
                "weight": self.adversary_weight, "name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DomainAdversarial:
        emotion = keras.saving.deserialize_keras_object(config.pop("emotion"))
        return cls(emotion, **config)


def domain_targets(labels: np.ndarray, speakers: np.ndarray, paths: list[str] | None = None,
                   on: str = "corpus") -> tuple[np.ndarray, list[str]]:
    """Per row: the emotion one-hot, the domain one-hot and the mask of the domains its softmax runs
    over; and the domains in column order. ``on="corpus"``: the corpus (the part of ``corpus:speaker``
    before the colon), one softmax over all corpora. ``on="sentence"``: what the clip says
    (``clip_sentence`` of its path), one softmax per corpus over that corpus' sentences; a clip whose
    name does not say gets no target (all zeros)."""
    check_choice("--adversary-on", on, ADVERSARY_ON)
    if on == "sentence" and (paths is None or len(paths) != len(labels)):
        raise EdgeemoError("--adversary-on sentence needs the clip of every training row")
    corpora = np.array([s.split(":", 1)[0] for s in speakers])
    keys = corpora.tolist() if on == "corpus" else [clip_sentence(p) for p in paths]
    names = sorted({k for k in keys if k is not None})
    index = {c: i for i, c in enumerate(names)}
    domain = np.zeros((len(labels), len(names)), np.float32)
    mask = np.zeros_like(domain)
    block = {c: np.array([n.split(":", 1)[0] == c for n in names], np.float32) for c in set(corpora.tolist())}
    for row, key in enumerate(keys):
        if key is None:
            continue
        domain[row, index[key]] = 1.0
        mask[row] = 1.0 if on == "corpus" else block[corpora[row]]
    emotion = np.eye(len(EMOTIONS), dtype=np.float32)[labels]
    return np.concatenate([emotion, domain, mask], axis=1), names
