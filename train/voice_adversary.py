"""Domain-adversarial voice training (``--adversary W``): the head's hidden layer is trained to carry
emotion and, through a gradient-reversal layer, *not* the training corpus a clip comes from
(Ganin & Lempitsky 2015). Only the emotion model is kept: the adversary exists during training."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from edgeemo.labels import EMOTIONS

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
    """Wraps an emotion model during training. Its targets are the emotion one-hot followed by the
    domain one-hot (``domain_targets``); validation targets are the emotion one-hot alone. ``call``
    is the emotion model's, so prediction, metrics and checkpoints by validation accuracy work as usual;
    its ``emotion`` model is what gets saved and exported."""

    def __init__(self, emotion: keras.Model, n_domains: int, weight: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.emotion = emotion
        self.n_domains = int(n_domains)
        self.adversary_weight = float(weight)
        self.hidden = keras.Model(emotion.inputs, emotion.get_layer(HIDDEN).output)
        self.reverse = GradientReversal(weight)
        self.domain = layers.Dense(self.n_domains, activation="softmax", dtype="float32", name="domain_probs")
        self.domain_loss = keras.losses.CategoricalCrossentropy()

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
        d = self.domain(self.reverse(self.hidden(x, training=training)))
        return loss + self.domain_loss(y[:, k:], d, sample_weight=sample_weight)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):  # noqa: ANN001, ANN201
        return super().compute_metrics(x, y[:, :len(EMOTIONS)], y_pred, sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {"emotion": keras.saving.serialize_keras_object(self.emotion), "n_domains": self.n_domains,
                "weight": self.adversary_weight, "name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> DomainAdversarial:
        emotion = keras.saving.deserialize_keras_object(config.pop("emotion"))
        return cls(emotion, **config)


def domain_targets(labels: np.ndarray, speakers: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Emotion one-hot followed by corpus one-hot (the corpus is the part of ``corpus:speaker``
    before the colon), and the corpora in column order."""
    corpora = np.array([s.split(":", 1)[0] for s in speakers])
    names = sorted(set(corpora.tolist()))
    index = {c: i for i, c in enumerate(names)}
    emotion = np.eye(len(EMOTIONS), dtype=np.float32)[labels]
    domain = np.eye(len(names), dtype=np.float32)[[index[c] for c in corpora]]
    return np.concatenate([emotion, domain], axis=1), names
