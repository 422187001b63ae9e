"""`edgeemo train ensemble`: one flat model that is exactly the mean of its members (voice or face),
chosen on validation samples, refusing members that do not share the front end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import one_line_error
from typer.testing import CliRunner

from edgeemo.audio import AudioFeatures, RunningStats
from edgeemo.cli import app
from edgeemo.errors import EdgeemoError
from edgeemo.labels import EMOTIONS
from edgeemo.voice import VoicePreprocessing

pytest.importorskip("keras")
pytestmark = pytest.mark.slow
FEATURES = AudioFeatures(window_s=0.5, n_mfcc=13)


def fake_run(path, arch: str, seed: int, mean_shift: float = 0.0):
    """A finished voice run folder as `train voice` leaves it (tiny model, cached features)."""
    import keras

    from edgeemo.train.voice_models import build_voice_model

    rng = np.random.default_rng(0)  # the same clips for every run
    shape = FEATURES.n_frames, FEATURES.n_features
    x = {k: rng.normal(size=(n, *shape)).astype(np.float32) for k, n in (("val", 21), ("test", 14))}
    y = {k: np.arange(len(v)) % len(EMOTIONS) for k, v in x.items()}
    stats = RunningStats().update(rng.normal(mean_shift, 1.0, size=(50, shape[1])))
    keras.utils.set_random_seed(seed)
    path.mkdir()
    build_voice_model(arch, shape).save(path / "best.keras")
    config = {
        "task": "voice",
        "arch": arch,
        "labels": list(EMOTIONS),
        "input_shape": list(shape),
        "data": ["corpus"],
        "preprocessing": VoicePreprocessing.from_stats(FEATURES, stats).to_dict(),
        "split": {"protocol": "speaker-independent", "test": {"source": "speakers x:9"}},
    }
    (path / "config.json").write_text(json.dumps(config))
    (path / "split.json").write_text(json.dumps({"train": ["a.wav"], "val": ["v.wav"], "test": ["t.wav"]}))
    np.savez(path / "features.npz", x_val=x["val"], y_val=y["val"], x_test=x["test"], y_test=y["test"])
    return path


def test_ensemble_is_the_mean_of_its_members_in_one_flat_unrollable_graph(tmp_path):
    import keras

    from edgeemo.export.tflite import unrolled
    from edgeemo.train.ensemble import build_ensemble, load_members

    runs = [fake_run(tmp_path / "a", "conv1d", 1), fake_run(tmp_path / "b", "crnn", 2)]
    report = build_ensemble(runs, tmp_path / "ens")
    model = keras.models.load_model(tmp_path / "ens" / "best.keras")
    members = load_members(runs)
    x = members[0].pre.standardize(members[0].x["test"])
    expected = np.mean([m.model.predict(x, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)
    # flat: the members' layers sit at the top level, so export can unroll the LSTM
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    np.testing.assert_allclose(unrolled(model).predict(x, verbose=0), expected, atol=1e-5)
    config = json.loads((tmp_path / "ens" / "config.json").read_text())
    assert config["arch"] == "ensemble(conv1d+crnn)" and len(config["ensemble"]["members"]) == 2
    assert config["preprocessing"] == members[0].pre.to_dict()
    assert report["params"] == sum(m.model.count_params() for m in members)


def test_search_picks_by_validation_within_the_parameter_budget(tmp_path):
    from edgeemo.train.ensemble import load_members, scores

    runs = [fake_run(tmp_path / n, "conv1d", s) for n, s in (("a", 1), ("b", 2), ("c", 3))]
    members = load_members(runs)
    one = int(members[0].model.count_params())
    rows = scores(members, (1, 2, 3), max_params=2 * one)
    assert {len(r["members"]) for r in rows} == {1, 2}  # three members exceed the budget
    vals = [r["val_accuracy"] for r in rows]
    assert vals == sorted(vals, reverse=True)


def test_members_with_another_front_end_are_refused_naming_the_run(tmp_path):
    from edgeemo.train.ensemble import load_members

    a = fake_run(tmp_path / "a", "conv1d", 1)
    b = fake_run(tmp_path / "b", "conv1d", 2, mean_shift=3.0)  # other standardisation statistics
    with pytest.raises(EdgeemoError, match="preprocessing differs") as err:
        load_members([a, b])
    assert str(b) in str(err.value)
    args = ["train", "ensemble", str(a), str(b), "--out", str(tmp_path / "e")]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert "preprocessing differs" in one_line_error(result)


def fake_face_run(path, root, seed: int):
    """A finished face run on a FER-style folder (train/ and publictest/ by emotion)."""
    import keras

    from edgeemo.face import FacePreprocessing

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    path.mkdir()
    keras.Model(inputs, keras.layers.Dense(len(EMOTIONS), activation="softmax")(x)).save(path / "best.keras")
    train = sorted(str(p) for p in (root / "train").rglob("*.png"))
    config = {
        "task": "face", "arch": "tiny-cnn", "labels": list(EMOTIONS), "input_shape": [48, 48, 1],
        "data": str(root), "test_data": None, "preprocessing": FacePreprocessing().to_dict(),
        "split": {"protocol": "official split", "test": {"source": str(root / "publictest")}},
    }
    (path / "config.json").write_text(json.dumps(config))
    test = sorted(str(p) for p in (root / "publictest").rglob("*.png"))
    (path / "split.json").write_text(json.dumps({"train": train[::2], "val": train[1::2], "test": test}))
    return path


def test_face_runs_ensemble_on_the_val_and_test_images_of_their_split(tmp_path):
    import cv2
    import keras

    from edgeemo.train.ensemble import build_ensemble

    rng = np.random.default_rng(0)
    root = tmp_path / "fer"
    for split, n in (("train", 4), ("publictest", 3)):
        for label in EMOTIONS:
            (root / split / label).mkdir(parents=True)
            for i in range(n):
                cv2.imwrite(str(root / split / label / f"{i}.png"), rng.integers(0, 255, (48, 48), np.uint8))
    runs = [fake_face_run(tmp_path / "a", root, 1), fake_face_run(tmp_path / "b", root, 2)]
    report = build_ensemble(runs, tmp_path / "ens")
    assert report["n"] == 3 * len(EMOTIONS)
    model = keras.models.load_model(tmp_path / "ens" / "best.keras")
    image = cv2.imread(str(root / "publictest" / "happy" / "0.png"), cv2.IMREAD_GRAYSCALE)
    x = (image / 255.0).astype(np.float32)[None, :, :, None]
    members = [keras.models.load_model(r / "best.keras") for r in runs]
    expected = np.mean([m.predict(x, verbose=0) for m in members], axis=0)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)


def fer_folder(root, rng):
    import cv2

    for split, n in (("train", 4), ("publictest", 3)):
        for label in EMOTIONS:
            (root / split / label).mkdir(parents=True)
            for i in range(n):
                cv2.imwrite(str(root / split / label / f"{i}.png"), rng.integers(0, 255, (48, 48), np.uint8))
    return root


def test_mirror_averaging_is_the_mean_over_the_face_and_its_mirror_image_at_the_same_size(tmp_path):
    import keras

    from edgeemo.export.tflite import convert_tflite
    from edgeemo.runtime import open_model
    from edgeemo.train.ensemble import build_ensemble

    rng = np.random.default_rng(0)
    root = fer_folder(tmp_path / "fer", rng)
    run = fake_face_run(tmp_path / "a", root, 1)
    inputs = keras.Input((48, 48, 1))  # weights that dominate the file: 44k parameters in the dense layers
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    h = keras.layers.Dense(4000, activation="relu")(h)
    decisive = keras.initializers.RandomNormal(stddev=1.0)  # outputs far from uniform
    outputs = keras.layers.Dense(len(EMOTIONS), activation="softmax", kernel_initializer=decisive)(h)
    keras.Model(inputs, outputs).save(run / "best.keras")
    report = build_ensemble([run], tmp_path / "mirror", mirror=True)
    model = keras.models.load_model(tmp_path / "mirror" / "best.keras")
    member = keras.models.load_model(run / "best.keras")
    saw = (np.arange(48) % 4 / 3)[None, None, :, None]  # rising teeth: falling in the mirror image
    x = (0.8 * saw + 0.2 * rng.random((5, 48, 48, 1))).astype(np.float32)
    expected = (member.predict(x, verbose=0) + member.predict(x[:, :, ::-1], verbose=0)) / 2
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)
    assert not np.allclose(member.predict(x, verbose=0), expected, atol=1e-4)  # the mirror view matters
    assert report["params"] == member.count_params() + 48 * 48  # shared weights + the fixed flip
    config = json.loads((tmp_path / "mirror" / "config.json").read_text())
    assert config["arch"] == "tiny-cnn+mirror" and config["ensemble"]["mirror"] is True
    # full-integer TFLite: the flip is a 0/1 matrix, exact in int8; the file holds the weights once
    int8 = tmp_path / "m.tflite"
    int8.write_bytes(convert_tflite(model, "int8", rng.random((32, 48, 48, 1)).astype(np.float32)))
    single = convert_tflite(member, "int8", rng.random((32, 48, 48, 1)).astype(np.float32))
    assert int8.stat().st_size < len(single) + 16_000  # not twice 44k weights
    # static shapes only: a Dense over the width made SHAPE/GATHER/PACK/... for the dynamic
    # batch, ops that delegates needing a static graph may not take
    import tensorflow as tf

    ops = {op["op_name"] for op in tf.lite.Interpreter(model_path=str(int8))._get_ops_details()}
    assert "TRANSPOSE" in ops and not ops & {"SHAPE", "GATHER", "PACK", "REDUCE_PROD", "STRIDED_SLICE"}
    runner = open_model(int8, probe="never")
    got = runner.predict(x)
    assert np.abs(got - expected).max() < 0.05


def test_mirror_is_refused_for_voice_naming_the_run(tmp_path):
    from edgeemo.train.ensemble import load_members

    run = fake_run(tmp_path / "a", "conv1d", 1)
    with pytest.raises(EdgeemoError, match="faces only") as err:
        load_members([run], mirror=True)
    assert str(run) in str(err.value)
