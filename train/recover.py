"""A face model's float ONNX export (BatchNorm folded into the convolutions by tf2onnx) rebuilt as a Keras
model that computes the same outputs, with BatchNorm statistics measured on faces, so that it can be trained
further or recalibrated: the float parent of a shipped model whose run folder is gone
(``benchmarks/release/recover_face_parent.py``)."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from edgeemo.errors import EdgeemoError
from edgeemo.labels import EMOTIONS
from edgeemo.train.face_models import build_face_model
from edgeemo.train.recalibrate import channel_moments


def cut_seed(config: dict) -> int:
    """The seed that cut the run's train/val split: ``--split-seed`` when the run was trained
    with one (``split_seed`` in config.json), else its ``--seed``. The class counts alone cannot
    tell two stratified cuts apart, so a wrong seed would pass the check below and hand the
    rebuilt run another validation set."""
    split_seed = config.get("split_seed")
    return int(config["settings"]["seed"] if split_seed is None else split_seed)


def onnx_weights(path: Path) -> tuple[list[tuple[np.ndarray, ...]], list[tuple[np.ndarray, ...]]]:
    """The folded weights in graph order: every Conv as (kernel OIHW, bias) and every MatMul as
    (kernel, scale, bias) of ``x @ kernel * scale + bias`` (the constant Mul/Add nodes after it;
    tf2onnx drops an Add whose constant is zero)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    convs: list[tuple[np.ndarray, np.ndarray]] = []
    dense: list[list[np.ndarray]] = []
    for node in graph.node:
        if node.op_type == "Conv":
            kernel = consts[node.input[1]]
            bias = consts[node.input[2]] if len(node.input) > 2 else np.zeros(kernel.shape[0], np.float32)
            convs.append((kernel, bias))
        elif node.op_type == "MatMul":
            kernel = consts[node.input[1]]
            dense.append([kernel, np.ones(kernel.shape[1], np.float32), np.zeros(kernel.shape[1], np.float32)])
        elif node.op_type in ("Mul", "Add") and dense and any(i in consts for i in node.input):
            const = next(consts[i] for i in node.input if i in consts)
            if node.op_type == "Mul":
                dense[-1][1], dense[-1][2] = dense[-1][1] * const, dense[-1][2] * const
            else:
                dense[-1][2] = dense[-1][2] + const
    return convs, [tuple(d) for d in dense]


def rebuild(config: dict, weights: tuple[list, list], faces: np.ndarray) -> keras.Model:
    """The custom CNN with the folded weights and re-estimated BatchNorm layers."""
    model = build_face_model(
        config["arch"], tuple(config["input_shape"]), len(EMOTIONS), None,
        config["bn_momentum"], config["dropout"], config["block_dropout"],
    )
    convs, dense = weights
    conv_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if len(convs) != len(conv_layers) or len(dense) != 2:
        raise EdgeemoError(f"the ONNX graph has {len(convs)} convolutions and {len(dense)} dense layers; "
                           f"the {config['arch']} has {len(conv_layers)} and 2")

    def renormalise(layer_name: str, bn_name: str, scale: np.ndarray, bias: np.ndarray) -> None:
        """Set BatchNorm ``bn_name`` (after ``layer_name``) to compute ``scale * z + bias`` at
        inference, with the statistics of z on ``faces`` as its moving statistics."""
        mean, var = channel_moments(keras.Model(model.input, model.get_layer(layer_name).output), faces)
        bn = model.get_layer(bn_name)
        gamma = scale * np.sqrt(var + bn.epsilon)  # gamma * (z - mean) / sqrt(var + eps) + beta == scale * z + bias
        beta = bias + scale * mean
        bn.set_weights([np.asarray(v, np.float32) for v in (gamma, beta, mean, var)])

    for layer, (kernel, bias) in zip(conv_layers, convs, strict=True):
        layer.set_weights([kernel.transpose(2, 3, 1, 0)])  # OIHW -> HWIO
        renormalise(layer.name, layer.name.replace("_conv", "_bn"), np.ones_like(bias), bias)
    (fc_kernel, fc_scale, fc_bias), (probs_kernel, probs_scale, probs_bias) = dense
    model.get_layer("fc").set_weights([fc_kernel])
    renormalise("fc", "fc_bn", fc_scale, fc_bias)
    model.get_layer("probs").set_weights([probs_kernel * probs_scale, probs_bias])
    return model
