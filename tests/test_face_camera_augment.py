"""Camera augmentation of face training (`--camera-p`): every epoch degrades the raw crops and then
sends them through THE preprocessing; the targets travel unchanged, hard labels or a teacher's."""

from __future__ import annotations

import numpy as np
import pytest

from edgeemo.face import FacePreprocessing, preprocess_faces
from edgeemo.labels import EMOTIONS

pytest.importorskip("tensorflow")


def _faces(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(40, 220, size=(60, 60), dtype=np.uint8) for _ in range(n)]


def _one_epoch(y: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray]:
    from edgeemo.train.datasets import camera_dataset
    from edgeemo.train.face_augment import CameraAugmentation

    pre = FacePreprocessing()
    ds = camera_dataset(_faces(len(y)), y, pre, CameraAugmentation(p=p), batch=len(y), augment=None, seed=0)
    x, t = next(iter(ds))
    return np.asarray(x), np.asarray(t)


@pytest.mark.parametrize("soft", [False, True])
def test_targets_reach_training_unchanged_labels_or_teacher_rows(soft):
    labels = np.arange(12) % len(EMOTIONS)
    rng = np.random.default_rng(1)
    y = rng.dirichlet(np.ones(len(EMOTIONS)), size=12).astype(np.float32) if soft else labels
    x, t = _one_epoch(y, p=1.0)
    expected = y if soft else np.eye(len(EMOTIONS), dtype=np.float32)[labels]
    assert x.shape == (12, *FacePreprocessing().input_shape) and t.shape == (12, len(EMOTIONS))
    # shuffled: the same rows, in another order
    np.testing.assert_allclose(np.sort(t, axis=0), np.sort(expected, axis=0), atol=1e-6)


def test_crops_are_degraded_then_preprocessed_like_the_device():
    y = np.arange(8) % len(EMOTIONS)
    clean = np.sort(preprocess_faces(_faces(8), FacePreprocessing()).reshape(8, -1).sum(1))
    x0, _ = _one_epoch(y, p=0.0)  # no camera: exactly THE preprocessing of the crop
    np.testing.assert_allclose(np.sort(x0.reshape(8, -1).sum(1)), clean, rtol=1e-4)
    x1, _ = _one_epoch(y, p=1.0)
    assert not np.allclose(np.sort(x1.reshape(8, -1).sum(1)), clean, rtol=1e-3)


def test_detector_framing_crops_a_face_as_the_daemon_does_and_keeps_a_face_it_cannot_find():
    import cv2
    from conftest import data_file

    from edgeemo.face_detect import FRAMED_SIDE, DetectorSettings, crop_face, detect_faces, make_detector
    from edgeemo.train.face_augment import detector_framed

    folder = data_file("fer2013", "train", "happy")
    faces = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(folder.glob("*.jpg"))[:4]]
    noise = _faces(1)[0]
    framed, found = detector_framed([*faces, noise])
    assert found >= 3  # BlazeFace finds about 98% of FER2013 faces enlarged into a frame
    assert framed[-1] is noise or np.array_equal(framed[-1], noise)  # no face: the training face as it was
    reframed = [f for f, face in zip(framed, faces, strict=False) if f.shape != face.shape]
    assert len(reframed) == found
    for crop in reframed:  # a square cut of the enlarged face by THE crop, about the detector's box
        assert crop.shape[0] == crop.shape[1] and 0.6 * FRAMED_SIDE < crop.shape[0] <= FRAMED_SIDE + 20
    # the same crop the daemon's functions give on the same frame
    s = DetectorSettings()
    big = cv2.resize(faces[0], (FRAMED_SIDE, FRAMED_SIDE), interpolation=cv2.INTER_CUBIC)
    frame = cv2.copyMakeBorder(big, 48, 48, 88, 88, cv2.BORDER_CONSTANT, value=128)
    box = detect_faces(frame, make_detector(s), s.detect_width)[0]
    expected = crop_face(cv2.copyMakeBorder(big, 48, 48, 88, 88, cv2.BORDER_REPLICATE), box, s.face_margin)
    np.testing.assert_array_equal(framed[0], expected)


@pytest.mark.parametrize("detector_p", [0.0, 1.0])
def test_detector_framed_faces_are_drawn_with_their_probability(detector_p):
    from edgeemo.train.datasets import camera_dataset
    from edgeemo.train.face_augment import CameraAugmentation

    pre = FacePreprocessing()
    faces = _faces(6)
    framed = [np.full((50, 50), 10 * (i + 1), np.uint8) for i in range(6)]  # recognisable stand-ins
    y = np.arange(6)
    camera = CameraAugmentation(p=0.0, detector_p=detector_p)
    x, t = next(iter(camera_dataset(faces, y, pre, camera, batch=6, augment=None, seed=0, framed=framed)))
    source = framed if detector_p else faces
    expected = preprocess_faces([source[i] for i in np.asarray(t).argmax(1)], pre)  # rows follow their labels
    np.testing.assert_allclose(np.asarray(x), expected, atol=1e-5)
