"""`edgeemo train recalibrate`: BatchNorm statistics re-measured on un-augmented training faces in
inference mode, nothing else changed, and validation decides whether the result is written."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import one_line_error
from test_ensemble import fake_face_run, fake_run, fer_folder
from typer.testing import CliRunner

from edgeemo.cli import app
from edgeemo.errors import EdgeemoError
from edgeemo.labels import EMOTIONS

pytest.importorskip("keras")
pytestmark = pytest.mark.slow


def dropout_bn_model(seed: int = 0):
    """Conv -> Dropout -> BN -> nested block with its own BN -> softmax, BN statistics left wrong."""
    import keras

    keras.utils.set_random_seed(seed)
    inner_in = keras.Input((8,))
    inner = keras.Model(inner_in, keras.layers.BatchNormalization(name="inner_bn")(keras.layers.Dense(8)(inner_in)))
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(8, name="fc")(x)
    x = inner(x)
    model = keras.Model(inputs, keras.layers.Dense(len(EMOTIONS), activation="softmax", name="probs")(x))
    for layer in (model.get_layer("bn"), inner.get_layer("inner_bn")):
        gamma, beta, mean, var = layer.get_weights()
        layer.set_weights([gamma + 0.5, beta - 0.2, mean + 3.0, var * 7.0])  # learned scale kept, stats wrong
    return model


def test_each_batchnorm_gets_the_inference_mode_statistics_of_its_input_in_graph_order():
    import keras

    from edgeemo.train.recalibrate import recalibrate_batchnorm

    model = dropout_bn_model()
    gamma_before = [model.get_layer("bn").get_weights()[:2], model.layers[-2].get_layer("inner_bn").get_weights()[:2]]
    x = np.random.default_rng(0).random((300, 48, 48, 1)).astype(np.float32)
    assert recalibrate_batchnorm(model, x, batch_size=64) == 2
    conv_out = keras.Model(model.input, model.get_layer("conv").output).predict(x, verbose=0).reshape(-1, 4)
    _, _, mean, var = model.get_layer("bn").get_weights()
    np.testing.assert_allclose(mean, conv_out.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(var, conv_out.var(0), rtol=1e-3, atol=1e-6)  # dropout off: no variance shift
    inner = model.layers[-2]
    z = keras.Model(inner.input, inner.layers[1].output).predict(
        keras.Model(model.input, model.get_layer("fc").output).predict(x, verbose=0), verbose=0)  # outer BN set first
    _, _, mean, var = inner.get_layer("inner_bn").get_weights()
    np.testing.assert_allclose(mean, z.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(var, z.var(0), rtol=1e-3, atol=1e-6)
    for (g0, b0), layer in zip(gamma_before, (model.get_layer("bn"), inner.get_layer("inner_bn")), strict=True):
        g, b, *_ = layer.get_weights()
        np.testing.assert_array_equal(g, g0)  # learned scale and offset untouched
        np.testing.assert_array_equal(b, b0)


def face_run_with_bn(path, root):
    """A finished face run on a FER-style folder whose model has BN layers with wrong statistics."""
    fake_face_run(path, root, 0)
    dropout_bn_model().save(path / "best.keras")
    return path


def test_recalibrated_run_is_a_new_run_folder_with_the_statistics_of_its_own_training_faces(tmp_path):
    import keras

    from edgeemo.face import FacePreprocessing, preprocess_faces
    from edgeemo.face_datasets import load_faces
    from edgeemo.train.recalibrate import recalibrate_run

    root = fer_folder(tmp_path / "fer", np.random.default_rng(0))
    run = face_run_with_bn(tmp_path / "run", root)
    report = recalibrate_run(run, tmp_path / "bn", keep_worse=True)
    out = tmp_path / "bn"
    assert {"best.keras", "config.json", "split.json", "metrics.json", "finished.json"} <= {
        p.name for p in out.iterdir()}
    assert report["n"] == 3 * len(EMOTIONS)
    config = json.loads((out / "config.json").read_text())
    info = config["batchnorm_recalibration"]
    assert info["layers"] == 2 and info["faces"] == 14 and info["from_run"] == str(run)
    assert json.loads((out / "split.json").read_text()) == json.loads((run / "split.json").read_text())
    # the statistics are those of the run's training faces (not val, not test) through THE preprocessing
    train_sources = set(json.loads((run / "split.json").read_text())["train"])
    faces = load_faces(root, split="train")
    x = preprocess_faces([im for im, s in zip(faces.images, faces.sources, strict=True) if s in train_sources],
                         FacePreprocessing())
    model = keras.models.load_model(out / "best.keras")
    conv = keras.Model(model.input, model.get_layer("conv").output).predict(x, verbose=0).reshape(-1, 4)
    np.testing.assert_allclose(model.get_layer("bn").get_weights()[2], conv.mean(0), rtol=1e-4, atol=1e-5)
    assert not np.allclose(keras.models.load_model(run / "best.keras").get_layer("bn").get_weights()[2],
                           conv.mean(0), atol=1e-2)  # the source run is untouched


def test_a_drop_in_validation_accuracy_writes_nothing_unless_asked(tmp_path, monkeypatch):
    import keras

    from edgeemo.train import recalibrate

    root = fer_folder(tmp_path / "fer", np.random.default_rng(0))
    run = face_run_with_bn(tmp_path / "run", root)
    model = keras.models.load_model(run / "best.keras")
    w, b = model.get_layer("probs").get_weights()
    model.get_layer("probs").set_weights([w * 0, 10 * np.eye(len(EMOTIONS))[EMOTIONS.index("happy")]])
    model.save(run / "best.keras")  # before: always "happy", right on every face of the split below
    original = recalibrate.recalibrate_batchnorm

    def worse(model, x, batch_size=512):
        n = original(model, x, batch_size)
        if "probs" not in [layer.name for layer in model.layers]:  # the nested block's own call
            return n
        layer = model.get_layer("probs")
        w, b = layer.get_weights()
        layer.set_weights([w * 0, 10 * np.eye(len(EMOTIONS))[EMOTIONS.index("disgust")]])  # always wrong
        return n

    monkeypatch.setattr(recalibrate, "recalibrate_batchnorm", worse)
    monkeypatch.setattr(recalibrate, "split_faces", lambda config, split, run: _always_happy(root))
    with pytest.raises(EdgeemoError, match="lowered validation accuracy") as err:
        recalibrate.recalibrate_run(run, tmp_path / "bn")
    assert str(run) in str(err.value) and not (tmp_path / "bn").exists()


def _always_happy(root):
    """Split faces where every label is 'happy', so a model predicting 'disgust' scores 0."""
    import cv2

    images = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted((root / "train").rglob("*.png"))]
    happy = EMOTIONS.index("happy")
    labels = np.full(len(images), happy, np.int64)
    return {name: (images, labels) for name in ("train", "val", "test")}


def test_cli_refuses_voice_runs_and_overwriting_the_run_with_one_line_errors(tmp_path):
    runner = CliRunner()
    voice = fake_run(tmp_path / "voice", "conv1d", 1)
    result = runner.invoke(app, ["train", "recalibrate", str(voice), "--out", str(tmp_path / "x")])
    assert result.exit_code != 0 and "not 'face'" in one_line_error(result)
    root = fer_folder(tmp_path / "fer", np.random.default_rng(0))
    face = face_run_with_bn(tmp_path / "face", root)
    result = runner.invoke(app, ["train", "recalibrate", str(face), "--out", str(face)])
    assert result.exit_code != 0 and "new folder" in one_line_error(result)
    result = runner.invoke(app, ["train", "recalibrate", str(tmp_path / "nope"), "--out", str(tmp_path / "y")])
    assert result.exit_code != 0 and "config.json" in one_line_error(result)
