"""Channel augmentation (rooms, noise, microphones, telephone) and the per-speaker feature cache."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from edgeemo.audio import AudioFeatures
from edgeemo.train.voice_augment import (
    ChannelAugmentation,
    add_noise,
    apply_channel,
    draw_channel,
    gain_and_clip,
    pink_noise,
    reverberate,
    room_impulse_response,
    speech_rms,
    telephone,
)

RATE = 16000


def _speech(seconds: float = 1.0, f0: float = 180.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3, 4, 5))
    gap = np.zeros(RATE // 5)
    return np.concatenate([gap, 0.1 * x, gap]).astype(np.float32)


def test_noise_is_added_at_the_asked_snr_of_the_active_speech():
    rng = np.random.default_rng(0)
    x = _speech()
    for snr in (20.0, 10.0, 0.0):
        noise = rng.standard_normal(len(x)).astype(np.float32)
        y = add_noise(x, noise, snr)
        measured = 20 * np.log10(speech_rms(x) / np.std(y - x))
        assert measured == pytest.approx(snr, abs=0.2)
    pink = pink_noise(RATE * 2, rng)
    spectrum = np.abs(np.fft.rfft(pink)) ** 2
    low, high = spectrum[10:200].mean(), spectrum[-2000:].mean()
    assert low > 20 * high  # 1/f: far more power at low frequencies


def test_a_room_spreads_energy_in_time_and_keeps_the_level():
    rng = np.random.default_rng(1)
    short, long = room_impulse_response(0.2, rng), room_impulse_response(0.5, rng)
    assert len(long) > len(short) and np.max(np.abs(long)) == pytest.approx(1.0)
    x = _speech()
    y = reverberate(x, long)
    assert len(y) == len(x) and speech_rms(y) == pytest.approx(speech_rms(x), rel=0.05)
    tail = slice(len(x) - RATE // 10, len(x))  # the silence after the speech now holds the room's decay
    assert np.abs(y[tail]).mean() > 10 * np.abs(x[tail]).mean() + 1e-6


def test_telephone_removes_what_a_phone_line_cannot_carry():
    rng = np.random.default_rng(2)
    x = rng.standard_normal(RATE).astype(np.float32) * 0.1
    y = telephone(x)
    spectrum = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / RATE)
    assert spectrum[freqs > 4500].sum() < 0.01 * spectrum[(freqs > 500) & (freqs < 3000)].sum()
    assert np.max(np.abs(gain_and_clip(x, 40.0, 0.3))) == pytest.approx(0.3)


def test_one_channel_per_speaker_and_copy_is_reproducible():
    aug = ChannelAugmentation(copies=2, p_reverb=1.0, p_noise=1.0, p_mic=1.0)
    rirs = [room_impulse_response(0.4, np.random.default_rng(3))]
    a = draw_channel(aug, np.random.default_rng(7), rirs)
    b = draw_channel(aug, np.random.default_rng(7), rirs)
    assert a.describe() == b.describe() and a.rir is rirs[0] and a.noise in ("white", "pink", "babble")
    x = _speech()
    y1 = apply_channel(x, a, np.random.default_rng(1))
    y2 = apply_channel(x, a, np.random.default_rng(1))
    np.testing.assert_array_equal(y1, y2)
    assert not np.allclose(y1[: len(x)], x)
    with pytest.raises(Exception, match="channel augmentation"):
        ChannelAugmentation(p_noise=2.0)


def _f0(x: np.ndarray) -> float:
    """The strongest spectral peak below 400 Hz: the fundamental of ``_speech``."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    band = (freqs > 80) & (freqs < 400)
    return float(freqs[band][np.argmax(spectrum[band])])


def test_talker_pitch_gives_one_copy_of_a_speaker_another_voice():
    from edgeemo.train.voice_augment import Channel

    x = _speech(1.0, 180.0)
    up = apply_channel(x, Channel(pitch=4.0), np.random.default_rng(0))
    assert len(up) == len(x)  # tempo kept
    assert _f0(up) == pytest.approx(180.0 * 2 ** (4 / 12), rel=0.03)
    aug = ChannelAugmentation(pitch_semitones=3.0, p_pitch=1.0)
    drawn = [draw_channel(aug, np.random.default_rng(s), []).pitch for s in range(50)]
    assert all(-3.0 <= p <= 3.0 for p in drawn) and min(drawn) < -1 and max(drawn) > 1
    # off by default, and then the record (the feature cache's key) is that of the runs before it
    off = ChannelAugmentation()
    assert "pitch_semitones" not in off.to_dict() and aug.to_dict()["pitch_semitones"] == 3.0
    same = ChannelAugmentation(p_reverb=1.0, p_noise=1.0, p_mic=1.0)
    with_pitch = ChannelAugmentation(p_reverb=1.0, p_noise=1.0, p_mic=1.0, pitch_semitones=3.0)
    a, b = draw_channel(same, np.random.default_rng(5), []), draw_channel(with_pitch, np.random.default_rng(5), [])
    assert a.describe() == b.describe().replace(f", pitch {b.pitch:+.1f} st", "")  # the other draws unchanged
    with pytest.raises(Exception, match="talker pitch"):
        ChannelAugmentation(pitch_semitones=-1.0)


def test_feature_bank_caches_per_speaker_and_serves_any_split(tmp_path):
    from edgeemo.train.voice_bank import FeatureBank
    from edgeemo.voice_datasets import load_voice

    root = tmp_path / "ravdess"
    for actor in (1, 2):
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True)
        for code, f0 in (("01", 150), ("03", 220), ("05", 300)):
            sf.write(folder / f"03-01-{code}-01-01-01-{actor:02d}.wav", _speech(0.6, f0 + 10 * actor), RATE)
        sf.write(folder / f"03-01-04-01-01-01-{actor:02d}.wav", np.zeros(RATE, np.float32), RATE)  # silence
    ds = load_voice(root)
    feats = AudioFeatures(window_s=1.0)
    aug = ChannelAugmentation(copies=2, p_reverb=0.0)  # no rooms to simulate: fast
    bank = FeatureBank(tmp_path / "cache", feats, aug, None, seed=0, babble_sources=ds.paths, workers=1)
    rows = bank.rows(ds, copies=True)
    assert rows.x.dtype == np.float16 and rows.x.shape[1:] == (feats.n_frames, feats.n_features)
    assert sorted(set(rows.copy.tolist())) == [0, 1, 2]
    assert len(rows.silent) == 2 and all("03-01-04" in p for p in rows.silent)  # silence: no rows, no guess
    assert np.all(rows.span[:, 0] < rows.span[:, 1])
    assert len(list(bank.folder.glob("*.npz"))) == 2  # one file per speaker
    one = ds.subset([i for i, g in enumerate(ds.groups) if str(g).endswith("01")])
    clean = bank.rows(one, copies=False)  # another split of the same clips: read from the cache, no DSP
    assert set(clean.copy.tolist()) == {0} and len(clean.x) == 3
    np.testing.assert_array_equal(clean.x, rows.x[(rows.copy == 0) & (rows.speakers == "ravdess:01")])
    assert bank.size_bytes() > 0
