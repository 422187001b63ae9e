"""Prosody and voice-quality frames of THE voice front end (``AudioFeatures.prosody``).

Per frame, aligned with the MFCC frames (one every ``winstep``, centred on the same samples):
the pitch in semitones above 27.5 Hz and its aperiodicity from YIN (de Cheveigne & Kawahara 2002:
the cumulative mean normalised difference, the first dip under ``YIN_THRESHOLD``, parabolic
interpolation; 40 ms frames of the signal resampled to ``pitch_rate_hz``, every
``pitch_hop_frames``-th frame: 8 kHz and every 2nd by default), the frame level in dB, and the
spectral balance of eGeMAPS (Eyben et al. 2016) on 25 ms Hann frames: alpha ratio, Hammarberg
index and the spectral slopes 0-500 Hz and 500-1500 Hz.

``prosody_functionals`` summarises them over a clip's voiced speech frames, as eGeMAPS does:
pitch mean, variation, 20/50/80th percentiles and range, rising and falling slopes, the voiced
fraction, voiced segments per second and their mean length, and the mean and std of the four
balance measures (``PROSODY_FUNCTIONALS``). Pure numpy: nothing to install on a device.

On the shared corpora (leave-one-corpus-out, per-speaker standardisation, a linear screen) these
21 values beside the MFCC functionals raise the transfer score from 42.4 to 48.6
(``benchmarks/results/experiments/voice_prosody.md``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

PROSODY_COLUMNS = ("f0_semitones", "aperiodicity", "level_db", "alpha_ratio", "hammarberg", "slope_0_500",
                   "slope_500_1500")
PROSODY_FUNCTIONALS = (
    "f0_mean", "f0_std_norm", "f0_p20", "f0_p50", "f0_p80", "f0_range_20_80",
    "f0_rising_mean", "f0_rising_std", "f0_falling_mean", "f0_falling_std",
    "voiced_fraction", "voiced_segments_per_s", "voiced_segment_mean_s",
    "alpha_ratio_mean", "hammarberg_mean", "slope_0_500_mean", "slope_500_1500_mean",
    "alpha_ratio_std", "hammarberg_std", "slope_0_500_std", "slope_500_1500_std",
)
PITCH_FRAME_S = 0.040  # YIN's frame: two periods of the lowest pitch (at AudioFeatures.pitch_rate_hz)
BALANCE_FRAME_S = 0.025  # level and spectral balance: the MFCC frame
YIN_THRESHOLD = 0.15
VOICED_APERIODICITY = 0.3  # a frame is voiced below this aperiodicity ...
VOICED_REL_DB = -35.0  # ... and within this level of the clip's loudest frame
_LEVEL_FLOOR_DB = -120.0
_SILENCE = (0.0, 1.0, _LEVEL_FLOOR_DB, 0.0, 0.0, 0.0, 0.0)  # a frame with no signal: no pitch, aperiodic, the floor


@lru_cache(maxsize=4)
def _lowpass(down: int) -> np.ndarray:
    """scipy.signal.resample_poly's anti-aliasing filter for 1/down: firwin(20 down + 1, 1/down, kaiser 5)."""
    n = 20 * down + 1
    t = np.arange(n) - (n - 1) / 2
    h = np.sinc(t / down) / down * np.kaiser(n, 5.0)
    return h / h.sum()


def decimate(samples: np.ndarray, down: int) -> np.ndarray:
    """``scipy.signal.resample_poly(samples, 1, down)`` in numpy (equal to rounding; tested): the daemon
    keeps scipy.signal, 76 MiB of memory, out of its process."""
    h = _lowpass(down)
    half = (len(h) - 1) // 2
    x = np.pad(np.asarray(samples, np.float64), half)
    return np.lib.stride_tricks.sliding_window_view(x, len(h))[::down] @ h


def _frames(samples: np.ndarray, n_frames: int, step: int, centre: int, length: int) -> np.ndarray:
    """(n_frames, length) frames centred on ``centre + i * step``, zero outside the samples."""
    x = np.asarray(samples, np.float64)
    start = centre - length // 2  # of the first frame, in samples (may be before the first sample)
    padded = np.zeros((n_frames - 1) * step + length)
    lo, hi = max(0, start), min(len(x), start + len(padded))
    if hi > lo:
        padded[lo - start : hi - start] = x[lo:hi]
    return np.lib.stride_tricks.sliding_window_view(padded, length)[::step][:n_frames]


def prosody_frames(samples: np.ndarray, n_frames: int, sample_rate: int, step: int, centre: int,
                   fmin_hz: float, fmax_hz: float, span: tuple[int, int] | None = None, *,
                   pitch_rate_hz: int, pitch_hop: int) -> np.ndarray:
    """(n_frames, 7) float32 ``PROSODY_COLUMNS``; frame ``i`` is centred on sample ``centre + i * step``.

    Only the frames of ``span`` ([first, last), default all) are analysed; the others get the
    values of silence (no pitch, aperiodicity 1, the level floor). The pitch is tracked on the
    signal resampled to ``pitch_rate_hz``, on every ``pitch_hop``-th frame of the span (its first
    included), each value repeated over the frames up to the next.
    """
    first, last = span if span is not None else (0, n_frames)
    out = np.tile(np.array(_SILENCE, np.float32), (n_frames, 1))
    if last > first:
        out[first:last] = _analyse(samples, last - first, sample_rate, step, centre + first * step, fmin_hz, fmax_hz,
                                   pitch_rate_hz, pitch_hop)
    return out


def _analyse(samples: np.ndarray, n_frames: int, sample_rate: int, step: int, centre: int,
             fmin_hz: float, fmax_hz: float, pitch_rate_hz: int, pitch_hop: int) -> np.ndarray:
    down = sample_rate // pitch_rate_hz
    low = decimate(samples, down) if down > 1 else samples
    n_pitch = -(-n_frames // pitch_hop)
    pitch_frames = _frames(low, n_pitch, step * pitch_hop // down, centre // down,
                           int(round(PITCH_FRAME_S * pitch_rate_hz)))
    f0, aperiodicity = (np.repeat(v, pitch_hop)[:n_frames] for v in _yin(pitch_frames, pitch_rate_hz, fmin_hz, fmax_hz))
    # level and spectral balance on the MFCC frames (25 ms, Hann), eGeMAPS' definitions
    length = int(round(BALANCE_FRAME_S * sample_rate))
    fr = _frames(samples, n_frames, step, centre, length)
    fr = fr - fr.mean(axis=1, keepdims=True)
    power = np.mean(fr * fr, axis=1)
    level = np.maximum(10.0 * np.log10(np.maximum(power, 1e-30)), _LEVEL_FLOOR_DB)
    nfft = 1 << int(np.ceil(np.log2(length)))
    spec = np.abs(np.fft.rfft(fr * np.hanning(length), nfft)) ** 2 + 1e-20
    hz = np.fft.rfftfreq(nfft, 1.0 / sample_rate)

    def band(lo: float, hi: float) -> np.ndarray:
        return (hz >= lo) & (hz < hi)

    alpha = 10.0 * np.log10(spec[:, band(50, 1000)].sum(axis=1) / spec[:, band(1000, 5000)].sum(axis=1))
    hammarberg = 10.0 * np.log10(spec[:, band(0, 2000)].max(axis=1) / spec[:, band(2000, 5000)].max(axis=1))
    under_1500 = hz < 1500  # the slopes' bins: the log is taken of these only
    log_spec = 10.0 * np.log10(spec[:, under_1500])

    def slope(lo: float, hi: float) -> np.ndarray:  # dB per kHz, least squares
        m = band(lo, hi)[under_1500]
        h = hz[under_1500][m] - hz[under_1500][m].mean()
        return (log_spec[:, m] - log_spec[:, m].mean(axis=1, keepdims=True)) @ h / (h @ h) * 1000.0

    out = np.stack([12.0 * np.log2(f0 / 27.5), aperiodicity, level, alpha, hammarberg, slope(0, 500),
                    slope(500, 1500)], axis=1)
    out[power <= 1e-20] = _SILENCE  # digital silence
    return out


def _yin(fr: np.ndarray, sample_rate: float, fmin_hz: float, fmax_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """YIN's pitch (Hz) and aperiodicity of each frame (de Cheveigne & Kawahara 2002, steps 1-5)."""
    length = fr.shape[1]
    tmin = max(2, int(sample_rate // fmax_hz))
    tmax = min(length // 2, int(np.ceil(sample_rate / fmin_hz)))
    fr = fr - fr.mean(axis=1, keepdims=True)
    # d(tau) = sum over the overlap j < length - tau of (x_j - x_{j+tau})^2 = E(head) + E(tail) - 2 r(tau),
    # r the frame's autocorrelation (one forward FFT), scaled to a full frame's worth of terms
    nfft = 1 << int(np.ceil(np.log2(length + tmax)))
    spec = np.fft.rfft(fr, nfft)
    power = spec.real**2
    power += spec.imag**2
    r = np.fft.irfft(power, nfft)[:, : tmax + 1]
    sq = fr * fr
    total = sq.sum(axis=1, keepdims=True)
    d = np.empty_like(r)  # E(head) + E(tail) = 2 total - (energy of the last tau) - (energy of the first tau)
    d[:, 0] = 0.0
    d[:, 1:] = 2.0 * total - np.cumsum(sq[:, : -tmax - 1 : -1], axis=1) - np.cumsum(sq[:, :tmax], axis=1)
    d -= 2.0 * r
    np.maximum(d, 0.0, out=d)
    d *= length / (length - np.arange(tmax + 1))
    cmnd = np.ones_like(d)
    cum = np.cumsum(d[:, 1:], axis=1)
    np.divide(d[:, 1:] * np.arange(1, tmax + 1), cum, out=cmnd[:, 1:], where=cum > 1e-20)
    seg = cmnd[:, tmin : tmax + 1]
    dip = np.zeros_like(seg, dtype=bool)
    dip[:, 1:-1] = (seg[:, 1:-1] <= seg[:, :-2]) & (seg[:, 1:-1] <= seg[:, 2:])
    dip &= seg < YIN_THRESHOLD
    lag = np.where(dip.any(axis=1), dip.argmax(axis=1), seg.argmin(axis=1)) + tmin
    rows = np.arange(len(fr))
    a, b, c = cmnd[rows, np.maximum(lag - 1, 0)], cmnd[rows, lag], cmnd[rows, np.minimum(lag + 1, tmax)]
    den = a - 2.0 * b + c
    shift = np.clip(np.where(np.abs(den) > 1e-12, 0.5 * (a - c) / np.where(den == 0, 1.0, den), 0.0), -1.0, 1.0)
    return sample_rate / (lag + shift), b


def prosody_functionals(frames: np.ndarray, frame_rate: float, pitch_hop: int) -> np.ndarray:
    """The 21 ``PROSODY_FUNCTIONALS`` of a clip's speech frames of ``PROSODY_COLUMNS``, float64.

    Pitch statistics use the frames the pitch was tracked on (every ``pitch_hop``-th, the first
    included) that are voiced (aperiodicity under ``VOICED_APERIODICITY`` and level within
    ``VOICED_REL_DB`` of the loudest frame), smoothed by a 3-frame median; a clip with fewer than 3
    voiced frames has zero pitch statistics. The balance statistics use every voiced frame, or the
    loud frames when fewer than 3 are voiced.
    """
    p = np.asarray(frames, np.float64)
    if len(p) == 0:
        return np.zeros(len(PROSODY_FUNCTIONALS))
    ap, level, balance = p[:, 1], p[:, 2], p[:, 3:7]
    loud = level > level.max() + VOICED_REL_DB
    voiced_all = (ap < VOICED_APERIODICITY) & loud
    st, voiced = p[::pitch_hop, 0], voiced_all[::pitch_hop]
    rate = frame_rate / pitch_hop
    smooth = st.copy()
    if len(st) > 2:
        smooth[1:-1] = np.median(np.stack([st[:-2], st[1:-1], st[2:]]), axis=0)
    pitch = np.zeros(13)
    v = smooth[voiced]
    if len(v) >= 3:
        p20, p50, p80 = np.percentile(v, [20, 50, 80])
        both = voiced[1:] & voiced[:-1]
        d = np.diff(smooth)[both] * rate
        up, down = d[d > 0], -d[d < 0]
        edges = np.diff(np.concatenate([[0], voiced.astype(np.int8), [0]]))
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        pitch = np.array([
            v.mean(), v.std() / max(v.mean(), 1e-6), p20, p50, p80, p80 - p20,
            up.mean() if len(up) else 0.0, up.std() if len(up) else 0.0,
            down.mean() if len(down) else 0.0, down.std() if len(down) else 0.0,
            voiced.mean(), len(starts) / (len(st) / rate), float(np.mean(stops - starts)) / rate,
        ])
    use = voiced_all if voiced_all.sum() >= 3 else loud
    b = balance[use]
    return np.concatenate([pitch, b.mean(axis=0), b.std(axis=0)])
