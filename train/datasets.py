"""The tf.data pipeline both trainers feed Keras with (``edgeemo.train.face`` and ``.voice``)."""

from __future__ import annotations

import ctypes
import hashlib
import json
from contextlib import suppress
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
    framed: list[np.ndarray] | None = None,
) -> tf.data.Dataset:
    """Training batches that go through a random camera (``degrade_face``) and then THE
    preprocessing on every epoch: the raw gray crops travel, the model input is made per batch.
    ``y``: class indices, or one row of target probabilities per face (distillation). ``framed``:
    each face as the device's detector crops it, drawn instead with ``camera.detector_p``."""
    raw = np.stack([resize_face(to_gray_uint8(im), pre) for im in images])
    rng = np.random.default_rng(seed)

    def degrade(batch: np.ndarray, *other: np.ndarray) -> np.ndarray:
        if other:  # the detector's framing instead, with camera.detector_p
            pick = rng.random(len(batch)) < camera.detector_p
            batch = np.where(pick[:, None, None], other[0], batch)
        return np.stack([preprocess_face(degrade_face(im, camera, rng), pre) for im in batch]).astype(np.float32)

    targets = y if y.ndim == 2 else keras.utils.to_categorical(y, len(EMOTIONS))  # soft targets (a teacher's) as given
    faces: tuple[np.ndarray, ...] = (raw,)
    if framed is not None:
        faces += (np.stack([resize_face(to_gray_uint8(im), pre) for im in framed]),)
    columns: tuple[np.ndarray, ...] = (*faces, targets.astype(np.float32))
    if sample_weight is not None:
        columns += (sample_weight.astype(np.float32),)
    ds = tf.data.Dataset.from_tensor_slices(columns).shuffle(len(raw), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch)

    def to_input(*row: tf.Tensor) -> tuple[tf.Tensor, ...]:
        x = tf.numpy_function(degrade, list(row[:len(faces)]), tf.float32, stateful=True)
        x.set_shape((None, *pre.input_shape))
        return (x, *row[len(faces):])

    ds = ds.map(to_input)
    if augment is not None:
        ds = ds.map(lambda a, *rest: (augment(a, training=True), *rest), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def mixed_rows(blocks: tf.data.Dataset, cycle: int, seed: int) -> tf.data.Dataset:
    """The rows of a dataset of blocks (a read batch of faces, a speaker's rows), mixed without a shuffle buffer
    of rows: each block's rows in a new random order, ``cycle`` blocks interleaved row by row. A row is a view
    of its block, so a buffer of rows would keep a block in memory for each row it holds (measured: 0.34 MB
    for a 48 KB voice row); here ``cycle`` blocks are."""

    def rows(*block: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.shuffle(tf.range(tf.shape(block[0])[0]), seed=seed)
        return tf.data.Dataset.from_tensor_slices(tuple(tf.gather(part, order) for part in block))

    return blocks.interleave(rows, cycle_length=cycle)


def cache_prefix(folder: Path, kind: str, what: Any) -> Path:
    """A tf.data cache prefix in ``folder`` named by what it holds (``what``, JSON), so the same stream, on a
    resume too, reads it again; a lock file left by an interrupted run is removed (only this process writes
    this prefix)."""
    key = hashlib.sha256(json.dumps(what).encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{kind}-{key}*.lockfile"):
        stale.unlink()
    return folder / f"{kind}-{key}"


STREAM_RAM_BUDGET = 256 * 2**20  # bytes tf.data's autotuner may fill with buffers in a stream (default: half the RAM)


def bounded(ds: tf.data.Dataset, shard: tuple[int, int] = (1, 0)) -> tf.data.Dataset:
    """A stream's options: its autotuned buffers bounded (``STREAM_RAM_BUDGET``), and, when it is one worker's
    shard, no sharding again by tf.distribute."""
    options = tf.data.Options()
    options.autotune.ram_budget = STREAM_RAM_BUDGET
    if shard[0] > 1:
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options)


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def give_back_large_buffers() -> None:
    """Have glibc return every freed buffer over 1 MB to the system at once. A stream allocates and frees such
    buffers all the time (a speaker's rows, a batch of faces); once glibc has raised its mmap threshold it keeps
    them in its heaps instead, and the process grew with the dataset (voice: 1.18x the peak RSS for 4x the
    clips; 1.05x with this). No effect where the C library is not glibc."""
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").mallopt(M_MMAP_THRESHOLD, 1 << 20)
