"""The tf.data pipeline both trainers feed Keras with (``edgeemo.train.face`` and ``.voice``)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from edgeemo.labels import EMOTIONS


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
