"""Speaker adaptation of THE voice preprocessing: running statistics per speaker, causal,
shrunk towards the training statistics, the same in training, bench and the device."""

from __future__ import annotations

import numpy as np
import pytest

from edgeemo.audio import AudioFeatures, RunningStats, clip_features_span
from edgeemo.errors import EdgeemoError
from edgeemo.voice import (
    SpeakerAdaptation,
    SpeakerState,
    VoicePreprocessing,
    clip_moments,
    preprocess_clip,
    shrunk_stats,
    standardize_clip,
)

RATE = 16000
FEATS = AudioFeatures(window_s=1.0)


def _voice(f0: float, rng: np.random.Generator, seconds: float = 0.6) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3, 4))
    gap = np.zeros(int(0.15 * RATE))
    return np.concatenate([gap, 0.2 * tone / 2 + rng.normal(0, 0.003, len(t)), gap]).astype(np.float32)


def _pre(prior: float = 5.0) -> VoicePreprocessing:
    rng = np.random.default_rng(0)
    stats = RunningStats()
    for f0 in (120, 180, 240):
        x, span = clip_features_span(_voice(f0, rng), FEATS)
        stats.update(x[span[0] : span[1]])
    return VoicePreprocessing.from_stats(FEATS, stats, SpeakerAdaptation(prior_clips=prior))


def test_manifest_round_trip_and_strict_records():
    pre = _pre()
    d = pre.to_dict()
    assert d["adaptation"] == {"kind": "speaker_running", "prior_clips": 5.0, "memory_clips": 100.0,
                               "reset_after_silence_s": 30.0}
    assert VoicePreprocessing.from_dict(d) == pre
    for bad in ({"kind": "other"}, {"kind": "speaker_running", "prior_clips": -1},
                {"kind": "speaker_running", "typo": 1}, "speaker"):
        with pytest.raises(EdgeemoError):
            VoicePreprocessing.from_dict({**d, "adaptation": bad})
    no_stats = {k: v for k, v in d.items() if k != "standardize"}
    with pytest.raises(EdgeemoError, match="needs the training statistics"):
        VoicePreprocessing.from_dict(no_stats)


def test_shrinkage_starts_at_the_prior_and_converges_to_the_speaker():
    pre = _pre(prior=5.0)
    mean, std = np.asarray(pre.mean), np.asarray(pre.std)
    m0, s0 = shrunk_stats(np.zeros_like(mean), np.zeros_like(mean), 0, mean, std, 5.0)
    np.testing.assert_allclose(m0, mean, rtol=1e-9)
    np.testing.assert_allclose(s0, std, rtol=1e-9)
    rng = np.random.default_rng(1)
    state = SpeakerState(pre.adaptation)
    clips = [clip_features_span(_voice(300, rng), FEATS) for _ in range(400)]
    for x, span in clips:
        state.observe(x, span)
    m, _ = state.stats(pre.mean, pre.std)
    speaker_mean = np.mean([clip_moments(x, span)[0] for x, span in clips], axis=0)
    # 100 clips of memory against a prior of 5: within 5% of the way from the prior to the speaker
    assert np.all(np.abs(m - speaker_mean) <= 0.06 * np.abs(mean - speaker_mean) + 1e-6)
    assert state.n == pytest.approx(100.0)


@pytest.mark.parametrize(("colour", "ratio"), [
    (lambda c: c * 4.0, 0.3),  # a 12 dB louder microphone: an offset of the energy coefficient
    (lambda c: np.convolve(c, [0.5, 0.5])[: len(c)], 0.85),  # a dull capsule (first-order low-pass)
])
def test_a_channel_offset_is_removed_by_adaptation(colour, ratio):
    """Every clip of a speaker through one microphone: once the speaker has been heard, the
    adapted input depends on that microphone less than the globally standardised one."""
    pre = _pre()
    rng = np.random.default_rng(2)
    clips = [_voice(f0, rng) for f0 in rng.uniform(150, 250, 30)]
    coloured = [np.clip(colour(c), -1, 1).astype(np.float32) for c in clips]
    plain, other = pre.new_speaker(), pre.new_speaker()
    adapted = [np.abs(preprocess_clip(a, pre, plain) - preprocess_clip(b, pre, other)).mean()
               for a, b in zip(clips, coloured, strict=True)]
    global_pre = VoicePreprocessing(pre.features, pre.count, pre.mean, pre.std)
    plain_global = [np.abs(preprocess_clip(a, global_pre) - preprocess_clip(b, global_pre)).mean()
                    for a, b in zip(clips, coloured, strict=True)]
    assert np.mean(adapted[-10:]) < ratio * np.mean(plain_global[-10:])


def test_without_a_state_every_clip_is_the_first_of_a_new_speaker():
    pre = _pre()
    clip = _voice(200, np.random.default_rng(3))
    alone = preprocess_clip(clip, pre)
    fresh = preprocess_clip(clip, pre, pre.new_speaker())
    np.testing.assert_array_equal(alone, fresh)
    # padding frames (outside the speech span) are the training mean: 0
    x, span = clip_features_span(clip, FEATS)
    out = standardize_clip(x, span, pre)
    assert not out[: span[0]].any() and not out[span[1] :].any()


def test_bench_order_is_causal_and_seeded(tmp_path):
    import soundfile as sf

    from edgeemo.voice import preprocess_files

    pre = _pre()
    rng = np.random.default_rng(4)
    paths, speakers = [], []
    for i in range(12):
        p = tmp_path / f"c{i}.wav"
        sf.write(p, _voice(150 + 10 * i, rng), RATE)
        paths.append(str(p))
        speakers.append("a" if i % 2 else "b")
    x1, kept1 = preprocess_files(paths, pre, speakers=speakers, seed=7)
    x2, _ = preprocess_files(paths, pre, speakers=speakers, seed=7)
    np.testing.assert_array_equal(x1, x2)  # seeded
    assert list(kept1) == list(range(12))  # rows in the order of the paths
    by_name = np.argsort(np.asarray(paths))
    first = int(by_name[np.random.default_rng(7).permutation(12)[0]])  # heard first: only the prior and itself
    shuffled = list(reversed(paths))  # the same clips given in another order: the same inputs
    x3, _ = preprocess_files(shuffled, pre, speakers=list(reversed(speakers)), seed=7)
    np.testing.assert_array_equal(x3[::-1], x1)
    np.testing.assert_allclose(x1[first], preprocess_clip(_load(paths[first]), pre), atol=1e-6)
    alone, _ = preprocess_files(paths, pre)  # no speakers: every clip alone
    assert not np.allclose(alone, x1)


def _load(path: str) -> np.ndarray:
    from edgeemo.audio import load_audio

    return load_audio(path)[0]


def test_device_voice_path_adapts_online_and_resets_after_silence():
    from edgeemo.audio import float_to_pcm16
    from edgeemo.device.paths import VoicePath

    pre = VoicePreprocessing(FEATS, _pre().count, _pre().mean, _pre().std,
                             SpeakerAdaptation(reset_after_silence_s=2.0))

    class Model:
        preprocessing = pre
        task, spec, path = "voice", "fake", None

        def predict(self, x):
            return np.ones((1, 7)) / 7

    path = VoicePath(Model(), hop_s=0.5)
    speech = np.concatenate([_voice(200, np.random.default_rng(5), 0.7)] * 4)
    path.push(float_to_pcm16(speech))
    # 4 s of speech, a 1 s window every 0.5 s: 7 windows, each half a clip
    assert path.speaker is not None and path.speaker.n == pytest.approx(7 * 0.5)
    assert path._weight == pytest.approx(0.5)
    path.push(np.zeros(int(3.5 * RATE), np.int16))  # a long silence: the statistics start again
    assert path.speaker.n == 0
    off = VoicePath(Model(), hop_s=0.5, adapt=False)
    assert off.speaker is None
