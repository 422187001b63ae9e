"""Faces read as a stream (``edgeemo train face --stream``): tf.data over the image files of an index
(``edgeemo.face_index``), for datasets that do not fit in memory.

Each file is read and decoded by the core reader and goes through THE core preprocessing
(``edgeemo.face.preprocess_face``, in parallel through ``tf.numpy_function``), so a streamed batch is
the batch the in-memory path makes (tested). A training stream is sharded per worker (each worker
reads only its own files) and shuffled by file name every epoch. With a cache folder
(``--stream-cache``) the decoding happens once: the first epoch writes the preprocessed faces to
disk (tf.data's cache) in one fixed random order, a read batch of ``READ_BATCH`` faces a record;
later epochs read the records back in a new order (a window of ``BLOCK_WINDOW``), each record's
faces shuffled and ``BLOCK_CYCLE`` records interleaved face by face. Memory stays flat in the number
of faces: the file names, a few batches in flight and the window of records.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from edgeemo.face import FacePreprocessing, preprocess_face, resize_face
from edgeemo.face_datasets import read_image
from edgeemo.face_index import FaceIndex
from edgeemo.labels import EMOTIONS
from edgeemo.train.datasets import bounded, cache_prefix, mixed_rows
from edgeemo.train.face_augment import CameraAugmentation, degrade_face

CACHE_ORDER_SEED = 0  # the order a cached training stream is written in
READ_BATCH = 256  # faces read per call into Python, and per record of the cache (2.4 MB)
BLOCK_WINDOW = 32  # records a cached training stream shuffles (77 MB)
BLOCK_CYCLE = 8  # records whose faces a cached training stream interleaves


def face_reader(pre: FacePreprocessing, camera: CameraAugmentation | None = None, seed: int = 0) -> Any:
    """A tf.data map function over batches: (file names, *rest) -> (model inputs, *rest), by the core reader
    and THE preprocessing; with ``camera``, a random camera degrades each raw crop first (as
    ``camera_dataset``). One Python call per batch: per face, TensorFlow's call into Python cost three times
    the decoding itself."""
    calls = itertools.count()

    def one(path: str) -> np.ndarray:
        gray = read_image(path)
        if camera is not None:  # a generator per face: the draws do not depend on which thread runs it
            gray = degrade_face(resize_face(gray, pre), camera, np.random.default_rng((seed, next(calls))))
        return preprocess_face(gray, pre)

    def load(paths: np.ndarray) -> np.ndarray:
        return np.stack([one(p.decode()) for p in paths]) if len(paths) else np.zeros((0, *pre.input_shape),
                                                                                      np.float32)

    def read(paths: tf.Tensor, *rest: tf.Tensor) -> tuple[tf.Tensor, ...]:
        x = tf.numpy_function(load, [paths], tf.float32, stateful=camera is not None)
        x.set_shape((None, *pre.input_shape))
        return (x, *rest)

    return read


def face_stream(
    index: FaceIndex,
    pre: FacePreprocessing,
    batch: int,
    augment: keras.Sequential | None = None,
    seed: int = 0,
    shuffle: bool = False,
    shard: tuple[int, int] = (1, 0),
    cache: Path | None = None,
    camera: CameraAugmentation | None = None,
    sample_weight: np.ndarray | None = None,
) -> tf.data.Dataset:
    """Batches of (x, one-hot y) [+ ``sample_weight``] read from ``index``'s files; ``shard`` = (workers,
    this worker); ``cache``: a folder for tf.data's cache of the preprocessed faces (not with ``camera``)."""
    columns: tuple[np.ndarray, ...] = (np.asarray(index.sources, dtype=str),
                                       keras.utils.to_categorical(index.labels, len(EMOTIONS)).astype(np.float32))
    if sample_weight is not None:
        columns += (sample_weight.astype(np.float32),)
    ds = bounded(tf.data.Dataset.from_tensor_slices(columns).shard(*shard), shard)  # each worker its own files
    read = face_reader(pre, camera, seed)
    if cache is not None and camera is None:
        if shuffle:  # one fixed random order on disk (the same on a resume), then a buffer reshuffled every epoch
            ds = ds.shuffle(len(index), seed=CACHE_ORDER_SEED, reshuffle_each_iteration=False)
        ds = ds.batch(READ_BATCH).map(read, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.cache(str(cache_prefix(cache, "faces", [index.sources, pre.to_dict(), shard, shuffle])))
        if shuffle:
            ds = mixed_rows(ds.shuffle(BLOCK_WINDOW, seed=seed, reshuffle_each_iteration=True), BLOCK_CYCLE, seed)
        else:
            ds = ds.unbatch()
        ds = ds.batch(batch)
    else:
        if shuffle:  # the file names, all of them, in a new order every epoch
            ds = ds.shuffle(len(index), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch).map(read, num_parallel_calls=tf.data.AUTOTUNE)
    faces = len(range(shard[1], len(index), shard[0]))  # tell Keras how many batches (the cache hides it)
    ds = ds.apply(tf.data.experimental.assert_cardinality(-(-faces // batch)))
    if augment is not None:
        ds = ds.map(lambda a, *rest: (augment(a, training=True), *rest), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def predict_stream(model: keras.Model, index: FaceIndex, pre: FacePreprocessing, batch: int = 512) -> np.ndarray:
    """Class probabilities of ``index``'s faces, in order, read as a stream."""
    inputs = face_stream(index, pre, batch).map(lambda x, y: x)
    return model.predict(inputs, verbose=0)
