"""End to end through the CLI, as a user runs it: train (and resume) -> export int8 -> bench.

Uses a small real FER2013 slice (15 faces per class) so it stays within seconds per step.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from conftest import SHARED_DATA, requires_data
from typer.testing import CliRunner

from edgeemo.cli import app
from edgeemo.manifest import read_manifest

FER = SHARED_DATA / "fer2013"
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
runner = CliRunner()

pytestmark = [
    pytest.mark.slow,
    requires_data("fer2013", "publictest"),
]


def _train(run: Path, epochs: int, *extra: str):
    args = ["train", "face", "--data", str(FER), "--out", str(run), "--epochs", str(epochs)]
    args += ["--limit-per-class", "15", "--batch-size", "32", *extra]
    return runner.invoke(app, args, env=ENV)


def _history_epochs(run: Path) -> list[int]:
    with (run / "history.csv").open() as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("pipeline") / "run"
    first = _train(run, 1)
    assert first.exit_code == 0, first.output
    assert _history_epochs(run) == [0]
    # Same command, more epochs: resumes from last.keras instead of starting over.
    second = _train(run, 2)
    assert second.exit_code == 0, second.output
    assert "resuming" in second.output
    return run


def test_training_run_writes_everything_a_user_needs(run_dir):
    for name in ("config.json", "split.json", "history.csv", "curves.png", "last.keras", "last.weights.npz",
                 "best.keras", "metrics.json"):
        assert (run_dir / name).is_file(), name
    config = json.loads((run_dir / "config.json").read_text())
    assert config["preprocessing"]["size"] == 48 and config["labels"][1] == "disgust"
    # publictest/ is the test set; validation is cut from train/, never from the test set.
    split = json.loads((run_dir / "split.json").read_text())
    assert all("/publictest/" in s for s in split["test"])
    assert not set(split["val"]) & set(split["test"]) and not set(split["train"]) & set(split["val"])
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["n"] == 7 * 15 and 0.0 <= metrics["accuracy"] <= 1.0


def test_resume_continues_the_history(run_dir):
    assert _history_epochs(run_dir) == [0, 1]
    # the resume asked for 2 epochs instead of 1: the record holds the new plan and when it changed
    config = json.loads((run_dir / "config.json").read_text())
    assert config["settings"]["epochs"] == 2
    assert config["resumes"] == [{"after_epoch": 1, "changed": {"settings.epochs": [1, 2]}}]


def test_a_run_folder_carried_without_its_keras_files_resumes_from_the_weights(run_dir, tmp_path):
    # what travels between machines: config, history and last.weights.npz (no optimizer)
    carried = tmp_path / "carried"
    carried.mkdir()
    for name in ("config.json", "history.csv", "last.weights.npz"):
        shutil.copy(run_dir / name, carried / name)
    result = _train(carried, 3)
    assert result.exit_code == 0, result.output
    assert "weights only" in result.output
    assert _history_epochs(carried) == [0, 1, 2]
    assert (carried / "best.keras").is_file() and (carried / "last.keras").is_file()
    # the split is re-cut from the run's seed: the same faces as the original folder's
    assert json.loads((carried / "split.json").read_text()) == json.loads((run_dir / "split.json").read_text())
    # a third of last.keras: the weights, not Adam's two moments
    assert (run_dir / "last.weights.npz").stat().st_size < 0.5 * (run_dir / "last.keras").stat().st_size


def test_weight_averaging_keeps_each_epoch_then_averages_and_recalibrates(run_dir, tmp_path):
    import numpy as np
    from conftest import one_line_error

    # a constant-rate continuation of the finished run that keeps every epoch's weights
    swa = tmp_path / "swa"
    args = ["--init-from", str(run_dir / "best.keras"), "--schedule", "constant", "--lr", "1e-4",
            "--keep-epoch-weights"]
    result = _train(swa, 2, *args)
    assert result.exit_code == 0, result.output
    kept = sorted((swa / "epochs").iterdir())
    assert [p.name for p in kept] == ["000.weights.npz", "001.weights.npz"]
    with np.load(kept[1]) as last_epoch, np.load(swa / "last.weights.npz") as last:
        assert all(np.array_equal(last_epoch[k], last[k]) for k in last.files)

    result = runner.invoke(app, ["train", "average", str(swa), *map(str, kept), "--out", str(tmp_path / "avg")],
                           env=ENV)
    assert result.exit_code == 0, result.output
    import keras

    averaged = keras.models.load_model(tmp_path / "avg" / "best.keras").get_weights()
    with np.load(kept[0]) as a, np.load(kept[1]) as b:
        for i, w in enumerate(averaged):
            np.testing.assert_allclose(w, (a[f"arr_{i}"].astype(np.float64) + b[f"arr_{i}"]) / 2, rtol=1e-6)
    config = json.loads((tmp_path / "avg" / "config.json").read_text())
    assert config["weight_average"]["n"] == 2 and config["settings"]["schedule"] == "constant"
    # SWA's last step: the averaged statistics are stale, recalibration replaces them and checks validation
    result = runner.invoke(app, ["train", "recalibrate", str(tmp_path / "avg"), "--out", str(tmp_path / "avg-bn"),
                                 "--keep-worse"], env=ENV)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "avg-bn" / "metrics.json").is_file()
    # the model card says how the weights came to be
    result = runner.invoke(app, ["export", str(tmp_path / "avg-bn"), "--quantize", "none", "--format", "tflite",
                                 "--out", str(tmp_path / "models"), "--name", "avg"], env=ENV)
    assert result.exit_code == 0, result.output
    training = read_manifest(tmp_path / "models" / "avg-float.tflite.json").training
    assert training["weight_average"]["n"] == 2 and training["batchnorm_recalibration"]["layers"] > 0

    # weights of something else: one line naming the file
    bad = tmp_path / "bad.weights.npz"
    np.savez(bad, np.zeros(3))
    line = one_line_error(runner.invoke(app, ["train", "average", str(swa), str(kept[0]), str(bad), "--out",
                                              str(tmp_path / "avg2")], env=ENV))
    assert str(bad) in line and not (tmp_path / "avg2").exists()


def test_a_resumed_run_draws_new_batches_instead_of_replaying_its_first_epochs(tmp_path, monkeypatch):
    # tf.data and Keras' random layers start over in every process: seeded like the start, a
    # resume replayed epoch 0's shuffled, augmented faces, which the model had already fitted
    from edgeemo.train import face
    from edgeemo.train.run import stream_seed

    seeds = []
    real = face.make_dataset

    def spy(x, y, batch, augment, seed, **kwargs):
        if augment is not None:
            seeds.append(seed)
        return real(x, y, batch, augment, seed, **kwargs)

    augmenters = []
    real_augmenter = face.face_augmenter

    def spy_augmenter(cfg, seed=0):
        augmenters.append(seed)
        return real_augmenter(cfg, seed)

    monkeypatch.setattr(face, "make_dataset", spy)
    monkeypatch.setattr(face, "face_augmenter", spy_augmenter)
    run = tmp_path / "run"
    assert _train(run, 1, "--seed", "3").exit_code == 0
    split = (run / "split.json").read_text()
    assert _train(run, 2, "--seed", "3").exit_code == 0
    assert seeds == augmenters == [3, stream_seed(3, 1)] and seeds[1] != 3  # shuffle and augmentation
    assert (run / "split.json").read_text() == split  # the split still comes from --seed
    assert _history_epochs(run) == [0, 1]


def test_rerunning_a_finished_run_evaluates_without_training(run_dir):
    assert json.loads((run_dir / "finished.json").read_text())["trained_epochs"] == 2
    result = _train(run_dir, 2)
    assert result.exit_code == 0, result.output
    assert "already finished" in result.output
    assert _history_epochs(run_dir) == [0, 1]


def test_resume_into_a_different_run_is_refused(run_dir):
    result = _train(run_dir, 3, "--arch", "mobilenetv3-small")
    assert result.exit_code == 1
    assert "different run" in result.output and "Traceback" not in result.output


def test_export_then_bench_float_and_int8(run_dir, tmp_path):
    out = tmp_path / "models"
    result = runner.invoke(
        app,
        ["export", str(run_dir), "--quantize", "int8", "--format", "tflite", "--out", str(out), "--name", "tiny"]
        + ["--force"],  # a 2-epoch model is near chance: the accuracy gate is tested in test_export
        env=ENV,
    )
    assert result.exit_code == 0, result.output
    int8, flt = out / "tiny-int8.tflite", out / "tiny-float.tflite"
    manifest = read_manifest(f"{int8}.json")
    assert manifest.quantization["mode"] == "int8"
    assert manifest.metrics["n"] == 7 * 15  # verified on the held-out slice
    assert manifest.training["epochs"] == 2 and manifest.training["resumes"][0]["after_epoch"] == 1
    report = tmp_path / "r.json"
    result = runner.invoke(
        app,
        ["bench", str(flt), str(int8), "--data", str(FER / "publictest"), "--limit-per-class", "5"]
        + ["--runs", "20", "--warmup", "2", "--json", str(report)],
        env=ENV,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    by_quant = {m["quantization"]: m for m in data["models"]}
    assert set(by_quant) == {"none", "int8"}
    for m in data["models"]:
        assert m["n"] == 35 and 0 <= m["accuracy"] <= 1
        assert m["latency_ms"]["p50"] <= m["latency_ms"]["p99"]
        assert set(m["per_class"]) >= {"disgust", "fear"}
    assert by_quant["int8"]["size_bytes"] < by_quant["none"]["size_bytes"] / 3


def test_distillation_targets_mix_labels_and_the_softened_teacher(run_dir):
    from types import SimpleNamespace

    import keras
    import numpy as np

    from edgeemo.face import FacePreprocessing
    from edgeemo.train.face import teacher_targets

    rng = np.random.default_rng(0)
    x = rng.random((20, 48, 48, 1)).astype(np.float32)
    train = SimpleNamespace(labels=np.arange(20) % 7)
    probs = keras.models.load_model(run_dir / "best.keras").predict(x, verbose=0)
    pre = FacePreprocessing()
    pure, info = teacher_targets(run_dir, train, x, set(), pre, weight=1.0, temperature=1.0)
    np.testing.assert_allclose(pure, probs / probs.sum(1, keepdims=True), atol=1e-5)
    assert info["teacher"] == str(run_dir) and info["teacher_params"] > 0
    mixed, _ = teacher_targets(run_dir, train, x, set(), pre, weight=0.5, temperature=1.0)
    np.testing.assert_allclose(mixed, 0.5 * keras.utils.to_categorical(train.labels, 7) + 0.5 * pure, atol=1e-5)
    hot, _ = teacher_targets(run_dir, train, x, set(), pre, weight=1.0, temperature=4.0)

    def entropy(p):
        return -(p * np.log(p)).sum(1)

    assert (entropy(hot) >= entropy(pure) - 1e-6).all()  # a higher temperature softens
    np.testing.assert_allclose(mixed.sum(1), 1.0, atol=1e-5)


def test_distilled_run_records_its_teacher_and_refuses_one_that_saw_its_validation_faces(run_dir, tmp_path):
    student = tmp_path / "student"
    result = _train(student, 1, "--teacher", str(run_dir), "--teacher-weight", "0.7", "--camera-p", "0.3")
    assert result.exit_code == 0, result.output
    config = json.loads((student / "config.json").read_text())
    assert config["distillation"]["teacher"] == str(run_dir) and config["distillation"]["weight"] == 0.7
    assert config["camera_augmentation"]["p"] == 0.3  # the teacher's targets through the simulated camera
    # another train/val cut: the teacher trained on faces this run validates on
    result = _train(tmp_path / "leaky", 1, "--teacher", str(run_dir), "--split-seed", "5")
    assert result.exit_code == 1
    assert "teacher trained on" in result.output and "split.json" in result.output
    assert "Traceback" not in result.output


@requires_data("fer2013", "train")
def test_bfloat16_training_is_recorded_and_does_not_leak_into_later_models(tmp_path):
    """A mixed-precision run trains bfloat16 layers, says so in config.json, times its epochs
    in history.csv, and leaves Keras' process-wide policy as it found it; export makes it float32."""
    import keras

    from edgeemo.export.pipeline import float32_model
    from edgeemo.train.face import train_face
    from edgeemo.train.run import TrainSettings

    run = tmp_path / "run"
    train_face(FER, run, settings=TrainSettings(epochs=1, batch_size=32, precision="mixed_bfloat16"),
               limit_per_class=6)
    config = json.loads((run / "config.json").read_text())
    assert config["settings"]["precision"] == "mixed_bfloat16" and "mixed_bfloat16" in config["hardware"]
    with (run / "history.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and float(rows[0]["epoch_seconds"]) > 0
    assert keras.config.dtype_policy().name == "float32"
    model = keras.models.load_model(run / "best.keras", compile=False)
    assert model.get_layer("b0_conv0").compute_dtype == "bfloat16"
    converted, mixed = float32_model(model)
    assert mixed == "mixed_bfloat16" and converted.get_layer("b0_conv0").compute_dtype == "float32"
