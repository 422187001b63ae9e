"""THE face preprocessing: any decoded face crop -> float32 (48, 48, 1)."""

import json

import cv2
import numpy as np
import pytest

from edgeemo.errors import EdgeemoError
from edgeemo.face import FacePreprocessing, preprocess_face, preprocess_faces, to_gray_uint8
from edgeemo.runtime import TensorSpec, quantize

RNG = np.random.default_rng(1234)
GRAY = RNG.integers(0, 256, (48, 48), dtype=np.uint8)
BGR = RNG.integers(0, 256, (60, 50, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "image",
    [
        GRAY,
        GRAY[:, :, None],
        BGR,
        np.dstack([BGR, np.full(BGR.shape[:2], 255, np.uint8)]),  # BGRA
        GRAY.astype(np.uint16) * 257,
        GRAY.astype(np.float32) / 255.0,
        GRAY.astype(np.float64) / 255.0,
        RNG.integers(0, 256, (30, 90), dtype=np.uint8),  # non-square
        RNG.integers(0, 256, (1, 1), dtype=np.uint8),  # tiny
        RNG.integers(0, 256, (3, 200, 3), dtype=np.uint8),  # tiny on one side
        RNG.integers(0, 256, (2000, 1500, 3), dtype=np.uint8),  # huge
        BGR[:, :, ::-1],  # a reversed (RGB) view: negative strides
        BGR[5:40, 7:30],  # a crop view: not contiguous
    ],
    ids=[
        "gray",
        "gray-hw1",
        "bgr",
        "bgra",
        "uint16",
        "float32",
        "float64",
        "non-square",
        "1x1",
        "3x200",
        "huge",
        "reversed-view",
        "crop-view",
    ],
)
def test_output_shape_dtype_and_range(image):
    out = preprocess_face(image)
    assert out.shape == (48, 48, 1)
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("shape", [(48, 48), (17, 23), (1, 1), (300, 120), (48, 48, 3)])
def test_a_uniform_image_keeps_its_value_at_any_size(shape):
    out = preprocess_face(np.full(shape, 200, np.uint8))
    np.testing.assert_allclose(out, 200 / 255, rtol=1e-6)


def test_48x48_uint8_maps_exactly_to_pixel_over_255():
    img = np.arange(48 * 48).reshape(48, 48).astype(np.uint8)  # every value 0..255
    out = preprocess_face(img)[:, :, 0]
    np.testing.assert_allclose(out, img / 255.0, rtol=1e-6, atol=0)
    # Lossless under int8 quantisation with scale 1/255, zero point -128:
    np.testing.assert_array_equal(np.round(out * 255) - 128, img.astype(np.int64) - 128)
    spec = TensorSpec((None, 48, 48, 1), "int8", float(np.float32(1 / 255)), -128)
    q = quantize(out, spec)
    assert q.dtype == np.int8
    np.testing.assert_array_equal(q.astype(np.int64), img.astype(np.int64) - 128)


def test_bgr_equals_its_cv2_gray_conversion():
    expected = preprocess_face(cv2.cvtColor(BGR, cv2.COLOR_BGR2GRAY))
    np.testing.assert_array_equal(preprocess_face(BGR), expected)
    bgra = cv2.cvtColor(BGR, cv2.COLOR_BGR2BGRA)
    np.testing.assert_array_equal(preprocess_face(bgra), expected)


def test_equivalent_encodings_of_one_image_give_the_same_input():
    base = preprocess_face(GRAY)
    np.testing.assert_array_equal(preprocess_face(GRAY[:, :, None]), base)
    np.testing.assert_array_equal(preprocess_face(GRAY.astype(np.uint16) * 257), base)
    np.testing.assert_array_equal(preprocess_face(GRAY / 255.0), base)
    np.testing.assert_array_equal(preprocess_face((GRAY / 255.0).astype(np.float32)), base)
    # float pixels round to the nearest 8-bit level (not truncate)
    off_grid = np.clip((GRAY.astype(np.float64) - 0.3) / 255.0, 0.0, 1.0)
    np.testing.assert_array_equal(preprocess_face(off_grid), base)


def test_gray_shape_is_2d_uint8():
    assert to_gray_uint8(BGR).shape == BGR.shape[:2]
    assert to_gray_uint8(BGR).dtype == np.uint8


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((0, 0), np.uint8),
        np.zeros((0, 48), np.uint8),
        np.zeros((48, 48, 0), np.uint8),
        np.array([], np.uint8),
        np.zeros(48, np.uint8),  # 1-D
        np.zeros((2, 48, 48, 1), np.uint8),  # 4-D
        np.full((48, 48), np.nan, np.float32),
        np.where(np.eye(48) > 0, np.inf, 0.5),
        np.zeros((48, 48, 2), np.uint8),
        np.zeros((48, 48, 5), np.uint8),
        np.zeros((48, 48), np.int64),
        np.zeros((48, 48), bool),
    ],
    ids=[
        "0x0",
        "0x48",
        "48x48x0",
        "empty-1d",
        "1d",
        "4d",
        "nan",
        "inf",
        "2ch",
        "5ch",
        "int64",
        "bool",
    ],
)
def test_bad_arrays_raise_edgeemo_error(image):
    with pytest.raises(EdgeemoError):
        preprocess_face(image)


def test_custom_spec_size_scale_offset():
    spec = FacePreprocessing(size=64, scale=1 / 127.5, offset=-1.0)
    out = preprocess_face(np.array([[0, 255], [255, 0]], np.uint8), spec)
    assert out.shape == (64, 64, 1)
    assert out.min() == pytest.approx(-1.0) and out.max() == pytest.approx(1.0)


def test_to_dict_from_dict_round_trip_through_json():
    spec = FacePreprocessing(size=64, scale=1 / 127.5, offset=-1.0, interpolation="linear")
    d = json.loads(json.dumps(spec.to_dict()))
    assert d["kind"] == "face"
    assert FacePreprocessing.from_dict(d) == spec
    assert FacePreprocessing.from_dict(FacePreprocessing().to_dict()) == FacePreprocessing()


def test_from_dict_rejects_unknown_keys():
    d = FacePreprocessing().to_dict() | {"mean": 0.5}
    with pytest.raises(EdgeemoError, match="mean"):
        FacePreprocessing.from_dict(d)


@pytest.mark.parametrize("change", [{"color": "rgb"}, {"interpolation": "cubic"}, {"size": 0}, {"kind": "voice"}])
def test_from_dict_rejects_what_preprocess_face_cannot_do(change):
    # A manifest asking for something else must not be served with the gray/area pipeline.
    with pytest.raises(EdgeemoError):
        FacePreprocessing.from_dict(FacePreprocessing().to_dict() | change)


def test_preprocess_faces_batch():
    assert preprocess_faces([]).shape == (0, 48, 48, 1)
    assert preprocess_faces([]).dtype == np.float32
    assert preprocess_faces(np.zeros((0, 48, 48), np.uint8)).shape == (0, 48, 48, 1)
    batch = preprocess_faces([GRAY, BGR, GRAY[:10, :20]])
    assert batch.shape == (3, 48, 48, 1) and batch.dtype == np.float32
    np.testing.assert_array_equal(batch[1], preprocess_face(BGR))
