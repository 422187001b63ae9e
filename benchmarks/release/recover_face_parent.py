"""Release step: rebuild the training run folder of the shipped face model from its float ONNX.

Run folders are not committed. When the run that produced the shipped face model
(``runs/fer-custom-cnn-cos120-bn``, see ``train_face_models.sh``; before 2026-12-02
``runs/fer-custom-cnn-bf16-ft-bn``) is gone, its ``best.keras`` is still needed to build on it
(``train ensemble --mirror``, ``train face --teacher`` / ``--init-from``). The shipped float
ONNX holds every weight of it, with each BatchNorm folded into the layer before it. This
script puts the weights back into the custom CNN and writes a run folder that the train and
export stages read like any other:

    best.keras   the custom CNN with the shipped weights
    config.json  the run's own config (benchmarks/results/release/training/fer-custom-cnn-cos120-bn-config.json)
    split.json   its train / val / test faces, re-cut by the same seeded split
    metrics.json best.keras on the test split, through the training code's report

BatchNorm cannot be unfolded exactly (only the products of its parameters survive), so each
one is re-estimated: its moving mean and variance are set to the statistics of the layer
before it on training faces, and gamma/beta are solved so that inference computes exactly
the folded layer. Training mode then normalises with batch statistics close to these, so the
model can be fine-tuned. The script refuses to write anything unless the rebuilt model's
outputs match the shipped float ONNX on every test face (max |diff| < 1e-4).

    .venv/bin/python benchmarks/release/recover_face_parent.py --out runs/fer-custom-cnn-cos120-bn

An earlier shipped model from git, with its committed config:

    git show 79c747e^:edgeemo/models/face/face-float.onnx > runs/prev-face-float.onnx
    .venv/bin/python benchmarks/release/recover_face_parent.py --out runs/fer-custom-cnn-bf16-ft-bn
        --onnx runs/prev-face-float.onnx
        --config benchmarks/results/release/training/fer-custom-cnn-bf16-ft-bn-config.json
    (one command line)

The shipped model's statistics were set the same way (``edgeemo train recalibrate``: inference-
mode statistics of 8,192 training faces), so the rebuilt BatchNorm layers match them closely.
"""

from __future__ import annotations

import argparse
import json
import sys
from hashlib import sha256
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
ONNX_FILE = ROOT / "edgeemo" / "models" / "face" / "face-float.onnx"
CONFIG = ROOT / "benchmarks" / "results" / "release" / "training" / "fer-custom-cnn-cos120-bn-config.json"
STATS_FACES = 8192  # training faces used to re-estimate the BatchNorm statistics


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


def rebuild(config: dict, weights: tuple[list, list], faces: np.ndarray):
    """The custom CNN with the folded weights and re-estimated BatchNorm layers."""
    import keras

    from edgeemo.labels import EMOTIONS
    from edgeemo.train.face_models import build_face_model
    from edgeemo.train.recalibrate import channel_moments

    model = build_face_model(
        config["arch"], tuple(config["input_shape"]), len(EMOTIONS), None,
        config["bn_momentum"], config["dropout"], config["block_dropout"],
    )
    convs, dense = weights
    conv_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    if len(convs) != len(conv_layers) or len(dense) != 2:
        raise SystemExit(f"error: the ONNX graph has {len(convs)} convolutions and {len(dense)} dense layers; "
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/fer-custom-cnn-cos120-bn"))
    ap.add_argument("--config", type=Path, default=CONFIG,
                    help="the run's config.json as committed (default: the shipped model's)")
    ap.add_argument("--onnx", type=Path, default=ONNX_FILE,
                    help="the run's float ONNX export (default: the shipped one)")
    ap.add_argument("--data", type=Path, default=None, help="FER2013 root (default: the run's own data folder)")
    args = ap.parse_args()

    import onnxruntime as ort

    from edgeemo.face import FacePreprocessing, preprocess_faces
    from edgeemo.labels import EMOTIONS
    from edgeemo.metrics import classification_report
    from edgeemo.train.face import resolve_splits

    config = json.loads(args.config.read_text())
    data = args.data or Path(config["data"])
    if args.data is not None:
        config["data"] = str(args.data)
    pre = FacePreprocessing.from_dict(config["preprocessing"])
    train, val, test, split_desc = resolve_splits(
        data, "auto", None, "subject", 0.1, 0.2, cut_seed(config), config["limit_per_class"]
    )
    if split_desc["train"] != config["split"]["train"] or split_desc["val"]["n"] != config["split"]["val"]["n"]:
        print(f"error: {data}: the re-cut split differs from the run's ({split_desc['train']['n']} training faces)")
        return 1
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(train), size=min(STATS_FACES, len(train)), replace=False))
    model = rebuild(config, onnx_weights(args.onnx), preprocess_faces([train.images[i] for i in idx], pre))

    x_test = preprocess_faces(test.images, pre)
    probs = model.predict(x_test, batch_size=512, verbose=0)
    session = ort.InferenceSession(str(args.onnx), providers=["CPUExecutionProvider"])
    reference = session.run(None, {session.get_inputs()[0].name: x_test})[0]
    gap = float(np.abs(probs - reference).max())
    print(f"rebuilt model vs {args.onnx} on {len(test)} test faces: max |diff| {gap:.2e}, "
          f"top-1 agreement {(probs.argmax(1) == reference.argmax(1)).mean():.4f}")
    if gap >= 1e-4:
        print("error: the rebuilt model does not match the shipped float ONNX; nothing written")
        return 1

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "best.keras")
    config["recovered_from"] = {"file": str(args.onnx), "sha256": sha256(args.onnx.read_bytes()).hexdigest(),
                                "max_abs_prob_diff": gap,
                                "batchnorm": f"re-estimated on {len(idx)} training faces"}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "split.json").write_text(json.dumps({"train": train.sources, "val": val.sources, "test": test.sources}))
    (out / "finished.json").write_text(json.dumps({"epochs": config["settings"]["epochs"], "recovered": True}))
    report = classification_report(test.labels, probs.argmax(1), EMOTIONS)
    report.update({"split": "test", "source": split_desc["test"]["source"], "params": int(model.count_params())})
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {out}: test accuracy {report['accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
