"""edgeemo.train.recover (used by benchmarks/release/recover_face_parent.py): a custom CNN exported to
float ONNX (BatchNorm folded by tf2onnx) is rebuilt as a Keras model that computes the same outputs, and
whose BatchNorm statistics are those of the data, so training mode computes nearly the same function too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")


def test_rebuilt_model_matches_its_onnx_export(tmp_path: Path) -> None:
    import onnxruntime as ort

    from edgeemo.export.onnx import convert_onnx
    from edgeemo.train.face_models import custom_cnn

    rng = np.random.default_rng(0)
    model = custom_cnn(dropout=0.3, block_dropout=0.1)
    for layer in model.layers:  # trained-looking BatchNorm parameters, so folding really changes the weights
        if layer.__class__.__name__ == "BatchNormalization":
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n), rng.normal(0, 0.3, n),
                               rng.uniform(0.2, 2.0, n)])
    onnx_file = convert_onnx(model, tmp_path / "face-float.onnx")

    from edgeemo.train.recover import onnx_weights, rebuild

    config = {"arch": "custom-cnn", "input_shape": [48, 48, 1], "bn_momentum": 0.99, "dropout": 0.3,
              "block_dropout": 0.1}
    faces = rng.uniform(0, 1, (96, 48, 48, 1)).astype(np.float32)
    rebuilt = rebuild(config, onnx_weights(onnx_file), faces[:64])

    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    reference = session.run(None, {session.get_inputs()[0].name: faces})[0]
    got = rebuilt.predict(faces, verbose=0)
    assert np.abs(got - reference).max() < 1e-4
    assert np.abs(got - model.predict(faces, verbose=0)).max() < 1e-4

    # Training mode (batch statistics) stays close to inference: each BatchNorm's moving
    # statistics are the statistics of its input. Dropout is off to compare like with like.
    for layer in rebuilt.layers:
        if layer.__class__.__name__ == "Dropout":
            layer.rate = 0.0
    batch = np.asarray(rebuilt(faces[:64], training=True))
    assert np.abs(batch - rebuilt.predict(faces[:64], verbose=0)).max() < 0.05


def test_split_is_recut_with_the_runs_split_seed() -> None:
    # The shipped face run trained with --seed 1 --split-seed 0: its validation faces are cut by 0.
    from edgeemo.train.recover import cut_seed

    assert cut_seed({"settings": {"seed": 1}, "split_seed": 0}) == 0
    assert cut_seed({"settings": {"seed": 1}, "split_seed": None}) == 1
    assert cut_seed({"settings": {"seed": 2}}) == 2
