"""Property-based fuzzing of audio loading, MFCCs and the microphone ring buffer.

Any file gives float32 mono 16 kHz samples in [-1, 1] (and finite features) or an EdgeemoError
naming it; absurd rates, channel counts and lengths are refused from the header, before reading.
"""

from __future__ import annotations

import io
import struct
import time

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgeemo.audio import (
    MAX_RESAMPLE_DENOMINATOR,
    AudioFeatures,
    PcmStream,
    clip_features,
    float_to_pcm16,
    load_audio,
    resample_ratio,
)
from edgeemo.errors import EdgeemoError

# The deadline catches a hang, not slowness: a 2 s one failed on a busy 2-core machine.
FUZZ = settings(max_examples=40, deadline=30_000, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.function_scoped_fixture])


def _tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return 0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 2 * t) > 0)


def _encoded(fmt: str, subtype: str, rate: int, channels: int = 1, seconds: float = 0.5) -> bytes:
    x = _tone(seconds, rate)
    buf = io.BytesIO()
    sf.write(buf, np.repeat(x[:, None], channels, 1) if channels > 1 else x, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


SEEDS = [_encoded("WAV", "PCM_16", 16000), _encoded("WAV", "PCM_U8", 8000), _encoded("WAV", "PCM_24", 44100, 2),
         _encoded("WAV", "FLOAT", 22050), _encoded("FLAC", "PCM_16", 48000, 2), _encoded("WAV", "DOUBLE", 16000)]


def wav(rate: int, channels: int = 1, bits: int = 16, data: bytes = b"\0\0" * 800, fmt: int = 1,
        claim: int | None = None) -> bytes:
    block = max(1, channels * bits // 8) & 0xFFFF
    body = struct.pack("<HHIIHH", fmt, channels & 0xFFFF, rate & 0xFFFFFFFF, (rate * block) & 0xFFFFFFFF, block, bits)
    size = len(data) if claim is None else claim
    return (b"RIFF" + struct.pack("<I", (36 + len(data)) & 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
            + body + b"data" + struct.pack("<I", size & 0xFFFFFFFF) + data)


def _check(tmp_path, data: bytes, suffix: str = ".wav") -> None:
    path = tmp_path / f"case{suffix}"
    path.write_bytes(data)
    try:
        samples, rate = load_audio(path)
    except EdgeemoError as exc:
        assert str(path) in str(exc)
        return
    assert rate == 16000 and samples.dtype == np.float32 and samples.ndim == 1
    assert np.all(np.abs(samples) <= 1.0)
    feats = clip_features(samples)
    assert feats is None or (feats.shape == (299, 40) and np.all(np.isfinite(feats)))


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for offset, value in draw(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)), max_size=6)):
        data[offset % len(data)] = value  # the header region, where the interesting fields are
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@FUZZ
@given(data=mutated())
def test_mutated_audio_files_load_or_are_refused_clearly(tmp_path, data):
    _check(tmp_path, data)


@FUZZ
@given(rate=st.integers(0, 2**32 - 1), channels=st.integers(0, 300), bits=st.sampled_from([0, 7, 8, 16, 24, 32, 64]),
       fmt=st.sampled_from([1, 3]))
def test_any_wav_header_fields_load_or_are_refused_clearly(tmp_path, rate, channels, bits, fmt):
    t0 = time.monotonic()
    _check(tmp_path, wav(rate, channels, bits, fmt=fmt))
    assert time.monotonic() - t0 < 2.0


@pytest.mark.parametrize("rate", [1, 999, 2**31 - 1, 999_983, 800_000])
def test_absurd_sample_rates_are_refused(tmp_path, rate):
    path = tmp_path / "rate.wav"
    path.write_bytes(wav(rate))
    with pytest.raises(EdgeemoError, match="sample rate"):
        load_audio(path)


@pytest.mark.parametrize("rate", [4000, 16001, 44099, 767_999])
def test_odd_rates_resample_quickly_with_a_bounded_filter(tmp_path, rate):
    ratio = resample_ratio(rate)
    assert ratio.denominator <= MAX_RESAMPLE_DENOMINATOR and abs(float(ratio) / (16000 / rate) - 1) < 1e-4
    path = tmp_path / "odd.wav"
    sf.write(path, _tone(0.5, rate), rate)
    t0 = time.monotonic()
    samples, _ = load_audio(path)
    assert time.monotonic() - t0 < 2.0 and abs(len(samples) - 8000) <= 2


def test_standard_rates_keep_an_exact_ratio():
    for rate in (8000, 11025, 22050, 32000, 44100, 48000, 88200, 96000, 192000):
        assert resample_ratio(rate) * rate == 16000


def test_a_file_over_the_length_limit_is_refused_from_its_header(tmp_path):
    path = tmp_path / "long.wav"
    path.write_bytes(wav(4000, 1, 8, b"\x80" * (4000 * 601)))  # 601 s
    with pytest.raises(EdgeemoError, match="too long"):
        load_audio(path)


def test_a_data_chunk_claiming_4_gb_reads_what_is_there(tmp_path):
    path = tmp_path / "claim.wav"
    path.write_bytes(wav(16000, data=b"\x10\x00" * 16000, claim=0xFFFFFFF0))
    samples, _ = load_audio(path)
    assert len(samples) == 16000


def test_nan_and_inf_samples_are_refused(tmp_path):
    x = _tone(0.5, 16000).astype("<f4")
    x[10] = np.nan
    path = tmp_path / "nan.wav"
    path.write_bytes(wav(16000, 1, 32, x.tobytes(), fmt=3))
    with pytest.raises(EdgeemoError, match="NaN"):
        load_audio(path)
    with pytest.raises(EdgeemoError, match="NaN"):
        clip_features(x)


@FUZZ
@given(samples=hnp.arrays(st.sampled_from([np.float32, np.float64, np.float16]),
                          hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=20000),
                          elements=st.floats(-2.0, 2.0, width=16) | st.just(0.0)))
def test_clip_features_take_any_samples_or_refuse_them_clearly(samples):
    try:
        feats = clip_features(samples)
    except EdgeemoError:
        return
    assert feats is None or (feats.shape == (299, 40) and np.all(np.isfinite(feats)))


@FUZZ
@given(data=st.binary(min_size=0, max_size=4000), cuts=st.lists(st.integers(0, 4000), max_size=6))
def test_pcm_stream_chunks_never_change_the_window(data, cuts):
    feats = AudioFeatures(window_s=0.1)
    whole, chunked = PcmStream(feats), PcmStream(feats)
    whole.push(data)
    bounds = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for a, b in zip(bounds, bounds[1:], strict=False):
        chunked.push(data[a:b])
    w1, w2 = whole.window(), chunked.window()
    assert (w1 is None and w2 is None) or np.array_equal(w1, w2)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 1e12])
def test_pcm_stream_buffer_is_bounded(bad):
    with pytest.raises(EdgeemoError, match="buffer_s"):
        PcmStream(buffer_s=bad)


@pytest.mark.parametrize("bad", [{"window_s": 1e9}, {"nfft": 2**30}, {"n_mels": 100_000, "n_mfcc": 40},
                                 {"winlen": 50.0, "nfft": 2**20}, {"n_mfcc": "40"}, {"deltas": 1}])
def test_voice_features_from_a_bad_manifest_are_refused(bad):
    with pytest.raises(EdgeemoError):
        AudioFeatures.from_dict({"kind": "voice", **bad})


def test_float_to_pcm16_saturates_out_of_range_values():
    assert float_to_pcm16(np.array([1e30, -1e30, 2.0, -2.0])).tolist() == [32767, -32768, 32767, -32768]
