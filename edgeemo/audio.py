"""THE audio front end: one path from a file or a microphone to the voice model input.

Training, calibration, export verification and the device all call ``clip_features``
(directly, or through ``PcmStream``) with the ``AudioFeatures`` stored in the model's
manifest, so what a model hears at serve time is what it heard in training.

Pipeline: ``load_audio`` (any WAV/FLAC/AIFF -> float32 mono 16 kHz in [-1, 1])
-> ``trim_silence`` (energy VAD; ``None`` = no speech) -> ``fix_length`` (centre
pad/crop to ``window_s``) -> ``mfcc_features`` (python_speech_features), with ``prosody`` the pitch, level and spectral
balance columns of ``edgeemo.prosody`` beside them -> ``RunningStats.apply``
(per-coefficient standardisation).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from python_speech_features import delta, mfcc

from edgeemo.errors import EdgeemoError
from edgeemo.prosody import PROSODY_COLUMNS, prosody_frames

SAMPLE_RATE = 16000
PCM16_SCALE = 32768.0  # int16 -> float: x / 32768, so float = int16 exactly as libsndfile reads PCM_16
# What load_audio accepts: absurd rates and endless files are refused before anything is allocated.
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 4000, 768000
MAX_AUDIO_SECONDS = 600.0  # 10 minutes (voice clips are seconds; device replays loop)
MAX_AUDIO_FRAMES = int(MAX_AUDIO_SECONDS * 48000)  # 10 minutes at 48 kHz: bounds memory at any rate
MAX_AUDIO_CHANNELS = 64
MAX_RESAMPLE_DENOMINATOR = 10000  # every standard rate stays exact (44.1 kHz -> 160/441); the filter stays small


@dataclass(frozen=True)
class AudioFeatures:
    """Parameters of the voice front end, stored in every voice model's manifest.

    MFCCs come from ``python_speech_features.mfcc`` with a Hamming window, ``ceplifter``
    22 and ``append_energy`` True (coefficient 0 is the log of the frame's power-spectrum
    energy). A window of ``window_s`` seconds gives ``n_frames`` = 1 + ceil((N - 400) / 160)
    frames: 299 for 3 s at 16 kHz (the last frame is zero-padded by python_speech_features).
    VAD: a frame (``winlen``/``winstep``) is voiced when its RMS is at least ``vad_rel_db``
    relative to the clip's loudest frame and at least ``vad_abs_db`` dBFS (frame RMS with the
    frame's mean removed). With ``remove_dc`` the trimmed speech has its mean subtracted
    before padding, so a DC offset (SAVEE, cheap microphones) leaves no step at the edges.
    """

    sample_rate: int = SAMPLE_RATE
    window_s: float = 3.0
    n_mfcc: int = 40
    deltas: bool = False
    preemph: float = 0.97
    winlen: float = 0.025
    winstep: float = 0.010
    nfft: int = 512
    n_mels: int = 40
    ceplifter: int = 22
    append_energy: bool = True
    remove_dc: bool = True
    cmn: bool = False  # cepstral mean normalisation: subtract the clip's mean over its speech frames
    prosody: bool = False  # append the 7 prosody columns of edgeemo.prosody (pitch, level, spectral balance)
    pitch_fmin_hz: float = 60.0
    pitch_fmax_hz: float = 500.0
    pitch_rate_hz: int = 8000  # the pitch tracker's sample rate (a divisor of sample_rate)
    pitch_hop_frames: int = 2  # the pitch is tracked on every n-th frame
    vad_rel_db: float = -35.0
    vad_abs_db: float = -60.0
    vad_min_speech_s: float = 0.2
    vad_pad_s: float = 0.1

    def __post_init__(self) -> None:
        ints = ("sample_rate", "n_mfcc", "nfft", "n_mels", "ceplifter", "pitch_rate_hz", "pitch_hop_frames")
        for name in ints:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise EdgeemoError(f"voice features {name} must be an int, got {value!r}")
        for name in ("deltas", "append_energy", "remove_dc", "cmn", "prosody"):
            if not isinstance(getattr(self, name), bool):
                raise EdgeemoError(f"voice features {name} must be true or false, got {getattr(self, name)!r}")
        for name, f in self.__dataclass_fields__.items():
            if name in ints or f.type == "bool":
                continue
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise EdgeemoError(f"voice features {name} must be a finite number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.sample_rate != SAMPLE_RATE:
            raise EdgeemoError(f"voice features sample_rate must be {SAMPLE_RATE}, got {self.sample_rate}")
        checks = [
            (self.winlen > 0 and self.winstep > 0, "winlen and winstep must be positive"),
            (self.window_s >= self.winlen, "window_s must be at least winlen"),
            (1 <= self.n_mfcc <= self.n_mels, "n_mfcc must be between 1 and n_mels"),
            (self.nfft >= self.frame_length, f"nfft must be at least winlen * sample_rate ({self.frame_length})"),
            (0.0 <= self.preemph < 1.0, "preemph must be in [0, 1)"),
            (self.ceplifter >= 0, "ceplifter must be >= 0"),
            (self.vad_rel_db <= 0 and self.vad_abs_db <= 0, "vad_rel_db and vad_abs_db must be <= 0 dB"),
            (self.vad_min_speech_s >= 0 and self.vad_pad_s >= 0, "vad_min_speech_s and vad_pad_s must be >= 0"),
            # upper bounds: a manifest cannot make the front end allocate without limit
            (self.window_s <= 60 and self.winlen <= 1 and self.winstep <= 1, "window_s <= 60, winlen/winstep <= 1 s"),
            (self.nfft <= 65536 and self.n_mels <= 512, "nfft must be <= 65536 and n_mels <= 512"),
            (self.ceplifter <= 10000, "ceplifter must be <= 10000"),
            (50.0 <= self.pitch_fmin_hz < self.pitch_fmax_hz <= 2000.0,
             "pitch_fmin_hz must be at least 50 and below pitch_fmax_hz, which must be <= 2000"),
            (4000 <= self.pitch_rate_hz <= self.sample_rate and self.sample_rate % self.pitch_rate_hz == 0
             and self.pitch_fmax_hz < self.pitch_rate_hz / 4,
             "pitch_rate_hz must divide sample_rate, be at least 4000 and above 4 x pitch_fmax_hz"),
            (1 <= self.pitch_hop_frames <= 4, "pitch_hop_frames must be 1-4"),
            (self.vad_min_speech_s <= 60 and self.vad_pad_s <= 60, "vad_min_speech_s and vad_pad_s must be <= 60 s"),
        ]
        for ok, message in checks:
            if not ok:
                raise EdgeemoError(f"invalid voice features: {message}")

    @property
    def frame_length(self) -> int:
        """Samples per analysis frame (rounded half up, as python_speech_features does)."""
        return int(math.floor(self.winlen * self.sample_rate + 0.5))

    @property
    def frame_step(self) -> int:
        return int(math.floor(self.winstep * self.sample_rate + 0.5))

    @property
    def window_samples(self) -> int:
        return int(round(self.window_s * self.sample_rate))

    @property
    def n_frames(self) -> int:
        """MFCC frames for one ``window_s`` window (299 with the defaults)."""
        return frame_count(self.window_samples, self)

    @property
    def n_features(self) -> int:
        """Values per frame: the cepstral values, then the prosody columns when ``prosody``."""
        return self.n_cepstral + (len(PROSODY_COLUMNS) if self.prosody else 0)

    @property
    def n_cepstral(self) -> int:
        """Cepstral values per frame: n_mfcc, or 3 * n_mfcc with deltas and delta-deltas."""
        return self.n_mfcc * (3 if self.deltas else 1)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "voice", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AudioFeatures:
        if not isinstance(d, dict):
            raise EdgeemoError(f"voice preprocessing must be a table/object, got {type(d).__name__}")
        if d.get("kind", "voice") != "voice":
            raise EdgeemoError(f"not a voice preprocessing (kind {d.get('kind')!r})")
        fields = {k: v for k, v in d.items() if k != "kind"}
        unknown = set(fields) - set(cls.__dataclass_fields__)
        if unknown:
            raise EdgeemoError(f"unknown voice preprocessing keys {sorted(unknown)}")
        return cls(**fields)


DEFAULT_VOICE = AudioFeatures()


def frame_count(n_samples: int, feats: AudioFeatures = DEFAULT_VOICE) -> int:
    """Frames python_speech_features makes from ``n_samples`` samples."""
    length, step = feats.frame_length, feats.frame_step
    return 1 if n_samples <= length else 1 + -(-(n_samples - length) // step)


# ----------------------------------------------------------------------------- loading


def resample_ratio(src_rate: int, dst_rate: int = SAMPLE_RATE) -> Fraction:
    """dst/src as up/down for ``resample_poly``: exact when the reduced denominator is at most
    ``MAX_RESAMPLE_DENOMINATOR`` (every standard rate), else the nearest such fraction (a rate
    error below 1e-4; an exact 16000/767999 would need a filter of 15 million taps)."""
    if int(src_rate) < 1 or int(dst_rate) < 1:
        raise EdgeemoError(f"sample rates must be positive, got {src_rate} -> {dst_rate}")
    ratio = Fraction(int(dst_rate), int(src_rate))
    if ratio.denominator > MAX_RESAMPLE_DENOMINATOR:
        ratio = ratio.limit_denominator(MAX_RESAMPLE_DENOMINATOR)
    return ratio if ratio > 0 else Fraction(1, MAX_RESAMPLE_DENOMINATOR)


def resample(samples: np.ndarray, src_rate: int, dst_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling by the rational ratio dst/src (scipy resample_poly; see ``resample_ratio``)."""
    if src_rate == dst_rate:
        return samples
    # imported here: scipy.signal pulls in scipy.stats, sparse, optimize, ... (76 MiB of RSS and ~1 s),
    # which the daemon, reading 16 kHz, never needs
    from scipy.signal import resample_poly

    ratio = resample_ratio(src_rate, dst_rate)
    return resample_poly(samples, ratio.numerator, ratio.denominator, axis=0)


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, int]:
    """Decode an audio file to (float32 mono samples in [-1, 1], sample_rate).

    Reads whatever libsndfile recognises by content (WAV, FLAC, AIFF, ... whatever the
    extension says), 8-32 bit int or float; channels are averaged, the rate is converted
    with ``resample`` and the result is clipped to [-1, 1] (resampling a full-scale,
    clipped signal overshoots slightly). Raises an EdgeemoError naming the file otherwise,
    also for a rate outside 4-768 kHz, more than ``MAX_AUDIO_CHANNELS`` channels, or more than
    ``MAX_AUDIO_SECONDS`` (or ``MAX_AUDIO_FRAMES``) of audio: checked from the header, before reading.
    """
    path = Path(path)
    if not path.exists():
        raise EdgeemoError("no such file", path)
    if not path.is_file():
        raise EdgeemoError("not a file", path)
    if path.stat().st_size == 0:
        raise EdgeemoError("empty file (0 bytes), not audio", path)
    try:
        with sf.SoundFile(str(path)) as f:
            rate, channels, frames = int(f.samplerate), int(f.channels), int(f.frames)
            _check_audio_header(path, rate, channels, frames)
            # channels averaged block by block: memory is one mono float64 copy of the file
            blocks = [b.mean(axis=1) if b.shape[1] > 1 else b[:, 0]
                      for b in f.blocks(blocksize=1 << 18, dtype="float64", always_2d=True)]
    except EdgeemoError:
        raise
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError, OverflowError) as exc:
        reason = str(exc).split(":")[-1].strip() or type(exc).__name__
        raise EdgeemoError(
            f"not a readable audio file (unsupported format, or truncated/corrupt header): {reason}", path
        ) from None
    except OSError as exc:
        raise EdgeemoError(f"cannot read file ({exc.strerror or exc})", path) from None
    mono = np.concatenate(blocks) if blocks else np.zeros(0)
    if mono.size == 0:
        raise EdgeemoError("no audio samples in the file (0 frames)", path)
    if not np.all(np.isfinite(mono)):
        raise EdgeemoError("audio contains NaN or infinite samples", path)
    mono = resample(mono, rate, sample_rate)
    return np.clip(mono, -1.0, 1.0).astype(np.float32), sample_rate


def _check_audio_header(path: Path, rate: int, channels: int, frames: int) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise EdgeemoError(f"sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz", path)
    if not 1 <= channels <= MAX_AUDIO_CHANNELS:
        raise EdgeemoError(f"{channels} channels (expected 1 to {MAX_AUDIO_CHANNELS})", path)
    if frames > MAX_AUDIO_FRAMES or frames / rate > MAX_AUDIO_SECONDS:
        raise EdgeemoError(
            f"audio too long: {frames:,} frames ({frames / rate:,.0f} s at {rate} Hz); edgeemo reads at most "
            f"{MAX_AUDIO_SECONDS:.0f} s and {MAX_AUDIO_FRAMES:,} frames",
            path,
        )


def pcm16_to_float(pcm: np.ndarray) -> np.ndarray:
    """int16 PCM to float32 ``pcm / 32768`` (exactly what load_audio gives for 16-bit 16 kHz files)."""
    return np.asarray(pcm, dtype=np.int16).astype(np.float32) / np.float32(PCM16_SCALE)


def float_to_pcm16(samples: np.ndarray) -> np.ndarray:
    """float samples in [-1, 1] to int16 PCM (rounded, saturated)."""
    scaled = np.round(np.asarray(samples, dtype=np.float64) * PCM16_SCALE)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


# ----------------------------------------------------------------------------- features


def _mono(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples)
    if x.ndim != 1:
        raise EdgeemoError(f"expected 1-D mono samples, got shape {x.shape}")
    if x.dtype.kind not in "iuf":
        raise EdgeemoError(f"expected numeric samples, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        raise EdgeemoError("samples contain NaN or infinite values")
    return x


def frame_db(samples: np.ndarray, feats: AudioFeatures = DEFAULT_VOICE) -> np.ndarray:
    """RMS level (mean removed) of each VAD frame (``winlen`` every ``winstep``) in dBFS; -inf for silence."""
    x = _mono(samples).astype(np.float64)
    length, step = feats.frame_length, feats.frame_step
    if len(x) < length:
        x = np.pad(x, (0, length - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(x, length)[::step]
    rms = np.std(frames, axis=1)  # AC level: a DC offset (SAVEE has ~0.05) is not speech
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(rms)


def trim_silence(samples: np.ndarray, feats: AudioFeatures = DEFAULT_VOICE) -> np.ndarray | None:
    """Keep the span from the first to the last voiced frame (plus ``vad_pad_s`` each side).

    Returns ``None`` ("no speech") when fewer than ``vad_min_speech_s`` seconds of frames
    are voiced, e.g. for silence or a quiet room, so silence is never classified.
    """
    x = _mono(samples)
    if len(x) == 0:
        return None
    db = frame_db(x, feats)
    peak = float(np.max(db))
    if not math.isfinite(peak):
        return None
    voiced = (db >= peak + feats.vad_rel_db) & (db >= feats.vad_abs_db)
    if int(np.sum(voiced)) * feats.frame_step < feats.vad_min_speech_s * feats.sample_rate:
        return None
    idx = np.flatnonzero(voiced)
    pad = int(round(feats.vad_pad_s * feats.sample_rate))
    start = max(0, int(idx[0]) * feats.frame_step - pad)
    stop = min(len(x), int(idx[-1]) * feats.frame_step + feats.frame_length + pad)
    return x[start:stop]


def fix_length(samples: np.ndarray, feats: AudioFeatures = DEFAULT_VOICE) -> np.ndarray:
    """Exactly ``window_s`` seconds: centre crop a longer clip, centre zero-pad a shorter one.

    Padding is split evenly (the odd sample goes at the end), so a short utterance sits in
    the middle of the window whichever side it was recorded on.
    """
    x = _mono(samples)
    n = feats.window_samples
    if len(x) >= n:
        start = (len(x) - n) // 2
        return x[start : start + n]
    left = (n - len(x)) // 2
    return np.pad(x, (left, n - len(x) - left))


def mfcc_features(samples: np.ndarray, feats: AudioFeatures = DEFAULT_VOICE) -> np.ndarray:
    """MFCCs (frames, n_features) float32; with ``deltas``: [mfcc, delta, delta-delta] (N=2)."""
    x = _mono(samples)
    if len(x) == 0:
        raise EdgeemoError("no samples to compute features from")
    coeffs = mfcc(
        x.astype(np.float64),
        samplerate=feats.sample_rate,
        winlen=feats.winlen,
        winstep=feats.winstep,
        numcep=feats.n_mfcc,
        nfilt=feats.n_mels,
        nfft=feats.nfft,
        preemph=feats.preemph,
        ceplifter=feats.ceplifter,
        appendEnergy=feats.append_energy,
        winfunc=np.hamming,
    )
    if feats.deltas:
        d1 = delta(coeffs, 2)
        coeffs = np.concatenate([coeffs, d1, delta(d1, 2)], axis=1)
    return coeffs.astype(np.float32)


def speech_span(n_speech: int, feats: AudioFeatures = DEFAULT_VOICE) -> tuple[int, int]:
    """Frames [first, last) of a window that hold the ``n_speech`` trimmed samples (the rest is centre padding)."""
    n = feats.window_samples
    left = max(0, (n - n_speech) // 2)
    first = left // feats.frame_step
    last = min(feats.n_frames, (left + min(n_speech, n)) // feats.frame_step + 1)
    return first, max(last, first + 1)


def clip_features_span(
    samples: np.ndarray, feats: AudioFeatures = DEFAULT_VOICE
) -> tuple[np.ndarray, tuple[int, int]] | None:
    """``clip_features`` plus the [first, last) frames that hold speech; None for no speech."""
    speech = trim_silence(samples, feats)
    if speech is None:
        return None
    if feats.remove_dc:
        speech = speech - np.float32(np.mean(speech, dtype=np.float64))
    window = fix_length(speech, feats)
    coeffs = mfcc_features(window, feats)
    first, last = speech_span(len(speech), feats)
    if feats.cmn:
        # the mean of the speech frames is the clip's channel/speaker offset
        coeffs = coeffs - coeffs[first:last].mean(axis=0, keepdims=True)
    if feats.prosody:  # centred on the MFCC frames' samples
        extra = prosody_frames(window, len(coeffs), feats.sample_rate, feats.frame_step, feats.frame_length // 2,
                               feats.pitch_fmin_hz, feats.pitch_fmax_hz, (first, last),
                               pitch_rate_hz=feats.pitch_rate_hz, pitch_hop=feats.pitch_hop_frames)
        coeffs = np.concatenate([coeffs, extra], axis=1)
    return coeffs, (first, last)


def clip_features(samples: np.ndarray, feats: AudioFeatures = DEFAULT_VOICE) -> np.ndarray | None:
    """trim_silence -> (remove_dc) -> fix_length -> mfcc_features: (n_frames, n_features) float32.

    Returns None for no speech.
    """
    out = clip_features_span(samples, feats)
    return None if out is None else out[0]


def file_features(path: str | Path, feats: AudioFeatures = DEFAULT_VOICE) -> np.ndarray | None:
    """clip_features of an audio file (None for no speech)."""
    samples, _ = load_audio(path, feats.sample_rate)
    return clip_features(samples, feats)


# ----------------------------------------------------------------------------- statistics


def standardize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x - mean) / std per coefficient (last axis), float32; a std below ``RunningStats.STD_FLOOR`` counts as 1."""
    std = np.asarray(std, np.float64)
    std = np.where(std < RunningStats.STD_FLOOR, 1.0, std)
    return ((np.asarray(x, dtype=np.float64) - np.asarray(mean, np.float64)) / std).astype(np.float32)


class RunningStats:
    """Per-coefficient mean and (population) std over many clips without holding them.

    ``update`` takes (frames, dims) or (clips, frames, dims) arrays and merges them with
    Chan et al.'s parallel formula; ``apply`` standardises with the result (a std below
    ``STD_FLOOR`` counts as 1). ``to_dict``/``from_dict`` go in the manifest.
    """

    STD_FLOOR = 1e-6

    def __init__(self) -> None:
        self.count = 0
        self.mean: np.ndarray | None = None
        self.m2: np.ndarray | None = None

    def update(self, x: np.ndarray) -> RunningStats:
        x = np.asarray(x, dtype=np.float64)
        x = x.reshape(-1, x.shape[-1]) if x.ndim > 1 else x[None, :]
        if x.shape[0] == 0:
            return self
        n_b, mean_b = x.shape[0], x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        return self._merge(n_b, mean_b, m2_b)

    def merge(self, other: RunningStats) -> RunningStats:
        """Fold another RunningStats (e.g. from a worker) into this one."""
        if other.count == 0:
            return self
        return self._merge(other.count, other.mean, other.m2)

    def _merge(self, n_b: int, mean_b: np.ndarray, m2_b: np.ndarray) -> RunningStats:
        if self.count == 0:
            self.count, self.mean, self.m2 = n_b, mean_b.copy(), m2_b.copy()
            return self
        if mean_b.shape != self.mean.shape:
            raise EdgeemoError(f"statistics have {self.mean.shape[0]} coefficients, got {mean_b.shape[0]}")
        n = self.count + n_b
        d = mean_b - self.mean
        self.mean = self.mean + d * (n_b / n)
        self.m2 = self.m2 + m2_b + d * d * (self.count * n_b / n)
        self.count = n
        return self

    @property
    def var(self) -> np.ndarray:
        self._need_data()
        return self.m2 / self.count

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(self.var)

    def _need_data(self) -> None:
        if self.count == 0:
            raise EdgeemoError("no statistics yet (update with at least one frame first)")

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(x - mean) / std per coefficient (last axis), float32."""
        return standardize(x, self.mean, self.std)

    def to_dict(self) -> dict[str, Any]:
        self._need_data()
        return {"kind": "standardize", "count": self.count, "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunningStats:
        if not isinstance(d, dict) or d.get("kind") != "standardize" or set(d) != {"kind", "count", "mean", "std"}:
            raise EdgeemoError("not a standardize record (expected kind, count, mean, std)")
        numbers = (int, float)
        for name in ("mean", "std"):
            values = d[name]
            if not isinstance(values, list) or not all(isinstance(v, numbers) and not isinstance(v, bool)
                                                       for v in values):
                raise EdgeemoError(f"invalid standardize record ({name} must be a list of numbers)")
        try:
            mean, std = np.asarray(d["mean"], np.float64), np.asarray(d["std"], np.float64)
        except OverflowError:
            raise EdgeemoError("invalid standardize record (a number too large)") from None
        count = d["count"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1 or mean.ndim != 1 \
                or mean.shape != std.shape:
            raise EdgeemoError("invalid standardize record (count must be >= 1, mean and std equal-length lists)")
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std >= 0)):
            raise EdgeemoError("invalid standardize record (non-finite mean or negative std)")
        stats = cls()
        stats.count, stats.mean, stats.m2 = count, mean, std * std * count
        return stats


# ----------------------------------------------------------------------------- streaming


class PcmStream:
    """A microphone ring buffer: 16-bit mono PCM at ``sample_rate`` in, latest window out.

    ``push`` takes chunks of any size (little-endian bytes, an odd trailing byte is carried
    to the next chunk, or int16 arrays); memory is bounded by ``buffer_s`` seconds (at least
    ``window_s``). ``window()`` returns the latest ``window_s`` of audio as float32
    (``pcm / 32768``), ``None`` until that much has arrived; ``features()`` is exactly
    ``clip_features(window())``, so chunk sizes never change results.
    """

    def __init__(self, feats: AudioFeatures = DEFAULT_VOICE, buffer_s: float | None = None) -> None:
        self.feats = feats
        seconds = feats.window_s if buffer_s is None else float(buffer_s)
        if not math.isfinite(seconds) or seconds > MAX_AUDIO_SECONDS:
            raise EdgeemoError(f"buffer_s must be finite and at most {MAX_AUDIO_SECONDS:.0f} s, got {seconds}")
        if seconds < feats.window_s:
            raise EdgeemoError(f"buffer_s ({seconds}) must be at least window_s ({feats.window_s})")
        self._buf = np.zeros(int(round(seconds * feats.sample_rate)), np.int16)
        self._pos = 0  # next write index
        self._filled = 0
        self._carry = b""
        self.total_samples = 0

    @property
    def capacity(self) -> int:
        return len(self._buf)

    def reset(self) -> None:
        self._pos = self._filled = self.total_samples = 0
        self._carry = b""

    def push(self, chunk: bytes | bytearray | memoryview | np.ndarray) -> int:
        """Append PCM; returns the number of whole samples added."""
        if isinstance(chunk, bytes | bytearray | memoryview):
            data = self._carry + bytes(chunk)
            even = len(data) - len(data) % 2
            self._carry = data[even:]
            samples = np.frombuffer(data[:even], dtype="<i2")
        elif isinstance(chunk, np.ndarray):
            if chunk.dtype != np.int16:
                raise EdgeemoError(f"PCM arrays must be int16, got {chunk.dtype} (use float_to_pcm16)")
            if self._carry:
                raise EdgeemoError("an odd byte from a previous bytes chunk is pending; keep to one chunk type")
            samples = chunk.reshape(-1)
        else:
            raise EdgeemoError(f"PCM chunks must be bytes or int16 arrays, got {type(chunk).__name__}")
        self._write(samples)
        return len(samples)

    def _write(self, samples: np.ndarray) -> None:
        n, cap = len(samples), self.capacity
        self.total_samples += n
        if n >= cap:
            self._buf[:] = samples[n - cap :]
            self._pos, self._filled = 0, cap
            return
        first = min(n, cap - self._pos)
        self._buf[self._pos : self._pos + first] = samples[:first]
        self._buf[: n - first] = samples[first:]
        self._pos = (self._pos + n) % cap
        self._filled = min(cap, self._filled + n)

    def latest_pcm(self, n: int) -> np.ndarray | None:
        """The latest ``n`` int16 samples in order (a copy), None if fewer have arrived."""
        if n > self._filled or n > self.capacity:
            return None
        start = (self._pos - n) % self.capacity
        if start + n <= self.capacity:
            return self._buf[start : start + n].copy()
        return np.concatenate([self._buf[start:], self._buf[: self._pos]])

    def window(self) -> np.ndarray | None:
        """The latest ``window_s`` seconds as float32, or None if not enough audio yet."""
        pcm = self.latest_pcm(self.feats.window_samples)
        return None if pcm is None else pcm16_to_float(pcm)

    def features(self) -> np.ndarray | None:
        """clip_features of the latest window; None if not enough audio yet or no speech in it."""
        samples = self.window()
        return None if samples is None else clip_features(samples, self.feats)
