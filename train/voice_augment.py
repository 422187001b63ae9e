"""Waveform augmentation for voice training (training clips only): noise injection, time
shift, pitch shift and time stretch (pitch and stretch through librosa).

Augmentation is offline: each training clip gets ``copies`` augmented versions whose
features are computed once through THE core front end, so an epoch costs no DSP.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from edgeemo.errors import EdgeemoError


@dataclass(frozen=True)
class VoiceAugmentation:
    """Ranges of the random waveform transforms; each is applied with probability ``p``."""

    copies: int = 8  # augmented versions per training clip (0 = off)
    noise_snr_db: tuple[float, float] = (15.0, 30.0)  # white noise at this SNR (relative to the clip's RMS)
    shift_s: float = 0.25  # max time shift, seconds (zeros fill the gap)
    pitch_semitones: float = 4.0  # max pitch shift up or down (0 = off)
    stretch: float = 0.15  # time stretch rate in [1 - stretch, 1 + stretch] (0 = off)
    p: float = 0.5

    def __post_init__(self) -> None:
        lo, hi = self.noise_snr_db
        if self.copies < 0 or not (0 <= self.p <= 1) or lo > hi or self.shift_s < 0:
            raise EdgeemoError("invalid voice augmentation (copies >= 0, 0 <= p <= 1, SNR min <= max, shift >= 0)")
        if self.pitch_semitones < 0 or not (0 <= self.stretch < 1):
            raise EdgeemoError("invalid voice augmentation (pitch >= 0 semitones, 0 <= stretch < 1)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pitch_shift(x: np.ndarray, semitones: float, sample_rate: int = 16000) -> np.ndarray:
    """``x`` shifted by ``semitones`` with its tempo kept (librosa; formants move with the pitch)."""
    import librosa

    return librosa.effects.pitch_shift(np.asarray(x, np.float32), sr=sample_rate, n_steps=semitones,
                                       res_type="soxr_hq").astype(np.float32)


def augment_waveform(x: np.ndarray, aug: VoiceAugmentation, rng: np.random.Generator,
                     sample_rate: int = 16000) -> np.ndarray:
    """One random augmented version of float samples ``x`` (mono, ``sample_rate``)."""
    y = np.asarray(x, np.float32)
    if aug.stretch > 0 and rng.random() < aug.p and len(y) > 2048:
        import librosa

        y = librosa.effects.time_stretch(y, rate=float(rng.uniform(1 - aug.stretch, 1 + aug.stretch)))
    if aug.pitch_semitones > 0 and rng.random() < aug.p and len(y) > 2048:
        y = pitch_shift(y, float(rng.uniform(-aug.pitch_semitones, aug.pitch_semitones)), sample_rate)
    if aug.shift_s > 0 and rng.random() < aug.p:
        n = int(rng.uniform(-aug.shift_s, aug.shift_s) * sample_rate)
        y = np.concatenate([np.zeros(n, np.float32), y]) if n > 0 else y[-n:]
    if rng.random() < aug.p and len(y):
        rms = float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))
        snr = rng.uniform(*aug.noise_snr_db)
        y = y + rng.normal(0.0, rms / (10 ** (snr / 20)), len(y)).astype(np.float32)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class FeatureMasking:
    """SpecAugment-style masking of standardised MFCC batches (training only, on the fly):
    ``time_masks`` spans of up to ``time_width`` frames and ``coeff_masks`` spans of up to
    ``coeff_width`` coefficients are set to 0 (the training mean) in each clip."""

    time_masks: int = 2
    time_width: int = 20
    coeff_masks: int = 2
    coeff_width: int = 4

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def active(self) -> bool:
        return (self.time_masks > 0 and self.time_width > 0) or (self.coeff_masks > 0 and self.coeff_width > 0)


def mask_features(x: Any, masking: FeatureMasking, seed: int = 0) -> Any:
    """Apply ``masking`` to a (batch, frames, coeffs) tf tensor; a tf function for tf.data ``map``."""
    import tensorflow as tf

    shape = tf.shape(x)
    batch, frames, coeffs = shape[0], shape[1], shape[2]
    keep = tf.ones_like(x)
    for axis, count, width, size in ((1, masking.time_masks, masking.time_width, frames),
                                     (2, masking.coeff_masks, masking.coeff_width, coeffs)):
        for _ in range(count):
            w = tf.random.uniform([batch, 1], 0, width + 1, dtype=tf.int32)
            room = tf.cast(tf.maximum(size - w, 1), tf.float32)
            start = tf.cast(tf.random.uniform([batch, 1]) * room, tf.int32)
            idx = tf.range(size)[tf.newaxis, :]
            span = tf.cast((idx >= start) & (idx < start + w), x.dtype)  # (batch, size)
            span = span[:, :, tf.newaxis] if axis == 1 else span[:, tf.newaxis, :]
            keep = keep * (1.0 - span)
    return x * keep


# ----------------------------------------------------------------------------- channel and room
# What a device's microphone adds to a voice: a room (reverberation), background noise, a
# cheap capsule's band limit and colour, a gain that may clip, sometimes a telephone codec.
# ``ChannelAugmentation`` draws one such channel per (speaker, copy), so every clip of a
# speaker in one copy shares it, as on a device; the speaker adaptation then sees one
# speaker through one channel. The same transforms, with fixed parameters, make the
# simulated capture of the robustness benchmark.


def speech_rms(x: np.ndarray, sample_rate: int = 16000) -> float:
    """RMS over the active frames (25 ms frames within 35 dB of the loudest): the level SNRs refer to."""
    y = np.asarray(x, np.float64)
    n = int(0.025 * sample_rate)
    if len(y) < n:
        return float(np.sqrt(np.mean(y * y))) if len(y) else 0.0
    frames = y[: len(y) // n * n].reshape(-1, n)
    power = np.mean(frames * frames, axis=1)
    active = power >= power.max() * 10 ** (-35 / 10)
    return float(np.sqrt(np.mean(power[active]))) if power.max() > 0 else 0.0


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS 1/f noise of ``n`` samples (white noise shaped in the frequency domain)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    y = np.fft.irfft(spectrum / np.sqrt(f), n)
    return (y / (np.std(y) + 1e-12)).astype(np.float32)


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float, sample_rate: int = 16000) -> np.ndarray:
    """``x`` plus ``noise`` (tiled or cut to length) scaled to ``snr_db`` below the speech level."""
    x = np.asarray(x, np.float32)
    if len(noise) < len(x):
        noise = np.tile(noise, int(np.ceil(len(x) / max(len(noise), 1))))
    noise = np.asarray(noise[: len(x)], np.float64)
    level = speech_rms(x, sample_rate)
    n_rms = float(np.sqrt(np.mean(noise * noise)))
    if level == 0 or n_rms == 0:
        return x
    return (x + noise * (level / n_rms / 10 ** (snr_db / 20))).astype(np.float32)


def room_impulse_response(rt60: float, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """The impulse response of a random shoebox room with reverberation time ``rt60`` seconds
    (pyroomacoustics image-source method, absorption from Sabine's formula), direct path = 1."""
    import pyroomacoustics as pra

    dim = np.array([rng.uniform(4, 9), rng.uniform(3, 7), rng.uniform(2.5, 3.5)])
    absorption, max_order = pra.inverse_sabine(float(rt60), dim)
    room = pra.ShoeBox(dim, fs=sample_rate, materials=pra.Material(absorption), max_order=max_order)
    src = rng.uniform([0.5, 0.5, 1.2], dim - [0.5, 0.5, 1.0])
    for _ in range(100):  # the microphone 1-3 m from the talker, inside the room
        mic = rng.uniform([0.5, 0.5, 0.8], dim - [0.5, 0.5, 1.0])
        if 1.0 <= np.linalg.norm(mic - src) <= 3.0:
            break
    room.add_source(src)
    room.add_microphone(mic)
    room.compute_rir()
    h = np.asarray(room.rir[0][0], np.float64)
    return (h / np.max(np.abs(h))).astype(np.float32)


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``x`` convolved with ``rir``, cut to its length and scaled back to its speech level."""
    from scipy.signal import fftconvolve

    x = np.asarray(x, np.float32)
    y = fftconvolve(x, rir)[: len(x)]
    before, after = speech_rms(x), speech_rms(y)
    return (y * (before / after) if after > 0 else y).astype(np.float32)


def band_limit(x: np.ndarray, low_hz: float, high_hz: float, sample_rate: int = 16000) -> np.ndarray:
    """A cheap microphone's band: 2nd-order Butterworth high-pass at ``low_hz`` and low-pass at ``high_hz``."""
    from scipy.signal import butter, sosfilt

    sos = np.concatenate([butter(2, low_hz, "highpass", fs=sample_rate, output="sos"),
                          butter(4, min(high_hz, sample_rate / 2 * 0.95), "lowpass", fs=sample_rate, output="sos")])
    return sosfilt(sos, x).astype(np.float32)


def peaking_eq(x: np.ndarray, freq_hz: float, gain_db: float, q: float = 1.0, sample_rate: int = 16000) -> np.ndarray:
    """One peaking EQ band (RBJ cookbook biquad): a capsule's or a loudspeaker's colour."""
    from scipy.signal import lfilter

    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * freq_hz / sample_rate
    alpha = np.sin(w0) / (2 * q)
    b = [1 + alpha * a, -2 * np.cos(w0), 1 - alpha * a]
    den = [1 + alpha / a, -2 * np.cos(w0), 1 - alpha / a]
    return lfilter(np.asarray(b) / den[0], np.asarray(den) / den[0], x).astype(np.float32)


def gain_and_clip(x: np.ndarray, gain_db: float, clip_level: float = 1.0) -> np.ndarray:
    """Scale by ``gain_db`` and hard-clip at ``clip_level`` (an overdriven input stage)."""
    return np.clip(np.asarray(x, np.float32) * np.float32(10 ** (gain_db / 20)), -clip_level, clip_level)


def telephone(x: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
    """An 8 kHz telephone path: 300-3400 Hz band, resampled to 8 kHz, 8-bit mu-law (G.711), back to the rate."""
    from scipy.signal import resample_poly

    y = band_limit(x, 300.0, 3400.0, sample_rate)
    y = resample_poly(y, 1, sample_rate // 8000)
    mu = 255.0
    y = np.clip(y, -1, 1)
    code = np.round(np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu) * 127) / 127
    y = np.sign(code) * np.expm1(np.abs(code) * np.log1p(mu)) / mu
    return np.clip(resample_poly(y, sample_rate // 8000, 1), -1, 1).astype(np.float32)


def speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Speed perturbation (tempo and pitch together, as a faster or slower talker) by resampling."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    ratio = Fraction(1 / factor).limit_denominator(100)
    return resample_poly(np.asarray(x, np.float32), ratio.numerator, ratio.denominator).astype(np.float32)


@dataclass(frozen=True)
class ChannelAugmentation:
    """Microphone, room and talker augmentation of training clips, one channel per (speaker, copy).

    Each copy of a speaker draws: a room (probability ``p_reverb``, RT60 in ``rt60``), a
    background noise (``p_noise``; white, pink or babble at an SNR in ``snr_db``), a cheap
    microphone (``p_mic``; band limit plus one EQ band of up to ``eq_db``), a telephone path
    (``p_telephone``), an input gain in ``gain_db`` that clips with ``p_clip``, a talker
    speed factor within ``speed`` (``p_speed``) and a talker pitch shift of up to
    ``pitch_semitones`` (``p_pitch``; tempo kept, formants move with it): one copy of a speaker
    is then another voice saying the same words. Copy 0 is the clean clip.
    """

    copies: int = 4
    p_reverb: float = 0.5
    rt60: tuple[float, float] = (0.2, 1.0)
    p_noise: float = 0.7
    snr_db: tuple[float, float] = (0.0, 25.0)
    p_mic: float = 0.5
    eq_db: float = 8.0
    p_telephone: float = 0.15
    gain_db: tuple[float, float] = (-20.0, 10.0)
    p_clip: float = 0.1
    speed: float = 0.1
    p_speed: float = 0.5
    pitch_semitones: float = 0.0
    p_pitch: float = 0.5

    def __post_init__(self) -> None:
        probs = (self.p_reverb, self.p_noise, self.p_mic, self.p_telephone, self.p_clip, self.p_speed, self.p_pitch)
        if not 0 <= self.pitch_semitones <= 12:
            raise EdgeemoError(f"invalid channel augmentation: talker pitch must be 0-12 semitones, got "
                               f"{self.pitch_semitones}")
        if self.copies < 0 or not all(0 <= p <= 1 for p in probs) or not 0 <= self.speed < 0.5:
            raise EdgeemoError("invalid channel augmentation (copies >= 0, probabilities in [0, 1], speed < 0.5)")
        if self.rt60[0] > self.rt60[1] or self.snr_db[0] > self.snr_db[1] or self.gain_db[0] > self.gain_db[1]:
            raise EdgeemoError("invalid channel augmentation (each range needs min <= max)")

    def to_dict(self) -> dict[str, Any]:
        out = {"kind": "channel", **asdict(self)}
        if not self.pitch_semitones:  # off: the record (and the feature cache's key) of the runs before it
            del out["pitch_semitones"], out["p_pitch"]
        return out


@dataclass
class Channel:
    """One drawn channel: the transforms applied to every clip of one (speaker, copy)."""

    rir: np.ndarray | None = None
    noise: str | None = None  # white, pink or babble
    snr_db: float = 0.0
    band: tuple[float, float] | None = None
    eq: tuple[float, float] | None = None  # (frequency, gain dB)
    telephone: bool = False
    gain_db: float = 0.0
    clip_level: float = 1.0
    speed: float = 1.0
    pitch: float = 0.0  # semitones

    def describe(self) -> str:
        parts = [f"rir {len(self.rir)}" if self.rir is not None else "",
                 f"{self.noise} {self.snr_db:.0f} dB" if self.noise else "",
                 f"band {self.band[0]:.0f}-{self.band[1]:.0f} Hz" if self.band else "",
                 "telephone" if self.telephone else "", f"gain {self.gain_db:+.0f} dB",
                 f"speed {self.speed:.2f}" if self.speed != 1 else "",
                 f"pitch {self.pitch:+.1f} st" if self.pitch else ""]
        return ", ".join(p for p in parts if p)


def draw_channel(aug: ChannelAugmentation, rng: np.random.Generator, rirs: list[np.ndarray]) -> Channel:
    """A random ``Channel`` under ``aug``; rooms are drawn from the precomputed ``rirs``."""
    ch = Channel()
    if rirs and rng.random() < aug.p_reverb:
        ch.rir = rirs[int(rng.integers(len(rirs)))]
    if rng.random() < aug.p_noise:
        ch.noise = str(rng.choice(["white", "pink", "babble"]))
        ch.snr_db = float(rng.uniform(*aug.snr_db))
    if rng.random() < aug.p_mic:
        ch.band = (float(rng.uniform(80, 400)), float(rng.uniform(3500, 7500)))
        ch.eq = (float(np.exp(rng.uniform(np.log(300), np.log(5000)))), float(rng.uniform(-aug.eq_db, aug.eq_db)))
    ch.telephone = bool(rng.random() < aug.p_telephone)
    ch.gain_db = float(rng.uniform(*aug.gain_db))
    if rng.random() < aug.p_clip:
        ch.clip_level = float(rng.uniform(0.05, 0.5))
        ch.gain_db = max(ch.gain_db, 0.0)
    if rng.random() < aug.p_speed:
        ch.speed = float(rng.uniform(1 - aug.speed, 1 + aug.speed))
    if aug.pitch_semitones > 0 and rng.random() < aug.p_pitch:  # drawn last: the other draws stay as before
        ch.pitch = float(rng.uniform(-aug.pitch_semitones, aug.pitch_semitones))
    return ch


def apply_channel(x: np.ndarray, ch: Channel, rng: np.random.Generator, babble: np.ndarray | None = None,
                  sample_rate: int = 16000) -> np.ndarray:
    """One clip through ``ch``: talker speed and pitch, room, microphone colour, noise, telephone, gain and
    clipping."""
    y = np.asarray(x, np.float32)
    if ch.speed != 1.0:
        y = speed(y, ch.speed)
    if ch.pitch and len(y) > 2048:
        y = pitch_shift(y, ch.pitch, sample_rate)
    if ch.rir is not None:
        y = reverberate(y, ch.rir)
    if ch.band is not None:
        y = band_limit(y, *ch.band, sample_rate=sample_rate)
    if ch.eq is not None:
        y = peaking_eq(y, *ch.eq, sample_rate=sample_rate)
    if ch.noise is not None:
        if ch.noise == "babble" and babble is not None and len(babble) > len(y):
            start = int(rng.integers(len(babble) - len(y)))
            noise = babble[start : start + len(y)]
        elif ch.noise == "pink":
            noise = pink_noise(len(y), rng)
        else:
            noise = rng.standard_normal(len(y)).astype(np.float32)
        y = add_noise(y, noise, ch.snr_db, sample_rate)
    if ch.telephone:
        y = telephone(y, sample_rate)
    return gain_and_clip(y, ch.gain_db, ch.clip_level)


def make_babble(clips: list[np.ndarray], talkers: int, seconds: float, rng: np.random.Generator,
                sample_rate: int = 16000) -> np.ndarray:
    """Babble noise: ``talkers`` streams of concatenated clips (each stream at its speech level), summed."""
    n = int(seconds * sample_rate)
    out = np.zeros(n, np.float64)
    for _ in range(talkers):
        stream: list[np.ndarray] = []
        while sum(map(len, stream)) < n:
            c = clips[int(rng.integers(len(clips)))]
            level = speech_rms(c, sample_rate)
            stream.append(c / level if level > 0 else c)
        out += np.concatenate(stream)[:n]
    return (out / (np.std(out) + 1e-12)).astype(np.float32)
