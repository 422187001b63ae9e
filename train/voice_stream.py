"""Voice training read as a stream (``edgeemo train voice --stream``): model inputs are made speaker by
speaker from the feature cache's per-speaker files (``edgeemo.train.voice_bank``, computed once as a
stream of speakers), so the clips of a corpus are never one array.

A speaker's rows are standardised exactly as in memory (``causal_inputs``, with every group's order
drawn up front as in memory), so a streamed row is the row the in-memory path makes (tested). A
training stream takes the speakers in a new order every epoch, each speaker's rows in a new order,
and interleaves ``CYCLE`` speakers row by row; with several workers each reads only its own
speakers. Memory stays flat in the number of clips: a few speakers' rows. Standardising costs about
as much as the in-memory path's whole epoch, every epoch; with a cache folder (``--stream-cache``)
the first epoch writes the model inputs to disk, a speaker a record, and later epochs read them
back (the speakers in the order written, shuffled within a window of ``CYCLE``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from edgeemo.labels import EMOTIONS
from edgeemo.train.datasets import bounded, cache_prefix, mixed_rows
from edgeemo.train.voice_augment import FeatureMasking, mask_features
from edgeemo.train.voice_bank import FeatureBank, Rows
from edgeemo.train.voice_inputs import causal_inputs, speaker_rows
from edgeemo.voice import VoicePreprocessing

CYCLE = 4  # speakers read at once by a training stream
CACHE_ORDER_SEED = 0  # the speaker order a cached training stream is written in


def subset(rows: Rows, sel: np.ndarray, x: np.ndarray) -> Rows:
    """Rows ``sel`` of ``rows``, with their features ``x``."""
    return Rows(x, rows.span[sel], rows.clip[sel], rows.copy[sel], rows.labels[sel], rows.speakers[sel],
                rows.paths, [], None)


class VoiceStream:
    """One split's rows as model inputs, made speaker by speaker from ``bank``; ``orders`` (indices into
    ``rows``): the adaptation order of each group, as ``adaptation_orders`` draws them."""

    def __init__(self, bank: FeatureBank, rows: Rows, pre: VoicePreprocessing, orders: list[np.ndarray] | None,
                 sample_weight: np.ndarray | None = None) -> None:
        self.bank, self.rows, self.pre, self.orders = bank, rows, pre, orders or []
        self.members = speaker_rows(rows)
        self.speakers = list(self.members)
        self.local_orders: dict[str, list[np.ndarray]] = {s: [] for s in self.speakers}
        for order in orders or []:  # each group within one speaker: its order in that speaker's rows
            speaker = str(rows.speakers[order[0]])
            self.local_orders[speaker].append(np.searchsorted(self.members[speaker], order))
        self.y = keras.utils.to_categorical(rows.labels, len(EMOTIONS)).astype(np.float32)
        self.weight = None if sample_weight is None else sample_weight.astype(np.float32)

    def inputs(self, k: int) -> tuple[np.ndarray, ...]:
        """Speaker ``k``'s model inputs, one-hot labels [and sample weights]."""
        speaker = self.speakers[int(k)]
        sel = self.members[speaker]
        sub = subset(self.rows, sel, self.bank.read_x(speaker, self.rows.file_row[sel]))
        x = causal_inputs(sub, self.pre, 0, orders=self.local_orders[speaker] if self.pre.adaptation else None)
        return (x, self.y[sel]) + (() if self.weight is None else (self.weight[sel],))

    def order(self) -> np.ndarray:
        """The rows in the order an unshuffled stream yields them."""
        return np.concatenate([self.members[s] for s in self.speakers])

    def dataset(self, batch: int, seed: int = 0, shuffle: bool = False, shard: tuple[int, int] = (1, 0),
                masking: FeatureMasking | None = None, cache: Path | None = None) -> tf.data.Dataset:
        """Batches of (x, one-hot y) [+ sample weight]; ``shuffle``: speakers and rows in a new order every
        epoch; ``shard`` = (workers, this worker): each worker its own speakers; ``cache``: a folder for
        tf.data's cache of the model inputs (the first epoch writes them, in one fixed speaker order)."""
        frames, coeffs = self.pre.input_shape
        n_out = 2 if self.weight is None else 3
        shapes = [(None, frames, coeffs), (None, len(EMOTIONS)), (None,)][:n_out]

        def speaker(k: tf.Tensor) -> tuple[tf.Tensor, ...]:
            parts = tf.numpy_function(self.inputs, [k], [tf.float32] * n_out)
            for part, shape in zip(parts, shapes, strict=True):
                part.set_shape(shape)
            return tuple(parts)

        mine = list(range(shard[1], len(self.speakers), shard[0]))
        ds = bounded(tf.data.Dataset.from_tensor_slices(np.asarray(mine, np.int64)), shard)  # its own speakers
        if shuffle:  # with a cache: one fixed order, written once
            ds = ds.shuffle(len(mine), seed=CACHE_ORDER_SEED if cache else seed, reshuffle_each_iteration=not cache)
        ds = ds.map(speaker, num_parallel_calls=tf.data.AUTOTUNE)  # a speaker's rows at a time
        if cache is not None:  # a speaker a record
            what = [self.bank.key, self.speakers, mine, self.rows.file_row.tolist(), self.pre.to_dict(),
                    [o.tolist() for o in self.orders], shuffle]
            ds = ds.cache(str(cache_prefix(cache, "voice", what)))
        if shuffle:
            if cache is not None:  # speakers in the order written: shuffled within a small window
                ds = ds.shuffle(CYCLE, seed=seed, reshuffle_each_iteration=True)
            ds = mixed_rows(ds, CYCLE, seed)
        else:
            ds = ds.unbatch()
        rows = sum(len(self.members[self.speakers[k]]) for k in mine)
        ds = ds.batch(batch).apply(tf.data.experimental.assert_cardinality(-(-rows // batch)))
        if masking is not None and masking.active:
            ds = ds.map(lambda a, *rest: (mask_features(a, masking), *rest))
        return ds.prefetch(tf.data.AUTOTUNE)

    def predict(self, model: Any, batch: int = 256) -> np.ndarray:
        """Probabilities of the rows in ``order()``."""
        return model.predict(self.dataset(batch).map(lambda x, *rest: x), verbose=0)
