"""Voice emotion models over MFCC frames (time, coefficients): Conv1D, LSTM, Conv1D+LSTM,
pooled utterance statistics with a dense head, and a dense head alone on utterance functionals.

All are Keras 3 functional models (tf2onnx cannot convert Sequential ones) with well
under 500k parameters. ``unroll`` builds the LSTMs unrolled over the fixed number of
frames: a Keras 3 LSTM only converts to full-integer TFLite that way, so export rebuilds
a trained recurrent model with ``unroll=True`` and the same weights
(``edgeemo.export.tflite.unrolled``).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, regularizers

from edgeemo.train.options import HEAD_UNITS, VOICE_ARCHS


def _conv_block(x: Any, filters: int, kernel: int, pool: bool, dropout: float, name: str) -> Any:
    x = layers.Conv1D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    if pool:
        x = layers.MaxPooling1D(2, name=f"{name}_pool")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name=f"{name}_drop")(x)
    return x


def _head(x: Any, n_classes: int, dropout: float, l1: float, l2: float, units: int = HEAD_UNITS) -> Any:
    x = layers.Dropout(dropout, name="head_drop1")(x)
    x = layers.Dense(units, activation="relu", kernel_regularizer=regularizers.L1L2(l1, l2), name="head_dense")(x)
    x = layers.Dropout(dropout, name="head_drop2")(x)
    return layers.Dense(n_classes, activation="softmax", dtype="float32", name="probs")(x)


def conv1d_model(input_shape: tuple[int, int], n_classes: int = 7, dropout: float = 0.4,
                 l1: float = 1e-5, l2: float = 1e-4) -> keras.Model:
    """Conv1D + BatchNorm + pooling stacks over time (MFCCs as channels), GAP, L1/L2 dense head."""
    inputs = keras.Input(input_shape, name="mfcc")
    x = _conv_block(inputs, 64, 5, True, 0.1, "block1")
    x = _conv_block(x, 128, 5, True, 0.1, "block2")
    x = _conv_block(x, 128, 3, True, 0.1, "block3")
    x = _conv_block(x, 256, 3, False, 0.0, "block4")
    x = layers.GlobalAveragePooling1D(name="gap")(x)
    return keras.Model(inputs, _head(x, n_classes, dropout, l1, l2), name="voice_conv1d")


def lstm_model(input_shape: tuple[int, int], n_classes: int = 7, dropout: float = 0.4,
               l1: float = 1e-5, l2: float = 1e-4, unroll: bool = False) -> keras.Model:
    """Two stacked LSTMs (128, 64) with dropout over the MFCC frames (frames pooled by 2 first)."""
    inputs = keras.Input(input_shape, name="mfcc")
    x = layers.AveragePooling1D(2, name="frame_pool")(inputs)  # 10 ms -> 20 ms steps: half the recurrence
    x = layers.LSTM(128, return_sequences=True, unroll=unroll, name="lstm1")(x)
    x = layers.Dropout(0.2, name="lstm1_drop")(x)
    x = layers.LSTM(64, unroll=unroll, name="lstm2")(x)
    return keras.Model(inputs, _head(x, n_classes, dropout, l1, l2), name="voice_lstm")


def crnn_model(input_shape: tuple[int, int], n_classes: int = 7, dropout: float = 0.4,
               l1: float = 1e-5, l2: float = 1e-4, unroll: bool = False) -> keras.Model:
    """Conv1D front end (4x shorter sequence) then an LSTM over the learned features."""
    inputs = keras.Input(input_shape, name="mfcc")
    x = _conv_block(inputs, 64, 5, True, 0.1, "block1")
    x = _conv_block(x, 128, 5, True, 0.1, "block2")
    x = _conv_block(x, 128, 3, True, 0.1, "block3")
    x = layers.LSTM(96, unroll=unroll, name="lstm")(x)
    return keras.Model(inputs, _head(x, n_classes, dropout, l1, l2), name="voice_crnn")


def stats_model(input_shape: tuple[int, int], n_classes: int = 7, dropout: float = 0.4,
                l1: float = 1e-5, l2: float = 1e-4) -> keras.Model:
    """Utterance statistics, then a small dense head: the mean over the window of the frames, of
    their squares (with the mean: their spread), of rectified learned frame differences (how
    fast they move) and of one learned Conv1D layer. Built-in layers only (int8-friendly).

    Pooled functionals of per-speaker standardised frames transfer across corpora better than a
    deep stack over time (benchmarks/results/experiments/voice_functionals.md)."""
    inputs = keras.Input(input_shape, name="mfcc")
    squares = layers.Multiply(name="squares")([inputs, inputs])
    moves = layers.DepthwiseConv1D(2, depth_multiplier=2, use_bias=False, name="moves")(inputs)
    moves = layers.ReLU(name="moves_relu")(moves)
    local = _conv_block(inputs, 64, 5, False, 0.0, "local")
    pooled = [layers.GlobalAveragePooling1D(name=f"{name}_mean")(x)
              for name, x in (("frames", inputs), ("squares", squares), ("moves", moves), ("local", local))]
    x = layers.Concatenate(name="functionals")(pooled)
    x = layers.BatchNormalization(name="functionals_bn")(x)
    return keras.Model(inputs, _head(x, n_classes, dropout, l1, l2), name="voice_stats")


def mlp_model(input_shape: tuple[int, int], n_classes: int = 7, dropout: float = 0.4,
              l1: float = 1e-5, l2: float = 1e-4, units: int = HEAD_UNITS) -> keras.Model:
    """The dense head alone (``units`` hidden), on one vector per clip (``--summary functionals``)."""
    inputs = keras.Input(input_shape, name="functionals")
    x = layers.Flatten(name="flat")(inputs)
    return keras.Model(inputs, _head(x, n_classes, dropout, l1, l2, units), name="voice_mlp")


def build_voice_model(arch: str, input_shape: tuple[int, int], n_classes: int = 7, dropout: float = 0.4,
                      unroll: bool = False, units: int = HEAD_UNITS) -> keras.Model:
    """One of VOICE_ARCHS for (frames, coefficients) inputs; ``units``: the dense head's width (mlp only)."""
    if units != HEAD_UNITS and arch != "mlp":
        from edgeemo.errors import EdgeemoError

        raise EdgeemoError(f"--head-units applies to --arch mlp only (got --arch {arch})")
    if arch == "conv1d":
        return conv1d_model(input_shape, n_classes, dropout)
    if arch == "lstm":
        return lstm_model(input_shape, n_classes, dropout, unroll=unroll)
    if arch == "crnn":
        return crnn_model(input_shape, n_classes, dropout, unroll=unroll)
    if arch == "stats":
        return stats_model(input_shape, n_classes, dropout)
    if arch == "mlp":
        return mlp_model(input_shape, n_classes, dropout, units=units)
    from edgeemo.errors import EdgeemoError

    raise EdgeemoError(f"unknown voice architecture {arch!r} (expected {', '.join(VOICE_ARCHS)})")
