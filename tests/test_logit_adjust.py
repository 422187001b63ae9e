"""Logit adjustment baked into the final bias: the training prior read from config.json, and the
adjusted model deciding exactly as the log-probabilities shifted by ``tau * log(prior)``."""

from __future__ import annotations

import numpy as np
import pytest

from edgeemo.errors import EdgeemoError
from edgeemo.labels import EMOTIONS

pytest.importorskip("keras")

CONFIG = {
    "labels": list(EMOTIONS),
    "split": {
        "train": {"classes": {"angry": 10, "disgust": 1, "fear": 10, "happy": 20, "sad": 10, "surprise": 5,
                              "neutral": 4}},
        "extra_train": {"train": {"classes": {"disgust": 3, "neutral": 0, "happy": 5}}},
    },
}


def test_training_prior_adds_extra_train_subjects() -> None:
    from edgeemo.train.logit_adjust import training_prior

    prior = training_prior(CONFIG)
    counts = np.array([10, 4, 10, 25, 10, 5, 4], float)
    np.testing.assert_allclose(prior, counts / counts.sum())


def test_training_prior_refuses_an_empty_class_and_a_missing_count() -> None:
    from edgeemo.train.logit_adjust import training_prior

    bad = {"labels": ["a", "b"], "split": {"train": {"classes": {"a": 3}}}}
    with pytest.raises(EdgeemoError, match="no training samples of b"):
        training_prior(bad)
    with pytest.raises(EdgeemoError, match="no train class counts"):
        training_prior({"labels": ["a"], "split": {}})


def small_model(activation: str = "softmax"):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    x = keras.layers.Dense(8, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(len(EMOTIONS), activation=activation, name="probs")(x))


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0])
def test_adjusted_bias_equals_shifted_log_probabilities(tau: float) -> None:
    from edgeemo.train.logit_adjust import adjust_final_bias, training_prior

    model = small_model()
    x = np.random.default_rng(1).normal(size=(64, 6)).astype(np.float32)
    before = model.predict(x, verbose=0)
    prior = training_prior(CONFIG)
    shift = adjust_final_bias(model, tau, prior)
    after = model.predict(x, verbose=0)
    np.testing.assert_allclose(shift, -tau * np.log(prior), rtol=1e-6)
    expected = np.exp(np.log(before) - tau * np.log(prior))
    np.testing.assert_allclose(after, expected / expected.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)
    if tau > 0:  # the rare classes gain
        assert after[:, EMOTIONS.index("disgust")].mean() > before[:, EMOTIONS.index("disgust")].mean()


def test_adjust_refuses_what_it_cannot_shift() -> None:
    import keras

    from edgeemo.train.logit_adjust import adjust_final_bias

    model = small_model()
    with pytest.raises(EdgeemoError, match="tau must be >= 0"):
        adjust_final_bias(model, -0.1, np.ones(len(EMOTIONS)))
    with pytest.raises(EdgeemoError, match="7 positive values"):
        adjust_final_bias(model, 0.5, np.ones(3))
    with pytest.raises(EdgeemoError, match="softmax or linear"):
        adjust_final_bias(small_model("sigmoid"), 0.5, np.ones(len(EMOTIONS)))
    inputs = keras.Input((6,))
    no_dense = keras.Model(inputs, keras.layers.Softmax()(inputs))
    with pytest.raises(EdgeemoError, match="Dense layer with a bias"):
        adjust_final_bias(no_dense, 0.5, np.ones(6))


def test_training_prior_counts_repeated_extra_subjects() -> None:
    from edgeemo.train.logit_adjust import training_prior

    repeated = {**CONFIG, "split": {**CONFIG["split"], "extra_train": {**CONFIG["split"]["extra_train"],
                                                                         "repeat": 3}}}
    counts = np.array([10, 1 + 9, 10, 20 + 15, 10, 5, 4], float)
    np.testing.assert_allclose(training_prior(repeated), counts / counts.sum())
