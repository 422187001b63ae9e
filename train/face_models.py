"""Model architectures. Every model takes the core preprocessing's output as its input.

Functional API throughout (tf2onnx cannot convert Sequential models).
"""

from __future__ import annotations

from pathlib import Path

import keras
from keras import layers

from edgeemo.train.options import FACE_ARCHS


def custom_cnn(
    input_shape: tuple[int, int, int] = (48, 48, 1),
    n_classes: int = 7,
    widths: tuple[int, ...] = (32, 64, 128, 256),
    convs_per_block: int = 2,
    dropout: float = 0.5,
    block_dropout: float = 0.2,
    bn_momentum: float = 0.99,
) -> keras.Model:
    """Lightweight VGG-style CNN: [Conv-BN-ReLU] x n + max-pool + dropout per block, GAP, dense, softmax.

    With the defaults: 1.24M parameters, ~117M multiply-adds per 48x48 face. Small
    datasets (CK+: ~20 steps per epoch) need ``bn_momentum`` 0.9 so the BatchNorm
    moving statistics keep up with the weights.
    """
    inputs = keras.Input(shape=input_shape, name="face")
    x = inputs
    for block, width in enumerate(widths):
        for conv in range(convs_per_block):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"b{block}_conv{conv}")(x)
            x = layers.BatchNormalization(momentum=bn_momentum, name=f"b{block}_bn{conv}")(x)
            x = layers.ReLU(name=f"b{block}_relu{conv}")(x)
        x = layers.MaxPooling2D(name=f"b{block}_pool")(x)
        x = layers.Dropout(block_dropout, name=f"b{block}_drop")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(256, use_bias=False, name="fc")(x)
    x = layers.BatchNormalization(momentum=bn_momentum, name="fc_bn")(x)
    x = layers.ReLU(name="fc_relu")(x)
    x = layers.Dropout(dropout, name="fc_drop")(x)
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name="custom_cnn")


def mobilenetv3_small(
    input_shape: tuple[int, int, int] = (48, 48, 1),
    n_classes: int = 7,
    size: int = 96,
    weights: str | Path | None = None,
    dropout: float = 0.3,
    bn_momentum: float = 0.99,
) -> keras.Model:
    """MobileNetV3Small on the same 48x48 gray input, upsampled to ``size`` inside the model.

    Resizing and gray-to-RGB live in the graph, so the model's input and preprocessing
    stay those of every face model. ``weights`` may be a local ImageNet weights file
    (nothing can be downloaded here); None trains from scratch. Keras builds its
    BatchNorm layers with momentum 0.999 (a ~1000-step average, made for ImageNet-length
    runs); ``bn_momentum`` replaces it so short runs get usable moving statistics.
    """
    inputs = keras.Input(shape=input_shape, name="face")
    x = layers.Resizing(size, size, interpolation="bilinear", name="upsample")(inputs)
    x = layers.Concatenate(name="gray_to_rgb")([x, x, x])
    x = layers.Rescaling(2.0, offset=-1.0, name="to_pm1")(x)  # [0,1] -> [-1,1], MobileNetV3's range
    backbone = keras.applications.MobileNetV3Small(
        input_shape=(size, size, 3),
        include_top=False,
        weights=None,
        include_preprocessing=False,
        pooling="avg",
    )
    for layer in backbone.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = bn_momentum
    if weights is not None:
        backbone.load_weights(str(weights), skip_mismatch=True)
    x = backbone(x)
    x = layers.Dropout(dropout, name="head_drop")(x)
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32", name="probs")(x)
    return keras.Model(inputs, outputs, name="mobilenetv3_small")


def build_face_model(
    arch: str,
    input_shape: tuple[int, int, int],
    n_classes: int,
    weights: str | None = None,
    bn_momentum: float = 0.99,
    dropout: float = 0.5,
    block_dropout: float = 0.2,
) -> keras.Model:
    """``dropout`` is the head's dropout; ``block_dropout`` the custom CNN's per-block dropout."""
    if arch == "custom-cnn":
        return custom_cnn(input_shape, n_classes, dropout=dropout, block_dropout=block_dropout, bn_momentum=bn_momentum)
    if arch == "mobilenetv3-small":
        return mobilenetv3_small(input_shape, n_classes, weights=weights, dropout=dropout, bn_momentum=bn_momentum)
    raise ValueError(f"unknown face architecture {arch!r} (expected one of {FACE_ARCHS})")
