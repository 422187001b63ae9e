"""Voice building blocks: the stored preprocessing, waveform augmentation, unrolled LSTM export, splits."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED_DATA

from edgeemo.audio import AudioFeatures, RunningStats
from edgeemo.errors import EdgeemoError
from edgeemo.voice import SpeakerAdaptation, VoicePreprocessing, preprocess_clip


def _pre() -> VoicePreprocessing:
    feats = AudioFeatures(window_s=1.0)
    stats = RunningStats().update(np.random.default_rng(0).normal(3, 2, (500, feats.n_features)))
    return VoicePreprocessing.from_stats(feats, stats)


def test_preprocessing_round_trips_exactly_through_its_manifest_dict():
    pre = _pre()
    again = VoicePreprocessing.from_dict(pre.to_dict())
    assert again == pre and hash(again) == hash(pre)
    assert again.to_dict() == pre.to_dict()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["standardize"].update(mean=[0.0] * 3, std=[1.0] * 3), "statistics have 3 values"),
        (lambda d: d.update(summary="spectrogram"), "voice summary must be one of frames, functionals"),
        (lambda d: d["standardize"].update(std=[-1.0] * 40), "negative std"),
        (lambda d: d.update(n_mfcc="40"), "n_mfcc"),
        (lambda d: d.update(colour="red"), "unknown voice preprocessing keys"),
    ],
)
def test_bad_stored_preprocessing_is_a_clear_error(mutate, message):
    d = _pre().to_dict()
    mutate(d)
    with pytest.raises(EdgeemoError, match=message):
        VoicePreprocessing.from_dict(d)


def test_functionals_summary_is_one_adapted_vector_per_clip_and_round_trips():
    from edgeemo.audio import clip_features_span
    from edgeemo.voice import FUNCTIONALS, clip_functionals, standardize_clip

    feats = AudioFeatures(window_s=1.0)
    t = np.arange(16000) / 16000
    clips = [(0.3 * np.sin(2 * np.pi * f * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
             for f in (150, 220, 330)]
    raw = [clip_features_span(c, feats) for c in clips]
    vectors = np.stack([clip_functionals(x, span) for x, span in raw])
    assert vectors.shape == (3, len(FUNCTIONALS) * feats.n_features) and np.isfinite(vectors).all()
    stats = RunningStats().update(vectors)
    pre = VoicePreprocessing.from_stats(feats, stats, SpeakerAdaptation(prior_clips=5), summary="functionals")
    assert pre.input_shape == (1, 280)
    again = VoicePreprocessing.from_dict(pre.to_dict())
    assert again == pre and pre.to_dict()["summary"] == "functionals"
    x = preprocess_clip(clips[0], pre)
    assert x is not None and x.shape == (1, 280) and x.dtype == np.float32
    # adaptation runs on the vectors: a speaker's second clip is standardised with both clips' statistics
    speaker = pre.new_speaker()
    first = standardize_clip(*raw[0], pre, speaker)
    second = standardize_clip(*raw[1], pre, speaker)
    assert not np.allclose(second, standardize_clip(*raw[1], pre))  # alone vs after the first clip
    assert np.array_equal(first, x)
    with pytest.raises(EdgeemoError, match="statistics have 40 values, the functionals input 280"):
        VoicePreprocessing.from_stats(feats, RunningStats().update(np.ones((5, 40))), summary="functionals")


def test_standardised_features_are_centred_and_silence_is_no_speech():
    pre = _pre()
    t = np.arange(16000) / 16000
    x = preprocess_clip((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), pre)
    assert x is not None and x.shape == (99, 40) and x.dtype == np.float32
    assert preprocess_clip(np.zeros(16000, np.float32), pre) is None


def test_augmentation_is_seeded_finite_and_changes_the_clip():
    from edgeemo.train.voice_augment import VoiceAugmentation, augment_waveform

    t = np.arange(24000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    aug = VoiceAugmentation(p=1.0)
    a = augment_waveform(x, aug, np.random.default_rng(1))
    b = augment_waveform(x, aug, np.random.default_rng(1))
    assert np.array_equal(a, b) and np.all(np.isfinite(a)) and np.max(np.abs(a)) <= 1.0
    assert len(a) != len(x) or not np.allclose(a, x)
    with pytest.raises(EdgeemoError):
        VoiceAugmentation(noise_snr_db=(30.0, 10.0))


@pytest.mark.parametrize("arch", ["lstm", "crnn"])
def test_unrolled_copy_computes_the_same_function(arch):
    from edgeemo.export.tflite import unrolled
    from edgeemo.train.voice_models import build_voice_model

    model = build_voice_model(arch, (40, 13))
    x = np.random.default_rng(0).normal(size=(4, 40, 13)).astype(np.float32)
    copy = unrolled(model)
    assert copy is not model
    assert all(layer.unroll for layer in copy.layers if type(layer).__name__ == "LSTM")
    np.testing.assert_allclose(copy.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    assert model.count_params() < 500_000


def test_ravdess_held_out_actors_never_reach_training():
    ravdess = SHARED_DATA / "ravdess"
    if not ravdess.is_dir():
        pytest.skip("RAVDESS not available")
    from edgeemo.train.voice import resolve_voice_splits

    train, val, test, desc = resolve_voice_splits([ravdess], test_speakers=["17", "18", "19", "20"])
    assert sorted(desc["test"]["speakers"]) == [f"ravdess:{a}" for a in (17, 18, 19, 20)]
    assert len(test) == 240 and len(train) + len(val) == 960
    assert not ({str(g) for g in train.groups} | {str(g) for g in val.groups}) & set(desc["test"]["speakers"])


def test_random_split_is_labelled_leaky():
    tess = SHARED_DATA / "tess"
    if not tess.is_dir():
        pytest.skip("TESS not available")
    from edgeemo.train.voice import resolve_voice_splits

    *_, desc = resolve_voice_splits([tess], split="random")
    assert "LEAKY" in desc["protocol"]


def test_pinned_validation_speakers():
    ravdess = SHARED_DATA / "ravdess"
    if not ravdess.is_dir():
        pytest.skip("RAVDESS not available")
    from edgeemo.train.voice import resolve_voice_splits

    train, val, test, desc = resolve_voice_splits([ravdess], test_speakers=["17", "18"], val_speakers=["15", "16"])
    assert desc["val"]["speakers"] == ["ravdess:15", "ravdess:16"] and len(val) == 120
    assert "ravdess:15" not in desc["train"]["speakers"] and len(train) == 1200 - 120 - 120
    with pytest.raises(EdgeemoError, match="--split speaker"):
        resolve_voice_splits([ravdess], split="random", val_speakers=["15"])


def test_cepstral_mean_normalisation_makes_features_independent_of_gain():
    from edgeemo.audio import clip_features

    rng = np.random.default_rng(0)
    t = np.arange(12000) / 16000
    speech = (0.2 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    speech += rng.normal(0, 0.01, len(t)).astype(np.float32)
    clip = np.concatenate([np.zeros(4000, np.float32), speech, np.zeros(4000, np.float32)])
    plain, cmn = AudioFeatures(window_s=1.0), AudioFeatures(window_s=1.0, cmn=True)
    loud, quiet = clip_features(clip, cmn), clip_features(0.25 * clip, cmn)
    np.testing.assert_allclose(loud[20:70], quiet[20:70], atol=1e-3)  # speech frames: gain removed
    assert not np.allclose(clip_features(clip, plain)[20:70, 0], clip_features(0.25 * clip, plain)[20:70, 0], atol=0.5)


def test_head_units_widen_the_mlp_head_only():
    pytest.importorskip("keras")
    from edgeemo.train.voice_models import build_voice_model

    for units in (64, 256):
        model = build_voice_model("mlp", (1, 301), 7, units=units)
        assert model.count_params() == 301 * units + units + units * 7 + 7
    assert build_voice_model("mlp", (1, 301), 7).count_params() == 19_783  # the shipped members' size
    with pytest.raises(EdgeemoError, match="--head-units applies to --arch mlp only"):
        build_voice_model("conv1d", (300, 40), 7, units=128)
