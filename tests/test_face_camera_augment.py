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
