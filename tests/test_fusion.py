"""Late fusion of face and voice: log-linear pooling, weights, confidence, staleness, smoothing."""

from __future__ import annotations

import numpy as np
import pytest

from edgeemo.errors import EdgeemoError
from edgeemo.fusion import (
    Fusion,
    FusionConfig,
    entropy_confidence,
    log_linear,
    to_canonical,
)
from edgeemo.labels import EMOTIONS


def onehot_ish(label: str, peak: float = 0.7) -> np.ndarray:
    p = np.full(len(EMOTIONS), (1 - peak) / (len(EMOTIONS) - 1))
    p[EMOTIONS.index(label)] = peak
    return p


NO_SMOOTH = FusionConfig(smoothing_s=0.0, confidence="none")


def test_log_linear_is_the_normalised_weighted_product():
    a, b = onehot_ish("happy", 0.6), onehot_ish("sad", 0.5)
    fused = log_linear([a, b], [1.0, 2.0], eps=0.0)
    expected = a * b**2 / np.sum(a * b**2)
    np.testing.assert_allclose(fused, expected, rtol=1e-9)
    assert fused.sum() == pytest.approx(1.0)


def test_a_zero_probability_cannot_veto_a_class():
    a = np.array([0, 0, 0, 1.0, 0, 0, 0])
    b = onehot_ish("happy", 0.9)
    fused = log_linear([a, b], [1.0, 1.0])
    assert np.all(fused > 0) and EMOTIONS[int(fused.argmax())] == "happy"


def test_labels_in_another_order_are_mapped_to_canonical_order():
    labels = list(reversed(EMOTIONS))
    probs = np.zeros(7)
    probs[labels.index("fear")] = 1.0
    assert EMOTIONS[int(to_canonical(probs, labels).argmax())] == "fear"
    with pytest.raises(EdgeemoError, match="calm"):
        to_canonical([0.5, 0.5], ["happy", "calm"])


def test_entropy_confidence_ranks_sure_above_unsure():
    assert entropy_confidence(np.full(7, 1 / 7)) == pytest.approx(0.0, abs=1e-9)
    assert entropy_confidence(np.eye(7)[2]) == pytest.approx(1.0)
    assert entropy_confidence(onehot_ish("sad", 0.9)) > entropy_confidence(onehot_ish("sad", 0.4))


def test_weights_decide_a_disagreement():
    for weights, winner in (({"face": 3.0, "voice": 1.0}, "happy"), ({"face": 1.0, "voice": 3.0}, "angry")):
        fusion = Fusion(FusionConfig(weights=weights, smoothing_s=0.0, confidence="none"))
        fusion.update("face", onehot_ish("happy"), ts=10.0)
        fusion.update("voice", onehot_ish("angry"), ts=10.0)
        assert fusion.result(10.1)["fused"]["label"] == winner


def test_an_unsure_modality_counts_less_with_entropy_confidence():
    fusion = Fusion(FusionConfig(smoothing_s=0.0, confidence="entropy"))
    fusion.update("face", onehot_ish("happy", 0.9), ts=0.0)
    fusion.update("voice", onehot_ish("angry", 0.3), ts=0.0)  # nearly flat
    out = fusion.result(0.0)
    assert out["fused"]["label"] == "happy"
    assert out["voice"]["confidence"] < out["face"]["confidence"]


def test_result_schema_with_both_modalities():
    fusion = Fusion(NO_SMOOTH)
    fusion.update("face", onehot_ish("surprise"), ts=100.0)
    fusion.update("voice", onehot_ish("surprise"), ts=99.5)
    out = fusion.result(100.25)
    assert set(out) == {"ts", "face", "voice", "fused", "status"}
    assert out["face"]["label"] == "surprise" and set(out["face"]["probs"]) == set(EMOTIONS)
    assert out["face"]["ts"] == 100.0 and out["face"]["age_s"] == pytest.approx(0.25)
    assert out["voice"]["age_s"] == pytest.approx(0.75)
    assert out["fused"]["label"] == "surprise"
    assert sum(out["fused"]["probs"].values()) == pytest.approx(1.0, abs=1e-3)
    assert out["status"] == {"face": "ok", "voice": "ok"}


def test_missing_modality_fuses_the_other_alone():
    fusion = Fusion(NO_SMOOTH)
    fusion.update("face", onehot_ish("sad"), ts=0.0)
    fusion.update("voice", None, ts=0.0)  # the window had no speech
    out = fusion.result(0.1)
    assert out["voice"] is None and out["status"]["voice"] == "absent"
    assert out["fused"]["label"] == "sad"
    assert out["fused"]["probs"] == pytest.approx(out["face"]["probs"], abs=1e-3)  # passed through (eps aside)


def test_no_modality_gives_no_fused_result_never_a_guess():
    fusion = Fusion(NO_SMOOTH)
    assert fusion.result(0.0)["fused"] is None
    assert fusion.result(0.0)["status"] == {"face": "waiting", "voice": "waiting"}
    fusion.update("face", None, ts=1.0)
    fusion.update("voice", None, ts=1.0)
    out = fusion.result(1.0)
    assert out["fused"] is None and out["face"] is None and out["voice"] is None


def test_stale_readings_are_dropped_from_fusion():
    fusion = Fusion(FusionConfig(max_age_s={"face": 1.0, "voice": 2.0}, smoothing_s=0.0, confidence="none"))
    fusion.update("face", onehot_ish("happy", 0.9), ts=0.0)
    fusion.update("voice", onehot_ish("angry", 0.6), ts=0.0)
    assert fusion.result(0.5)["fused"]["label"] == "happy"
    later = fusion.result(1.5)  # face is 1.5 s old (> 1.0), voice 1.5 s (< 2.0)
    assert later["face"] is None and later["status"]["face"] == "stale"
    assert later["fused"]["label"] == "angry"
    gone = fusion.result(2.5)
    assert gone["fused"] is None and gone["status"] == {"face": "stale", "voice": "stale"}


def test_ema_smooths_a_sudden_change_and_converges():
    fusion = Fusion(FusionConfig(smoothing_s=1.0, confidence="none"))
    fusion.update("face", onehot_ish("happy", 0.9), ts=0.0)
    assert fusion.result(0.0)["fused"]["label"] == "happy"
    fusion.update("face", onehot_ish("sad", 0.9), ts=0.1)
    just_after = fusion.result(0.1)["fused"]  # alpha = 1 - exp(-0.1) ~ 0.1: still mostly happy
    assert just_after["label"] == "happy" and just_after["probs"]["sad"] > 0.1
    t = 0.1
    for _ in range(40):  # 4 s later, ~98% sad
        t += 0.1
        fusion.update("face", onehot_ish("sad", 0.9), ts=t)
        out = fusion.result(t)["fused"]
    assert out["label"] == "sad" and out["probs"]["sad"] == pytest.approx(0.9, abs=0.03)


def test_ema_restarts_after_a_gap_with_no_modality():
    fusion = Fusion(FusionConfig(smoothing_s=5.0, confidence="none"))
    fusion.update("face", onehot_ish("happy", 0.9), ts=0.0)
    fusion.result(0.0)
    fusion.update("face", None, ts=1.0)
    assert fusion.result(1.0)["fused"] is None
    fusion.update("face", onehot_ish("sad", 0.9), ts=1.1)
    assert fusion.result(1.1)["fused"]["probs"]["sad"] == pytest.approx(0.9, abs=1e-3)  # no memory of happy


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"weights": {"face": -1.0}}, "weights.face"),
        ({"weights": {"gait": 1.0}}, "gait"),
        ({"max_age_s": {"voice": "2"}}, "max_age_s.voice"),
        ({"smoothing_s": -0.1}, "smoothing_s"),
        ({"confidence": "max"}, "confidence"),
    ],
)
def test_bad_config_is_a_clear_error(kwargs, match):
    with pytest.raises(EdgeemoError, match=match):
        FusionConfig(**kwargs)


def test_unknown_modality_is_an_error():
    with pytest.raises(EdgeemoError, match="gait"):
        Fusion().update("gait", onehot_ish("happy"), ts=0.0)
