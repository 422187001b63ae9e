"""Property-based fuzzing of image decoding and face preprocessing: any bytes, any array.

Every input either gives a (48, 48, 1) finite model input or an EdgeemoError naming the file;
a header claiming a huge image is refused before anything is allocated for it.
"""

from __future__ import annotations

import resource
import struct
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgeemo.errors import EdgeemoError
from edgeemo.face import FacePreprocessing, preprocess_face
from edgeemo.face_datasets import image_header_size, read_image

# The deadline catches a hang, not slowness: a 2 s one failed on a busy 2-core machine.
FUZZ = settings(max_examples=60, deadline=30_000, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.function_scoped_fixture])


def _seeds() -> list[bytes]:
    yy, xx = np.mgrid[0:40, 0:30]
    gray = ((yy * 5 + xx * 3) % 256).astype(np.uint8)
    bgr = np.dstack([gray, gray[::-1], 255 - gray])
    bgra = np.dstack([bgr, np.full(gray.shape, 128, np.uint8)])
    out = []
    for ext, img in [(".png", gray), (".png", bgra), (".png", gray.astype(np.uint16) * 257), (".jpg", bgr),
                     (".bmp", bgr), (".webp", bgr), (".tiff", bgr), (".pgm", gray)]:
        ok, buf = cv2.imencode(ext, img)
        assert ok
        out.append(buf.tobytes())
    return out


SEEDS = _seeds()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for offset, value in draw(st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), max_size=8)):
        data[offset % len(data)] = value
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def _check(tmp_path, data: bytes, suffix: str = ".png", must_refuse: bool = False) -> None:
    path = tmp_path / f"case{suffix}"
    path.write_bytes(data)
    try:
        x = preprocess_face(read_image(path))
    except EdgeemoError as exc:
        assert str(path) in str(exc)
        return
    assert not must_refuse, f"{len(data)} arbitrary bytes were accepted as an image"
    assert x.shape == (48, 48, 1) and x.dtype == np.float32 and np.all(np.isfinite(x))


@FUZZ
@given(data=mutated())
def test_mutated_images_decode_or_are_refused_clearly(tmp_path, data):
    _check(tmp_path, data)


@FUZZ
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".jpg", ".png", ".bmp", ".webp", ".tiff"]))
def test_arbitrary_bytes_are_refused_clearly(tmp_path, data, suffix):
    _check(tmp_path, data, suffix, must_refuse=True)


def _png(width: int, height: int, depth: int = 8, color: int = 0) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * (1 << 20), 9)) + chunk(
        b"IEND", b"")


@pytest.mark.parametrize("width,height", [(100_000, 100_000), (30_000, 30_000), (8000, 8000), (1 << 20, 100)])
def test_png_claiming_a_huge_size_is_refused_before_decoding(tmp_path, width, height):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png(width, height, 16, 6))  # 16-bit RGBA: 8 bytes a pixel
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(EdgeemoError, match="header claims") as exc:
        read_image(path)
    assert str(path) in str(exc.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB: nothing decoded


def test_header_sizes_of_every_format_are_read_without_decoding():
    img = np.zeros((37, 53, 3), np.uint8)
    for ext in (".png", ".jpg", ".bmp", ".webp", ".tiff", ".ppm"):
        ok, buf = cv2.imencode(ext, img)
        assert image_header_size(buf.tobytes()) == (53, 37), ext
    jpg = bytearray(cv2.imencode(".jpg", img)[1].tobytes())
    sof = jpg.find(b"\xff\xc0")
    jpg[sof + 5 : sof + 9] = b"\xff\xff\xff\xff"
    assert image_header_size(bytes(jpg)) == (65535, 65535)
    assert image_header_size(b"not an image") is None


@pytest.mark.parametrize("data", [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM"])
def test_empty_and_header_only_files(tmp_path, data):
    _check(tmp_path, data)


ARRAY_DTYPES = st.sampled_from([np.uint8, np.uint16, np.float32, np.float64, np.float16, np.int8, np.int32,
                                np.bool_])


@FUZZ
@given(image=hnp.arrays(ARRAY_DTYPES, hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=70)),
       size=st.integers(1, 64))
def test_preprocess_face_takes_any_array_or_refuses_it_clearly(image, size):
    try:
        x = preprocess_face(image, FacePreprocessing(size=size))
    except EdgeemoError:
        return
    assert x.shape == (size, size, 1) and np.all(np.isfinite(x))


@pytest.mark.parametrize("bad", [{"size": 0}, {"size": True}, {"size": 10**6}, {"scale": "x"}, {"offset": float("nan")},
                                 {"color": ["gray"]}, {"interpolation": None}])
def test_face_preprocessing_from_a_bad_manifest_is_refused(bad):
    with pytest.raises(EdgeemoError):
        FacePreprocessing.from_dict({"kind": "face", **bad})
    with pytest.raises(EdgeemoError):
        FacePreprocessing.from_dict([bad])  # not an object
