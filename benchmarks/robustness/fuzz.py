"""Mutation fuzzing of every place outside data enters the edgeemo core.

Targets (each case is generated from (target, seed, index), so any case can be replayed):

- ``image``: encoded image bytes (PNG 8/16-bit, gray/BGR/BGRA, JPEG, BMP, WebP, TIFF, PGM, and
  headers claiming huge sizes), mutated -> ``read_image`` -> ``preprocess_face``
- ``face_array``: decoded arrays of any dtype, shape, channel count, NaN/inf -> ``preprocess_face``
- ``audio``: audio files (WAV u8/16/24/32/float/double, FLAC, AIFF, OGG; 1-6 channels; 8-96 kHz;
  absurd header rates/channels/lengths, NaN/inf samples, a file over the length limit), mutated
  -> ``load_audio`` -> ``clip_features`` and the shipped voice model's front end (``preprocess_clip``
  with its manifest's preprocessing: prosody, functionals, speaker statistics)
- ``audio_array``: sample arrays (any dtype/shape, NaN/inf, huge values) -> ``clip_features``, the
  shipped voice front end and ``PcmStream`` chunks
- ``manifest``: the shipped manifests mutated (keys removed/added, values of the wrong type,
  nested preprocessing values, bad JSON, non-UTF-8, deep nesting, another model's manifest)
  beside a copy of the model -> ``open_emotion_model`` -> one prediction
- ``model``: the shipped model files mutated (truncated, bit-flipped, bytes overwritten,
  spliced, random), with no manifest, or the wrong task -> ``open_emotion_model`` (which
  probes an unvouched file in a child process) -> one prediction

Each target's cases run in a worker process under a watchdog: a case that kills the worker
(a signal) is a crash, one that takes longer than the case timeout is a hang; the worker is
restarted after the case. A case is *accepted* (no error), *rejected* (an ``EdgeemoError``;
for file targets its message must name the file) or *unclear* (any other exception, or an
``EdgeemoError`` that does not name the file). Target: 0 crashes, 0 hangs, 0 unclear.

    .venv/bin/python benchmarks/robustness/fuzz.py            # about 10,000 cases
    .venv/bin/python benchmarks/robustness/fuzz.py --quick    # a few hundred, for a smoke check
    .venv/bin/python benchmarks/robustness/fuzz.py --repro audio 0 123   # rerun one case in this process
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import select
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import soundfile as sf

from edgeemo.errors import EdgeemoError
from edgeemo.shipped import shipped_sha256

RESULTS = Path(__file__).resolve().parents[1] / "results" / "robustness"
MODELS = Path(__file__).resolve().parents[2] / "edgeemo" / "models"
FULL = {"image": 3000, "face_array": 1500, "audio": 2500, "audio_array": 1500, "manifest": 1600, "model": 400}
QUICK = {"image": 120, "face_array": 80, "audio": 100, "audio_array": 80, "manifest": 80, "model": 20}
CASE_TIMEOUT_S = {"model": 120.0}  # a model case may spend the probe's 60 s; everything else 30 s
DEFAULT_CASE_TIMEOUT_S = 30.0
WORKER_MEMORY_BYTES = 8 * 1024**3  # a case that tries to allocate more fails with MemoryError (unclear) instead


# ----------------------------------------------------------------------------- seeds


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, depth: int = 8, color: int = 0) -> bytes:
    """A small PNG whose header claims width x height; its data is a zlib bomb of zeros (1 MB)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * (1 << 20), 9))
            + _png_chunk(b"IEND", b""))


def image_seeds() -> list[bytes]:
    """Encoded images of every kind read_image meets, plus headers claiming huge sizes."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:48]
    gray = ((yy * 3 + xx * 2) % 256).astype(np.uint8)
    bgr = np.dstack([gray, gray[::-1], rng.integers(0, 256, gray.shape, np.uint8)])
    bgra = np.dstack([bgr, np.full(gray.shape, 200, np.uint8)])
    seeds = []
    for ext, img, params in [
        (".png", gray, []), (".png", bgr, []), (".png", bgra, []), (".png", gray.astype(np.uint16) * 257, []),
        (".png", (bgr.astype(np.uint16) * 257), []), (".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, 80]),
        (".jpg", bgr, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]), (".bmp", bgr, []), (".bmp", gray, []),
        (".webp", bgr, []), (".webp", bgr, [cv2.IMWRITE_WEBP_QUALITY, 101]), (".tiff", bgr, []),
        (".tiff", gray.astype(np.uint16), []), (".pgm", gray, []), (".ppm", bgr, []),
        (".tiff", (gray / 255.0).astype(np.float32), []), (".png", np.zeros((1, 1), np.uint8), []),
    ]:
        ok, buf = cv2.imencode(ext, img, params)
        if ok:
            seeds.append(buf.tobytes())
    bmp = b"BM" + b"\0" * 12 + struct.pack("<IiiHH", 40, 40000, -40000, 1, 24) + b"\0" * 64
    seeds += [png_claiming(100_000, 100_000), png_claiming(30_000, 30_000, 16, 6), png_claiming(0, 0),
              b"P5\n60000 60000\n255\n" + b"\0" * 100, bmp]
    jpg = bytearray(seeds[5])  # first SOF0 frame: claim 65535 x 65535
    sof = jpg.find(b"\xff\xc0")
    if sof > 0:
        jpg[sof + 5 : sof + 9] = b"\xff\xff\xff\xff"
        seeds.append(bytes(jpg))
    return seeds


def speechlike(seconds: float, rate: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    f0 = 120 + 40 * np.sin(2 * np.pi * 3 * t)
    x = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / rate) / k for k in range(1, 6))
    env = (np.sin(2 * np.pi * 2 * t) > -0.3).astype(float)
    return (0.3 * x * env / 2 + 0.01 * rng.standard_normal(len(t))).astype(np.float64)


def wav_header(rate: int, channels: int, bits: int, data_len: int, fmt: int = 1) -> bytes:
    block = max(1, channels * bits // 8) & 0xFFFF
    body = struct.pack("<HHIIHH", fmt & 0xFFFF, channels & 0xFFFF, rate & 0xFFFFFFFF,
                       (rate * block) & 0xFFFFFFFF, block, bits & 0xFFFF)
    return (b"RIFF" + struct.pack("<I", (36 + data_len) & 0xFFFFFFFF) + b"WAVE" + b"fmt " + struct.pack("<I", 16)
            + body + b"data" + struct.pack("<I", data_len & 0xFFFFFFFF))


def audio_seeds() -> list[bytes]:
    """Audio files of every kind load_audio meets, plus absurd headers and non-finite samples."""
    rng = np.random.default_rng(1)
    seeds = []
    for fmt, subtype, rate, channels, seconds in [
        ("WAV", "PCM_16", 16000, 1, 1.5), ("WAV", "PCM_U8", 8000, 1, 1.0), ("WAV", "PCM_24", 44100, 2, 0.8),
        ("WAV", "PCM_32", 48000, 1, 0.6), ("WAV", "FLOAT", 22050, 2, 1.0), ("WAV", "DOUBLE", 11025, 1, 1.0),
        ("FLAC", "PCM_16", 16000, 1, 1.5), ("FLAC", "PCM_24", 96000, 6, 0.3), ("AIFF", "PCM_16", 32000, 1, 1.0),
        ("OGG", "VORBIS", 16000, 1, 1.0), ("WAV", "PCM_16", 16000, 1, 0.0005),
    ]:
        x = speechlike(seconds, rate, rng)
        x = np.repeat(x[:, None], channels, axis=1) if channels > 1 else x
        buf = io.BytesIO()
        sf.write(buf, x, rate, format=fmt, subtype=subtype)
        seeds.append(buf.getvalue())
    pcm = (speechlike(1.0, 16000, rng) * 32767).astype("<i2").tobytes()
    for rate, channels, bits in [(1, 1, 16), (2**31 - 1, 1, 16), (999_983, 1, 16), (16001, 1, 16), (16000, 200, 16),
                                 (16000, 0, 16), (16000, 1, 0), (16000, 1, 7), (0, 1, 16)]:
        seeds.append(wav_header(rate, channels, bits, len(pcm)) + pcm)
    seeds.append(wav_header(16000, 1, 16, 0xFFFFFFF0) + pcm)  # data chunk claims 4 GB
    seeds.append(wav_header(16000, 1, 16, 0))  # 0 frames
    floats = speechlike(1.0, 16000, rng).astype("<f4")
    floats[100:110] = np.nan
    floats[5000] = np.inf
    seeds.append(wav_header(16000, 1, 32, floats.nbytes, fmt=3) + floats.tobytes())
    seeds.append(wav_header(4000, 1, 8, 4000 * 601) + b"\x80" * (4000 * 601))  # 601 s: over the length limit
    return seeds


def model_seeds() -> dict[str, bytes]:
    names = ["face/face-int8.tflite", "face/face-float.tflite", "voice/voice-int8.tflite", "face/face-int8.onnx",
             "voice/voice-int8.onnx"]
    return {n: (MODELS / n).read_bytes() for n in names if (MODELS / n).is_file()}


def manifest_seeds() -> dict[str, dict]:
    names = ["face/face-int8.tflite", "voice/voice-int8.tflite", "face/face-int8.onnx"]
    out = {}
    for n in names:
        path = MODELS / (n + ".json")
        if path.is_file() and (MODELS / n).is_file():
            out[n] = json.loads(path.read_text())
    return out


# ----------------------------------------------------------------------------- mutation


def mutate_bytes(data: bytes, rng: np.random.Generator, others: list[bytes] | None = None) -> bytes:
    """One to four byte-level mutations: bit flips, byte runs, truncation, insertion, deletion, splicing."""
    b = bytearray(data)
    for _ in range(int(rng.choice([1, 1, 1, 2, 2, 3, 4]))):
        op = int(rng.integers(0, 10))
        n = len(b)
        if op == 0 and n:  # flip bits
            for _ in range(int(rng.integers(1, 33))):
                i = int(rng.integers(0, n))
                b[i] ^= 1 << int(rng.integers(0, 8))
        elif op == 1 and n:  # flip bits in the header
            for _ in range(int(rng.integers(1, 9))):
                i = int(rng.integers(0, min(n, 64)))
                b[i] ^= 1 << int(rng.integers(0, 8))
        elif op == 2 and n:  # truncate
            del b[int(rng.integers(0, n)) :]
        elif op == 3 and n:  # overwrite a run with random or extreme bytes
            i = int(rng.integers(0, n))
            k = int(rng.integers(1, 17))
            fill = rng.choice([0x00, 0xFF, 0x7F, 0x80, -1])
            run = rng.integers(0, 256, k, np.uint8).tobytes() if fill < 0 else bytes([int(fill)]) * k
            b[i : i + k] = run
        elif op == 4:  # insert random bytes
            i = int(rng.integers(0, n + 1))
            b[i:i] = rng.integers(0, 256, int(rng.integers(1, 64)), np.uint8).tobytes()
        elif op == 5 and n > 1:  # delete a range
            i = int(rng.integers(0, n))
            del b[i : i + int(rng.integers(1, 256))]
        elif op == 6 and n > 8:  # duplicate a range
            i = int(rng.integers(0, n - 1))
            j = min(n, i + int(rng.integers(1, 512)))
            b[j:j] = b[i:j]
        elif op == 7 and others:  # splice with another seed
            other = others[int(rng.integers(0, len(others)))]
            cut = int(rng.integers(0, n + 1))
            b = b[:cut] + other[int(rng.integers(0, len(other) + 1)) :]
        elif op == 8 and n >= 4:  # an interesting 32-bit value somewhere in the first 256 bytes
            i = int(rng.integers(0, min(n - 3, 256)))
            value = int(rng.choice([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFF, 0x10000, 65535 * 65535 % 2**32]))
            b[i : i + 4] = struct.pack("<I" if rng.random() < 0.5 else ">I", value)
        elif op == 9 and n:  # a random byte anywhere
            b[int(rng.integers(0, n))] = int(rng.integers(0, 256))
    return bytes(b)


JSON_VALUES: list[Any] = [None, True, False, 0, -1, 1, 2**63, -(2**63), 10**400, 0.5, -1e308, float("nan"),
                          float("inf"), "", "x", "face", "voice", "\udcff", [], [1], ["happy"], {}, {"kind": "face"},
                          [[[]]], "a" * 1000]


def random_json(rng: np.random.Generator) -> Any:
    return JSON_VALUES[int(rng.integers(0, len(JSON_VALUES)))]


def mutate_structure(doc: Any, rng: np.random.Generator) -> Any:
    """Change one key somewhere in a JSON document: delete it, retype it, tweak a number, add an unknown key."""
    doc = json.loads(json.dumps(doc))
    containers = []

    def walk(node: Any, depth: int) -> None:
        if isinstance(node, dict | list) and depth < 6:
            containers.append(node)
            for v in node.values() if isinstance(node, dict) else node:
                walk(v, depth + 1)

    walk(doc, 0)
    node = containers[int(rng.integers(0, len(containers)))]
    keys = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
    op = int(rng.integers(0, 5))
    if not keys or op == 0:
        if isinstance(node, dict):
            node[f"unknown_{int(rng.integers(0, 100))}"] = random_json(rng)
        else:
            node.append(random_json(rng))
        return doc
    key = keys[int(rng.integers(0, len(keys)))]
    if op == 1:
        del node[key]
    elif op == 2:
        node[key] = random_json(rng)
    elif op == 3 and isinstance(node[key], int | float) and not isinstance(node[key], bool):
        node[key] = node[key] * float(rng.choice([0, -1, 2, 1e6, 1e-6, 1.5])) + float(rng.choice([0, 1]))
    else:
        node[key] = [node[key]] if rng.random() < 0.5 else {"nested": node[key]}
    return doc


# ----------------------------------------------------------------------------- targets


class Fuzzer:
    """Generates and runs cases; all seeds are built once per worker process."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._images: list[bytes] | None = None
        self._audio: list[bytes] | None = None
        self._models: dict[str, bytes] | None = None
        self._voice: Any = None
        self._manifests: dict[str, dict] | None = None

    # generation ---------------------------------------------------------------------------------
    def case(self, target: str, seed: int, index: int) -> Any:
        rng = np.random.default_rng([seed, index, sum(target.encode())])
        return getattr(self, f"_make_{target}")(rng)

    def _make_image(self, rng: np.random.Generator) -> tuple[bytes, str]:
        seeds = self._images = self._images or image_seeds()
        data = seeds[int(rng.integers(0, len(seeds)))]
        r = rng.random()
        if r < 0.04:
            return data, ".png"  # the seed itself
        if r < 0.08:
            return rng.integers(0, 256, int(rng.integers(0, 4096)), np.uint8).tobytes(), ".jpg"  # not an image
        return mutate_bytes(data, rng, seeds), str(rng.choice([".png", ".jpg", ".bmp", ".webp", ".tiff", ".pgm"]))

    def _make_face_array(self, rng: np.random.Generator) -> np.ndarray:
        dtype = rng.choice(["uint8", "uint16", "float32", "float64", "float16", "int8", "int16", "int32", "bool",
                            "complex64", "uint64"])
        ndim = int(rng.choice([0, 1, 2, 2, 3, 3, 3, 4]))
        shape = [int(rng.choice([0, 1, 2, 3, 47, 48, 49, 200, 3000])) for _ in range(ndim)]
        if ndim == 3 and rng.random() < 0.7:
            shape[2] = int(rng.choice([1, 2, 3, 4, 5]))
        while int(np.prod(shape, dtype=np.int64)) > 4_000_000:  # at most 4 M elements (32 MB as float64)
            shape[int(np.argmax(shape))] //= 2
        if dtype.startswith("float"):
            a = rng.standard_normal(shape).astype(dtype) * float(rng.choice([1, 1e-3, 1e6]))
            if rng.random() < 0.3 and a.size:
                a.flat[int(rng.integers(0, a.size))] = rng.choice([np.nan, np.inf, -np.inf])
        elif dtype == "bool" or dtype == "complex64":
            a = (rng.random(shape) > 0.5).astype(dtype)
        else:
            info = np.iinfo(dtype)
            a = rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
        if a.ndim >= 2 and rng.random() < 0.2:
            a = a[::2]  # non-contiguous
        return a

    def _make_audio(self, rng: np.random.Generator) -> tuple[bytes, str]:
        seeds = self._audio = self._audio or audio_seeds()
        data = seeds[int(rng.integers(0, len(seeds)))]
        r = rng.random()
        if r < 0.04:
            return data, ".wav"
        if r < 0.06:
            return rng.integers(0, 256, int(rng.integers(0, 2048)), np.uint8).tobytes(), ".wav"
        if r < 0.3 and data[:4] == b"RIFF" and len(data) > 44:  # rewrite one WAV header field
            b = bytearray(data)
            field = [(22, 2), (24, 4), (28, 4), (32, 2), (34, 2), (40, 4), (4, 4), (20, 2)][int(rng.integers(0, 8))]
            value = int(rng.choice([0, 1, 2, 3, 7, 8, 24, 255, 65535, 16000, 44100, 2**31 - 1, 2**32 - 1,
                                    int(rng.integers(0, 2**32))]))
            b[field[0] : field[0] + field[1]] = (value % (1 << (8 * field[1]))).to_bytes(field[1], "little")
            return bytes(b), ".wav"
        return mutate_bytes(data, rng, seeds), str(rng.choice([".wav", ".flac", ".aiff", ".ogg"]))

    def _make_audio_array(self, rng: np.random.Generator) -> tuple[np.ndarray, list[bytes]]:
        n = int(rng.choice([0, 1, 399, 400, 401, 16000, 48000, 100_000]))
        dtype = rng.choice(["float32", "float64", "int16", "int32", "float16", "uint8", "complex64", "bool"])
        base = speechlike(n / 16000, 16000, rng) * float(rng.choice([1, 1e-6, 0, 1e4, 1e30]))
        if dtype in ("int16", "int32", "uint8"):
            a = np.clip(base * 32767, np.iinfo(dtype).min, np.iinfo(dtype).max).astype(dtype)
        else:
            a = base.astype(dtype)
        if dtype.startswith("float") and a.size and rng.random() < 0.3:
            a[int(rng.integers(0, a.size))] = rng.choice([np.nan, np.inf, -np.inf])
        if rng.random() < 0.1:
            a = a.reshape(1, -1) if rng.random() < 0.5 else np.stack([a, a], 1)
        pcm = (np.clip(base, -1, 1) * 32767).astype("<i2").tobytes()
        cuts = np.sort(rng.integers(0, len(pcm) + 1, int(rng.integers(0, 8))))
        chunks = [pcm[i:j] for i, j in zip([0, *cuts], [*cuts, len(pcm)], strict=True)]
        return a, chunks

    def _make_manifest(self, rng: np.random.Generator) -> tuple[str, bytes, str | None]:
        """(model name, manifest bytes, model name whose file the manifest sits beside or None = same)."""
        docs = self._manifests = self._manifests or manifest_seeds()
        names = sorted(docs)
        name = names[int(rng.integers(0, len(names)))]
        doc = docs[name]
        r = rng.random()
        beside = None
        if r < 0.05:
            beside = names[int(rng.integers(0, len(names)))]  # someone else's manifest (or its own)
            return name, json.dumps(doc).encode(), beside
        if r < 0.75:
            for _ in range(int(rng.integers(1, 4))):
                doc = mutate_structure(doc, rng)
            text = json.dumps(doc, allow_nan=True)
            try:
                data = text.encode()
            except UnicodeEncodeError:
                data = text.encode("utf-8", "surrogatepass")
            return name, data, beside
        if r < 0.8:
            depth = int(rng.choice([10, 1000, 100_000]))
            return name, b"[" * depth + b"]" * depth, beside
        if r < 0.85:
            return name, json.dumps(doc).encode("utf-16"), beside  # not UTF-8
        return name, mutate_bytes(json.dumps(doc, indent=1).encode(), rng), beside

    def _make_model(self, rng: np.random.Generator) -> tuple[str, bytes, str]:
        """(seed model name, model bytes, how it is opened: 'bare' | 'voice' | 'manifest-of-other')."""
        models = self._models = self._models or model_seeds()
        names = sorted(models)
        name = names[int(rng.integers(0, len(names)))]
        data = models[name]
        r = rng.random()
        if r < 0.05:
            return name, data, "voice" if "face" in name else "face"  # a valid model of the wrong task
        if r < 0.1:
            return name, data, "manifest-of-other"  # a valid model with another model's manifest
        if r < 0.14:
            return name, rng.integers(0, 256, int(rng.integers(0, 100_000)), np.uint8).tobytes(), "bare"
        if r < 0.3:
            return name, data[: int(rng.integers(0, len(data)))], "bare"  # truncated
        others = [models[n] for n in names]
        return name, mutate_bytes(data, rng, others), "bare"

    # running ------------------------------------------------------------------------------------
    def run(self, target: str, case: Any) -> str:
        """Run one case; returns a short note when accepted, raises when rejected."""
        return getattr(self, f"_run_{target}")(case)

    def _file(self, name: str, data: bytes) -> Path:
        path = self.workdir / name
        path.write_bytes(data)
        return path

    def _run_image(self, case: tuple[bytes, str]) -> str:
        from edgeemo.face import preprocess_face
        from edgeemo.face_datasets import read_image

        data, ext = case
        x = preprocess_face(read_image(self._file("case" + ext, data)))
        assert x.shape == (48, 48, 1) and np.all(np.isfinite(x))
        return "decoded"

    def _run_face_array(self, case: np.ndarray) -> str:
        from edgeemo.face import FacePreprocessing, preprocess_face

        x = preprocess_face(case, FacePreprocessing(size=int(case.size % 97) + 1))
        assert np.all(np.isfinite(x))
        return "preprocessed"

    def _shipped_voice_input(self, samples: np.ndarray) -> np.ndarray | None:
        """The shipped voice model's input for ``samples``: THE front end of its manifest (MFCCs,
        prosody, functionals, standardisation), as the device computes it."""
        from edgeemo.manifest import manifest_path, read_manifest
        from edgeemo.shipped import shipped_path
        from edgeemo.voice import VoicePreprocessing, preprocess_clip

        if self._voice is None:
            manifest = read_manifest(manifest_path(shipped_path("voice")))
            self._voice = VoicePreprocessing.from_dict(manifest.preprocessing)
        x = preprocess_clip(samples, self._voice)
        assert x is None or (x.shape == tuple(self._voice.input_shape) and np.all(np.isfinite(x)))
        return x

    def _run_audio(self, case: tuple[bytes, str]) -> str:
        from edgeemo.audio import clip_features, load_audio

        data, ext = case
        samples, _ = load_audio(self._file("case" + ext, data))
        assert samples.dtype == np.float32 and np.all(np.abs(samples) <= 1.0)
        feats = clip_features(samples)
        assert feats is None or (feats.shape == (299, 40) and np.all(np.isfinite(feats)))
        x = self._shipped_voice_input(samples)
        assert (x is None) == (feats is None)  # the same VAD decides "no speech"
        return "speech" if feats is not None else "no speech"

    def _run_audio_array(self, case: tuple[np.ndarray, list[bytes]]) -> str:
        from edgeemo.audio import PcmStream, clip_features

        samples, chunks = case
        stream = PcmStream()
        for chunk in chunks:
            stream.push(chunk)
        stream.features()
        feats = clip_features(samples)
        assert feats is None or np.all(np.isfinite(feats))
        self._shipped_voice_input(samples)
        return "speech" if feats is not None else "no speech"

    def _run_manifest(self, case: tuple[str, bytes, str | None]) -> str:
        from edgeemo.predict import open_emotion_model

        models = self._models = self._models or model_seeds()
        name, manifest, beside = case
        model = self.workdir / Path(beside or name).name
        if not model.exists():
            model.write_bytes(models[beside or name])
        (model.parent / (model.name + ".json")).write_bytes(manifest)
        m = open_emotion_model(model)  # a manifest that passes (sha256 included) vouches for the file: no probe
        x = np.zeros((1, *m.input_shape), np.float32)
        assert m.predict(x).shape == (1, len(m.labels))
        return "opened"

    def _run_model(self, case: tuple[str, bytes, str]) -> str:
        from edgeemo.predict import open_emotion_model

        name, data, how = case
        path = self._file("case" + Path(name).suffix, data)
        manifest = path.with_name(path.name + ".json")
        manifest.unlink(missing_ok=True)
        task = None
        if how in ("face", "voice"):
            task = how
        elif how == "manifest-of-other":
            docs = self._manifests = self._manifests or manifest_seeds()
            other = sorted(docs)[0] if sorted(docs)[0] != name else sorted(docs)[-1]
            manifest.write_text(json.dumps(docs[other]))
        m = open_emotion_model(path, task=task)
        x = np.random.default_rng(0).standard_normal((1, *m.input_shape)).astype(np.float32)
        assert m.predict(x).shape == (1, len(m.labels))
        return "opened"


FILE_TARGETS = {"image", "audio", "manifest", "model"}


def classify(target: str, exc: BaseException, workdir: Path) -> tuple[str, str]:
    """('rejected' | 'unclear', message) of an exception a case raised."""
    if isinstance(exc, EdgeemoError):
        message = str(exc)
        if target in FILE_TARGETS and str(workdir) not in message:
            return "unclear", f"EdgeemoError without the file name: {message[:300]}"
        return "rejected", message[:300]
    tb = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
    return "unclear", f"{type(exc).__name__}{where}: {str(exc)[:300]}"


# ----------------------------------------------------------------------------- worker + watchdog


def worker(target: str, seed: int, start: int, stop: int) -> None:
    """Run cases start..stop-1, announcing each before it runs (so a crash is attributed to it)."""
    resource.setrlimit(resource.RLIMIT_AS, (WORKER_MEMORY_BYTES, WORKER_MEMORY_BYTES))
    out = sys.stdout
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as tmp:
        fuzzer = Fuzzer(Path(tmp))
        for i in range(start, stop):
            out.write(json.dumps({"start": i}) + "\n")
            out.flush()
            try:
                case = fuzzer.case(target, seed, i)
            except Exception as exc:  # a bug of this script, not of edgeemo: counted apart
                out.write(json.dumps({"done": i, "outcome": "generator_error", "message": repr(exc)[:300],
                                      "ms": 0.0}) + "\n")
                continue
            t0 = time.perf_counter()
            try:
                note = fuzzer.run(target, case)
                outcome, message = "accepted", note
            except Exception as exc:  # classified, not swallowed: anything but a clear EdgeemoError is a failure
                outcome, message = classify(target, exc, Path(tmp))
            ms = (time.perf_counter() - t0) * 1e3
            out.write(json.dumps({"done": i, "outcome": outcome, "message": message, "ms": round(ms, 2)}) + "\n")
            out.flush()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out.write(json.dumps({"peak_rss_mb": round(peak, 1)}) + "\n")


def run_target(target: str, seed: int, n: int, log: Any) -> dict[str, Any]:
    """Run n cases of one target in watchdogged worker processes; restart after a crash or hang."""
    timeout = CASE_TIMEOUT_S.get(target, DEFAULT_CASE_TIMEOUT_S)
    counts: Counter = Counter()
    failures: list[dict[str, Any]] = []
    messages: Counter = Counter()
    times: list[float] = []
    peak = 0.0
    next_case = 0
    t0 = time.monotonic()
    while next_case < n:
        cmd = [sys.executable, __file__, "--worker", target, str(seed), str(next_case), str(n)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                start_new_session=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        current: int | None = None
        deadline = time.monotonic() + timeout + 30.0  # start-up allowance for the first case
        hung = False
        assert proc.stdout is not None
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                hung = True
                os.killpg(proc.pid, 9)
                break
            line = proc.stdout.readline()
            if not line:
                break
            msg = json.loads(line)
            if "start" in msg:
                current = msg["start"]
                deadline = time.monotonic() + timeout
            elif "done" in msg:
                counts[msg["outcome"]] += 1
                times.append(msg["ms"])
                if msg["outcome"] == "rejected":
                    messages[_shape(msg["message"])] += 1
                    if "runtime crashed" in msg["message"]:
                        counts["probe_caught_crash"] += 1
                    if "did not finish within" in msg["message"]:
                        counts["probe_caught_hang"] += 1
                elif msg["outcome"] == "unclear":
                    failures.append({"case": msg["done"], "kind": "unclear", "message": msg["message"]})
                next_case = msg["done"] + 1
                current = None
            elif "peak_rss_mb" in msg:
                peak = max(peak, msg["peak_rss_mb"])
        proc.wait()
        if current is not None:  # the worker died or hung inside this case
            kind = "hang" if hung else "crash"
            detail = f"no result after {timeout:g} s" if hung else f"worker exit {proc.returncode}"
            counts[kind] += 1
            failures.append({"case": current, "kind": kind, "message": detail})
            next_case = current + 1
        elif proc.returncode != 0 and next_case < n:
            counts["crash"] += 1
            failures.append({"case": next_case, "kind": "crash",
                             "message": f"worker exit {proc.returncode} between cases"})
            next_case += 1
        print(f"  {target}: {next_case}/{n} ({dict(counts)})", file=log, flush=True)
    wall = time.monotonic() - t0
    return {
        "cases": n,
        "accepted": counts["accepted"],
        "rejected_clear": counts["rejected"],
        "crashes": counts["crash"],
        "hangs": counts["hang"],
        "unclear": counts["unclear"],
        "generator_errors": counts["generator_error"],
        "runtime_crashes_caught_by_probe": counts["probe_caught_crash"],
        "runtime_hangs_caught_by_probe": counts["probe_caught_hang"],
        "case_ms_p50": round(float(np.median(times)), 2) if times else None,
        "case_ms_max": round(float(np.max(times)), 1) if times else None,
        "worker_peak_rss_mb": peak,
        "wall_s": round(wall, 1),
        "top_rejections": messages.most_common(8),
        "failures": failures[:20],
        "failures_total": len(failures),
    }


def _shape(message: str) -> str:
    """A rejection message with the file and numbers taken out, to count kinds of rejections."""
    import re

    text = re.sub(r"/\S*fuzz-[^ ]*?/\S+?: ", "", message)
    text = re.sub(r"\(.*", "(...)", text)
    return re.sub(r"\d[\d,.]*", "N", text)[:120]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few hundred cases (smoke check)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--targets", default=",".join(FULL), help="comma-separated subset of " + ", ".join(FULL))
    ap.add_argument("--out", type=Path, default=RESULTS / "fuzz", help="writes OUT.md and OUT.json")
    ap.add_argument("--worker", nargs=4, metavar=("TARGET", "SEED", "START", "STOP"), help=argparse.SUPPRESS)
    ap.add_argument("--repro", nargs=3, metavar=("TARGET", "SEED", "CASE"), help="run one case here, with traceback")
    args = ap.parse_args()
    if args.worker:
        target, seed, start, stop = args.worker
        worker(target, int(seed), int(start), int(stop))
        return
    if args.repro:
        target, seed, index = args.repro
        with tempfile.TemporaryDirectory() as tmp:
            fuzzer = Fuzzer(Path(tmp))
            print(fuzzer.run(target, fuzzer.case(target, int(seed), int(index))))
        return
    plan = QUICK if args.quick else FULL
    targets = [t for t in args.targets.split(",") if t]
    results = {}
    t0 = time.monotonic()
    for target in targets:
        print(f"{target}: {plan[target]} cases", flush=True)
        results[target] = run_target(target, args.seed, plan[target], sys.stdout)
    total = {k: sum(r[k] for r in results.values()) for k in
             ("cases", "accepted", "rejected_clear", "crashes", "hangs", "unclear", "runtime_crashes_caught_by_probe")}
    report = {
        "command": "benchmarks/robustness/fuzz.py" + (" --quick" if args.quick else "") + f" --seed {args.seed}",
        "total": total,
        "wall_s": round(time.monotonic() - t0, 1),
        "targets": results,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "versions": _versions(),
    }
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report["models_sha256"] = shipped_sha256()  # every shipped model and manifest is fuzzed
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
        args.out.with_suffix(".md").write_text(render(report))
    print(render(report))
    if total["crashes"] or total["hangs"] or total["unclear"]:
        sys.exit(1)


def _versions() -> dict[str, str]:
    out = {"numpy": np.__version__, "opencv": cv2.__version__, "soundfile": sf.__version__,
           "libsndfile": sf.__libsndfile_version__}
    from importlib.metadata import version

    for name in ("ai-edge-litert", "onnxruntime"):
        try:
            out[name] = version(name)
        except Exception:
            out[name] = "not installed"
    return out


def render(report: dict[str, Any]) -> str:
    t = report["total"]
    lines = [
        "# Fuzzing the core's inputs",
        "",
        f"`.venv/bin/python {report['command']}`: {t['cases']:,} mutated cases in {report['wall_s']:.0f} s, each "
        "in a watchdogged worker process (a signal = crash, no result within the case timeout = hang). "
        f"{report['machine']}; " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".",
        "",
        "| target | what enters | cases | accepted | rejected (clear EdgeemoError) | crashes | hangs | unclear "
        "| p50 / max ms per case |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    what = {
        "image": "image file bytes -> read_image -> preprocess_face",
        "face_array": "decoded arrays -> preprocess_face",
        "audio": "audio file bytes -> load_audio -> clip_features, the shipped voice front end",
        "audio_array": "sample arrays, PCM chunks -> clip_features, the shipped voice front end, PcmStream",
        "manifest": "manifest JSON beside a model -> open_emotion_model -> predict",
        "model": "model file bytes -> open_emotion_model (probe) -> predict",
    }
    for name, r in report["targets"].items():
        lines.append(f"| `{name}` | {what.get(name, '')} | {r['cases']:,} | {r['accepted']:,} "
                     f"| {r['rejected_clear']:,} | {r['crashes']} | {r['hangs']} | {r['unclear']} "
                     f"| {r['case_ms_p50']} / {r['case_ms_max']} |")
    lines += [f"| **total** | | **{t['cases']:,}** | {t['accepted']:,} | {t['rejected_clear']:,} | **{t['crashes']}** "
              f"| **{t['hangs']}** | **{t['unclear']}** | |", ""]
    model = report["targets"].get("model")
    if model:
        lines += [f"Model files (no manifest, so each was first loaded and run in `probe_model`'s child process): "
                  f"{model['runtime_crashes_caught_by_probe']} of {model['cases']} mutated files crashed the runtime "
                  f"there (a signal) and {model['runtime_hangs_caught_by_probe']} hung it; such a file is refused "
                  "with a clear error and never loaded by the process that asked. The rest were refused by the "
                  "runtimes' own checks (flatbuffer / protobuf verification), the input-shape checks, or loaded "
                  "and predicted.", ""]
    lines += ["Most frequent rejections per target (file names and numbers elided):", ""]
    for name, r in report["targets"].items():
        lines.append(f"- `{name}`: " + "; ".join(f"{m} ({c})" for m, c in r["top_rejections"][:5]))
    failures = [(name, f) for name, r in report["targets"].items() for f in r["failures"]]
    lines += ["", "Failures (crash, hang, unclear): " + ("none." if not failures else "")]
    for name, f in failures:
        lines.append(f"- `{name}` case {f['case']} ({f['kind']}): {f['message']} -- replay: "
                     f"`benchmarks/robustness/fuzz.py --repro {name} {report['command'].split()[-1]} {f['case']}`")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
