"""The prosody columns of THE voice front end: pitch that a listener would agree with, aligned with the
MFCC frames, and 21 finite functionals for any clip that has speech."""

from __future__ import annotations

import numpy as np
import pytest

from edgeemo.audio import SAMPLE_RATE, AudioFeatures, clip_features_span
from edgeemo.errors import EdgeemoError
from edgeemo.prosody import PROSODY_COLUMNS, PROSODY_FUNCTIONALS, prosody_functionals
from edgeemo.voice import VoicePreprocessing, clip_functionals, preprocess_clip

PROSODY = AudioFeatures(prosody=True)


def _vowel(f0: np.ndarray, seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    """A harmonic voice with pitch contour ``f0`` (Hz, interpolated over the clip) and a little noise."""
    n = int(seconds * SAMPLE_RATE)
    contour = np.interp(np.arange(n), np.linspace(0, n, len(f0)), f0)
    phase = 2 * np.pi * np.cumsum(contour) / SAMPLE_RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    return (0.2 * x / np.abs(x).max() + 0.002 * np.random.default_rng(seed).normal(size=n)).astype(np.float32)


@pytest.mark.parametrize("hz", [90.0, 150.0, 240.0, 420.0])
def test_pitch_of_a_steady_voice_is_within_a_quarter_semitone(hz):
    x, span = clip_features_span(_vowel(np.array([hz])), PROSODY)
    pitch, aperiodicity = x[span[0] + 5 : span[1] - 5, 40], x[span[0] + 5 : span[1] - 5, 41]
    expected = 12 * np.log2(hz / 27.5)
    assert np.median(np.abs(pitch - expected)) < 0.25
    assert np.median(aperiodicity) < 0.1  # periodic: voiced


def test_noise_is_not_voiced_and_a_rising_voice_has_rising_slopes():
    noise = (0.1 * np.random.default_rng(1).normal(size=SAMPLE_RATE)).astype(np.float32)
    x, span = clip_features_span(noise, PROSODY)
    f = prosody_functionals(x[span[0] : span[1], 40:], 100.0, PROSODY.pitch_hop_frames)
    assert f[PROSODY_FUNCTIONALS.index("voiced_fraction")] < 0.1
    assert np.isfinite(f).all() and len(f) == len(PROSODY_FUNCTIONALS)

    x, span = clip_features_span(_vowel(np.array([120.0, 240.0])), PROSODY)  # one octave up in 1.5 s
    values = prosody_functionals(x[span[0] : span[1], 40:], 100.0, PROSODY.pitch_hop_frames)
    f = dict(zip(PROSODY_FUNCTIONALS, values, strict=True))
    assert f["voiced_fraction"] > 0.8 and f["voiced_segments_per_s"] < 2
    # a linear sweep in Hz: 144 Hz at its 20th percentile, 216 Hz at its 80th, 7.02 semitones apart
    assert abs(f["f0_range_20_80"] - 12 * np.log2(216 / 144)) < 0.5
    assert f["f0_rising_mean"] > 5 * f["f0_falling_mean"]  # upwards


def test_pitch_agrees_with_librosa_yin_on_a_real_voice():
    librosa = pytest.importorskip("librosa")
    from conftest import SHARED_DATA

    clip = SHARED_DATA / "ravdess" / "Actor_02" / "03-01-05-01-01-01-02.flac"
    if not clip.exists():
        pytest.skip(f"{clip} not present")
    from edgeemo.audio import fix_length, load_audio, trim_silence

    window = fix_length(trim_silence(load_audio(clip)[0]))
    x, span = clip_features_span(load_audio(clip)[0], PROSODY)
    ours = x[span[0] : span[1]]
    ref = librosa.yin(window.astype(np.float64), fmin=60, fmax=500, sr=SAMPLE_RATE, frame_length=640,
                      hop_length=160, center=True)[1:][span[0] : span[1]]  # frame i+1 centred on 160 i + 160
    voiced = (ours[:, 41] < 0.15) & (ours[:, 42] > ours[:, 42].max() - 30)
    assert voiced.sum() > 30
    diff = np.abs(ours[voiced, 40] - 12 * np.log2(ref[voiced] / 27.5))
    assert np.median(diff) < 0.5 and np.mean(diff < 1.0) > 0.8  # the same pitch, frame by frame


def test_prosody_adds_columns_without_changing_the_mfccs():
    clip = _vowel(np.array([200.0, 150.0]))
    plain, span = clip_features_span(clip, AudioFeatures())
    both, span2 = clip_features_span(clip, PROSODY)
    assert span == span2 and both.shape == (plain.shape[0], 40 + len(PROSODY_COLUMNS))
    assert np.array_equal(both[:, :40], plain)
    outside = both[: span[0], 40:]  # padding around the speech is silence
    assert np.all(outside[:, 1] == 1.0) and np.all(outside[:, 0] == 0.0)
    vector = clip_functionals(both, span, PROSODY)
    assert vector.shape == (280 + len(PROSODY_FUNCTIONALS),) and np.isfinite(vector).all()
    assert np.array_equal(vector[:280], clip_functionals(plain, span))
    pre = VoicePreprocessing(PROSODY, summary="functionals")
    assert pre.n_values == 301 and pre.input_shape == (1, 301)
    assert preprocess_clip(np.zeros(SAMPLE_RATE, np.float32), pre) is None  # no speech is still no speech


def test_prosody_settings_round_trip_and_bad_values_are_one_clear_error():
    d = PROSODY.to_dict()
    assert d["prosody"] is True and AudioFeatures.from_dict(d) == PROSODY
    old = {k: v for k, v in AudioFeatures().to_dict().items() if not k.startswith(("prosody", "pitch_"))}
    assert AudioFeatures.from_dict(old).prosody is False  # manifests written before prosody read as before
    with pytest.raises(EdgeemoError, match="pitch_fmin_hz must be at least 50"):
        AudioFeatures(prosody=True, pitch_fmin_hz=30.0)
    with pytest.raises(EdgeemoError, match="pitch_rate_hz must divide sample_rate"):
        AudioFeatures(prosody=True, pitch_rate_hz=6000)
    with pytest.raises(EdgeemoError, match="pitch_hop_frames must be 1-4"):
        AudioFeatures(prosody=True, pitch_hop_frames=0)
    with pytest.raises(EdgeemoError, match="prosody must be true or false"):
        AudioFeatures.from_dict({**d, "prosody": "yes"})


def test_pitch_tracked_every_other_frame_at_8_khz_matches_every_frame_at_16_khz():
    clip = _vowel(np.array([110.0, 180.0, 140.0]), seconds=2.0)
    fast, span = clip_features_span(clip, PROSODY)
    full, _ = clip_features_span(clip, AudioFeatures(prosody=True, pitch_rate_hz=16000, pitch_hop_frames=1))
    inner = slice(span[0] + 4, span[1] - 4)
    assert np.array_equal(fast[inner, 42:], full[inner, 42:])  # level and spectral balance: every frame, unchanged
    assert np.median(np.abs(fast[inner, 40] - full[inner, 40])) < 0.3  # the pitch, within a third of a semitone
    pairs = fast[span[0] : span[0] + 2 * ((span[1] - span[0]) // 2), 40].reshape(-1, 2)
    assert np.array_equal(pairs[:, 0], pairs[:, 1])  # one tracked value per two frames, from the span's first


def test_decimation_equals_scipy_resample_poly_without_loading_scipy_signal():
    from scipy.signal import resample_poly

    from edgeemo.prosody import decimate

    x = np.random.default_rng(3).normal(size=16001)
    for n in (16001, 16000, 41, 3):
        np.testing.assert_allclose(decimate(x[:n], 2), resample_poly(x[:n], 1, 2), atol=1e-12)
