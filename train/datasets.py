"""The tf.data pipeline both trainers feed Keras with (``edgeemo.train.face`` and ``.voice``)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from edgeemo.face import FacePreprocessing, preprocess_face, resize_face, to_gray_uint8
from edgeemo.labels import EMOTIONS
from edgeemo.train.face_augment import CameraAugmentation, degrade_face


def make_dataset(
    x: np.ndarray,
    y: np.ndarray,
    batch: int,
    augment: keras.Sequential | None,
    seed: int,
    shuffle: bool = False,
    targets: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Batches of (x, one-hot y) or (x, ``targets``) [+ ``sample_weight``]; training sets
    (``augment`` or ``shuffle``) are reshuffled every epoch."""
    if targets is None:
        targets = keras.utils.to_categorical(y, len(EMOTIONS))
    columns: tuple[np.ndarray, ...] = (x, targets.astype(np.float32))
    if sample_weight is not None:
        columns += (sample_weight.astype(np.float32),)
    ds = tf.data.Dataset.from_tensor_slices(columns)
    if augment is not None or shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch)
    if augment is not None:
        ds = ds.map(lambda a, *rest: (augment(a, training=True), *rest), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def camera_dataset(
    images: list[np.ndarray],
    y: np.ndarray,
    pre: FacePreprocessing,
    camera: CameraAugmentation,
    batch: int,
    augment: keras.Sequential | None,
    seed: int,
    sample_weight: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Training batches that go through a random camera (``degrade_face``) and then THE
    preprocessing on every epoch: the raw gray crops travel, the model input is made per batch."""
    raw = np.stack([resize_face(to_gray_uint8(im), pre) for im in images])
    rng = np.random.default_rng(seed)

    def degrade(batch: np.ndarray) -> np.ndarray:
        return np.stack([preprocess_face(degrade_face(im, camera, rng), pre) for im in batch]).astype(np.float32)

    columns: tuple[np.ndarray, ...] = (raw, keras.utils.to_categorical(y, len(EMOTIONS)).astype(np.float32))
    if sample_weight is not None:
        columns += (sample_weight.astype(np.float32),)
    ds = tf.data.Dataset.from_tensor_slices(columns).shuffle(len(raw), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch)

    def to_input(a: tf.Tensor, *rest: tf.Tensor) -> tuple[tf.Tensor, ...]:
        x = tf.numpy_function(degrade, [a], tf.float32, stateful=True)
        x.set_shape((None, *pre.input_shape))
        return (x, *rest)

    ds = ds.map(to_input)
    if augment is not None:
        ds = ds.map(lambda a, *rest: (augment(a, training=True), *rest), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def unbatch_copies(ds: tf.data.Dataset) -> tf.data.Dataset:
    """``ds.unbatch()``, each row copied out of its batch: an unbatched row is a view that keeps its whole
    batch in memory, so a shuffle buffer of rows from many batches would hold all of them (measured: 0.34 MB
    retained per 48 KB voice row)."""

    def rows(*batch: tf.Tensor) -> tf.data.Dataset:
        return tf.data.Dataset.range(tf.shape(batch[0], out_type=tf.int64)[0]).map(
            lambda i: tuple(tf.gather(part, i) for part in batch))

    return ds.flat_map(rows)


def cache_prefix(folder: Path, kind: str, what: Any) -> Path:
    """A tf.data cache prefix in ``folder`` named by what it holds (``what``, JSON), so the same stream, on a
    resume too, reads it again; a lock file left by an interrupted run is removed (only this process writes
    this prefix)."""
    key = hashlib.sha256(json.dumps(what).encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{kind}-{key}*.lockfile"):
        stale.unlink()
    return folder / f"{kind}-{key}"
