"""Face detectors on a real photograph: the BlazeFace default (model file shipped) and the Haar option."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from edgeemo.errors import EdgeemoError
from edgeemo.face_detect import (
    BLAZEFACE_MODEL,
    BLAZEFACE_SHA256,
    BlazeFaceDetector,
    Box,
    DetectorSettings,
    HaarFaceDetector,
    crop_face,
    find_face,
    make_detector,
)

pytest.importorskip("ai_edge_litert")


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))


@pytest.fixture(scope="module")
def blazeface() -> BlazeFaceDetector:
    return BlazeFaceDetector()


def iou(a: Box, b: Box) -> float:
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(x1 - x0, 0) * max(y1 - y0, 0)
    return inter / (a.area + b.area - inter)


def test_blazeface_finds_the_face_the_haar_cascade_finds(portrait, blazeface):
    dnn, haar = blazeface.detect(portrait), HaarFaceDetector().detect(portrait)
    assert len(dnn) == 1 and len(haar) == 1
    assert iou(dnn[0], haar[0]) > 0.5 and 0.5 < dnn[0].score <= 1.0
    assert crop_face(portrait, dnn[0]).shape[0] > 150


def test_blazeface_boxes_follow_the_face_through_letterboxing_and_gray(portrait, blazeface):
    (face,) = blazeface.detect(portrait)
    shifted = cv2.copyMakeBorder(portrait, 0, 0, 300, 0, cv2.BORDER_CONSTANT)  # 600x812: letterboxed
    (moved,) = blazeface.detect(shifted)
    assert abs(moved.x - (face.x + 300)) < 15 and abs(moved.y - face.y) < 15
    (gray,) = blazeface.detect(cv2.cvtColor(portrait, cv2.COLOR_BGR2GRAY))
    assert iou(gray, face) > 0.8


def test_blazeface_finds_a_sideways_face_the_cascade_misses(portrait, blazeface):
    sideways = cv2.rotate(portrait, cv2.ROTATE_90_CLOCKWISE)
    assert HaarFaceDetector().detect(sideways) == []
    assert len(blazeface.detect(sideways)) == 1


def test_blazeface_on_an_empty_scene_finds_nothing(blazeface):
    assert blazeface.detect(np.full((480, 640, 3), 128, np.uint8)) == []
    assert blazeface.detect(np.zeros((1, 1, 3), np.uint8)) == []
    assert blazeface.detect(np.zeros((0, 0, 3), np.uint8)) == []


def test_blazeface_refuses_any_other_model_file(tmp_path):
    other = tmp_path / "detector.tflite"
    other.write_bytes(b"TFL3" + bytes(100))
    with pytest.raises(EdgeemoError, match="sha256 differs") as err:
        BlazeFaceDetector(model=other)
    assert str(other) in str(err.value)


def test_the_blazeface_model_ships_in_the_package_with_its_licence():
    assert hashlib.sha256(BLAZEFACE_MODEL.read_bytes()).hexdigest() == BLAZEFACE_SHA256
    assert "Apache License" in (BLAZEFACE_MODEL.parent / "LICENSE-Apache-2.0.txt").read_text()
    assert isinstance(make_detector(), BlazeFaceDetector)  # the default needs no other package


def test_the_device_module_reexports_the_core_detectors():
    from edgeemo.device import face_detector

    assert face_detector.crop_face is crop_face and face_detector.BlazeFaceDetector is BlazeFaceDetector


def test_find_face_is_detect_then_crop_in_frame_pixels(portrait, blazeface):
    settings = DetectorSettings(detect_width=160, face_margin=0.0)
    (box,), crop = find_face(portrait, blazeface, settings)
    full = blazeface.detect(portrait)[0]
    assert abs(box.x - full.x) < 0.1 * full.w and abs(box.w - full.w) < 0.15 * full.w  # scaled back from 160 px
    assert crop.shape[:2] == crop_face(portrait, box, 0.0).shape[:2]
    assert find_face(np.full((240, 320, 3), 128, np.uint8), blazeface, settings) == ([], None)


@pytest.mark.parametrize("kwargs, match", [({"detector": "yolo"}, "blazeface, haar"),
                                           ({"detect_min_score": 1.5}, "detect_min_score"),
                                           ({"detect_scale_factor": 1.0}, "detect_scale_factor")])
def test_detector_settings_refuse_bad_values(kwargs, match):
    with pytest.raises(EdgeemoError, match=match):
        DetectorSettings(**kwargs)


def test_the_daemon_runs_with_blazeface_from_its_config_without_tensorflow(tmp_path):
    import json

    from conftest import run_cli_without_tf

    from edgeemo.labels import EMOTIONS

    (tmp_path / "device.toml").write_text('[pipeline]\ndetector = "blazeface"\ndetect_min_score = 0.6\n')
    proc = run_cli_without_tf(["run", "--demo", "--config", "device.toml", "--json", "--duration", "2.5"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert any(r["face"] and r["face"]["label"] in EMOTIONS for r in results)


def test_an_unknown_detector_is_a_config_error_naming_the_file(tmp_path):
    from conftest import run_cli_without_tf

    (tmp_path / "device.toml").write_text('[pipeline]\ndetector = "yolo"\n')
    proc = run_cli_without_tf(["run", "--demo", "--config", "device.toml", "--duration", "1"], tmp_path)
    assert proc.returncode == 1
    assert "device.toml" in proc.stderr and "blazeface, haar" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("name, kind", [("haar", HaarFaceDetector), ("blazeface", BlazeFaceDetector)])
def test_the_configured_detector_is_the_one_the_pipeline_uses(tmp_path, name, kind):
    from edgeemo.device.config import load_config
    from edgeemo.device.daemon import build_pipeline
    from edgeemo.device.demo_clip import DemoCamera

    (tmp_path / "device.toml").write_text(f'[pipeline]\ndetector = "{name}"\n[microphone]\nenabled = false\n')
    pipeline = build_pipeline(load_config(tmp_path / "device.toml"), camera=DemoCamera(seconds=1.0), sinks=[])
    assert isinstance(pipeline.face.detector, kind)
