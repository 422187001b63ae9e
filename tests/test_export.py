"""The export stage: float + int8 TFLite/ONNX files with manifests, verified against their parents.

The slow tests train a tiny face model on a small real FER2013 slice (1 epoch, 20 faces per
class) and export it once for the whole module.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import one_line_error
from typer.testing import CliRunner

from edgeemo.cli import app
from edgeemo.errors import EdgeemoError
from edgeemo.export.calibration import balanced_indices, stratified_indices
from edgeemo.export.verify import check_gate, compare
from edgeemo.manifest import read_manifest, sha256_of

ROOT = Path(__file__).parents[1]
FER = ROOT.parent / "shared" / "data" / "fer2013"
WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}
runner = CliRunner()


# --- fast: no TensorFlow ------------------------------------------------------------------


def test_export_stage_imports_only_the_core():
    for path in (ROOT / "export").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("edgeemo.train", "edgeemo.device")), (path, name)


def test_balanced_indices_are_class_balanced_and_seeded():
    labels = np.array([0] * 100 + [1] * 5 + [2] * 50)
    idx = balanced_indices(labels, 60)
    counts = np.bincount(labels[idx], minlength=3)
    assert len(idx) == 60 and counts[1] == 5  # the small class gives all it has
    assert abs(int(counts[0]) - int(counts[2])) <= 1  # the rest is shared evenly
    assert np.array_equal(idx, balanced_indices(labels, 60))
    assert len(balanced_indices(labels, 1000)) == len(labels)


def test_stratified_indices_keep_proportions():
    labels = np.array([0] * 300 + [1] * 100)
    idx = stratified_indices(labels, 40)
    assert np.bincount(labels[idx]).tolist() == [30, 10]
    assert len(stratified_indices(labels, None)) == 400


def test_compare_measures_agreement_and_prob_diffs():
    y = np.array([0, 1, 1, 0])
    pf = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]], np.float32)
    pq = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.7, 0.3]], np.float32)
    m = compare(y, pf, pq, ["a", "b"])
    assert m["n"] == 4 and m["accuracy_float"] == 1.0 and m["accuracy_quantized"] == 0.75
    assert m["top1_agreement"] == 0.75
    assert m["max_abs_prob_diff"] == pytest.approx(0.2)
    assert m["per_class_recall_quantized"] == {"a": 1.0, "b": 0.5}


def test_accuracy_gate_raises_one_line_naming_the_file_and_numbers():
    metrics = {"n": 3589, "accuracy_float": 0.6500, "accuracy_quantized": 0.6350}
    with pytest.raises(EdgeemoError) as info:
        check_gate(metrics, "models/face-int8.tflite")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("models/face-int8.tflite: ")
    for number in ("63.50%", "65.00%", "1.50 points", "3589"):
        assert number in message
    assert "--force" in message


def test_accuracy_gate_passes_within_the_limit_and_records_force():
    ok = {"n": 10, "accuracy_float": 0.650, "accuracy_quantized": 0.641}
    assert check_gate(ok, "m.tflite") is True
    assert ok["gate"]["passed"] and ok["forced"] is False
    bad = {"n": 10, "accuracy_float": 0.650, "accuracy_quantized": 0.600}
    assert check_gate(bad, "m.tflite", force=True) is False
    assert bad["forced"] is True and bad["gate"]["passed"] is False
    assert check_gate(dict(bad), "m.tflite", max_drop=6.0) is True


def test_onnx_activation_choice_is_the_faster_passing_one_with_a_tie_rule():
    from edgeemo.export.pipeline import choose_activations

    def m(p50, acc, ok=True):
        return {"p50_ms": p50, "accuracy": acc, "passes_gate": ok}

    assert choose_activations({"uint8": m(1.0, 0.60), "int8": m(1.5, 0.61)})[0] == "uint8"
    assert choose_activations({"uint8": m(1.0, 0.60, False), "int8": m(1.5, 0.61)})[0] == "int8"
    # p50s within 5%: noise; the more accurate wins, then int8
    assert choose_activations({"uint8": m(1.00, 0.62), "int8": m(1.02, 0.61)})[0] == "uint8"
    assert choose_activations({"uint8": m(1.00, 0.61), "int8": m(1.02, 0.61)})[0] == "int8"
    choice, reason = choose_activations({"uint8": m(1.0, 0.5, False), "int8": m(1.0, 0.4, False)})
    assert choice == "uint8" and "none passed" in reason


@pytest.mark.parametrize("source", ["/nonexistent/run", "/x/[run]"])
def test_cli_export_bad_path_is_one_clean_line(tmp_path, source):
    result = runner.invoke(app, ["export", source, "--out", str(tmp_path / "out")], env=WIDE)
    line = one_line_error(result)
    assert source in line
    assert not (tmp_path / "out").exists()


def test_cli_export_bad_options_are_one_clean_line(tmp_path):
    (tmp_path / "m.h5").write_bytes(b"x")
    line = one_line_error(runner.invoke(app, ["export", str(tmp_path / "m.h5"), "--out", str(tmp_path)], env=WIDE))
    assert "m.h5" in line
    line = one_line_error(runner.invoke(app, ["export", str(tmp_path), "--out", "o", "--format", "pb"], env=WIDE))
    assert "--format" in line
    keras_file = tmp_path / "bare.keras"
    keras_file.write_bytes(b"not a model")
    line = one_line_error(runner.invoke(app, ["export", str(keras_file), "--out", "o"], env=WIDE))
    assert "--data" in line


def test_cli_export_run_with_missing_data_is_one_clean_line(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.keras").write_bytes(b"never loaded")
    (run / "split.json").write_text(json.dumps({"train": ["a.jpg"], "val": [], "test": ["b.jpg"]}))
    config = {"task": "face", "data": str(tmp_path / "moved"), "preprocessing": {"kind": "face"}}
    (run / "config.json").write_text(json.dumps(config))
    line = one_line_error(runner.invoke(app, ["export", str(run), "--out", "o"], env=WIDE))
    assert "config.json" in line and "--data" in line


def test_cli_export_help_is_useful():
    result = runner.invoke(app, ["export", "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    for option in (
        "--quantize",
        "--format",
        "--out",
        "--calib-size",
        "--verify-size",
        "--force",
        "--onnx-activations",
        "--data",
    ):
        assert option in result.output


# --- slow: a tiny real model, exported once ---------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    if not (FER / "train").is_dir() or not (FER / "publictest").is_dir():
        pytest.skip(f"FER2013 (train/ and publictest/) not found at {FER}")
    from edgeemo.export.pipeline import export_run
    from edgeemo.train.face import train_face
    from edgeemo.train.run import TrainSettings

    root = tmp_path_factory.mktemp("export")
    run = root / "run"
    train_face(FER, run, settings=TrainSettings(epochs=1, batch_size=32), limit_per_class=20)
    out = root / "out"
    # force: a 1-epoch model is near chance; the gate itself is tested separately.
    summary = export_run(run, out, name="tiny", force=True)
    return run, out, summary


FILES = ("tiny-float.tflite", "tiny-int8.tflite", "tiny-float.onnx", "tiny-int8.onnx")


@pytest.mark.slow
def test_export_writes_all_files_with_valid_manifests(exported):
    run, out, summary = exported
    config = json.loads((run / "config.json").read_text())
    run_metrics = json.loads((run / "metrics.json").read_text())
    assert sorted(Path(r["file"]).name for r in summary["files"]) == sorted(FILES)
    for name in FILES:
        path = out / name
        assert path.is_file()
        manifest = read_manifest(out / f"{name}.json")
        assert manifest.sha256 == sha256_of(path)
        assert manifest.size_bytes == path.stat().st_size
        assert manifest.model_file == name and manifest.task == "face"
        assert manifest.labels == config["labels"]
        assert manifest.preprocessing == config["preprocessing"]
        assert manifest.input["shape"] == [None, 48, 48, 1] and manifest.input["layout"] == "NHWC"
        assert manifest.training["arch"] == config["arch"]
        assert manifest.training["test_accuracy"] == run_metrics["accuracy"]
        assert manifest.metrics["n"] == config["split"]["test"]["n"]
        if "-int8" in name:
            q = manifest.quantization
            assert q["mode"] == "int8"
            assert q["calibration"]["class_balanced"] is True
            assert q["calibration"]["n"] == config["split"]["train"]["n"]  # fewer than 500
            assert q["parent"]["file"] == name.replace("-int8", "-float")
            for key in (
                "accuracy_float",
                "accuracy_quantized",
                "macro_f1_float",
                "macro_f1_quantized",
                "top1_agreement",
                "max_abs_prob_diff",
                "mean_abs_prob_diff",
                "per_class_recall_float",
                "per_class_recall_quantized",
                "forced",
            ):
                assert key in manifest.metrics, key
        else:
            assert manifest.quantization["mode"] == "none"
            assert "accuracy" in manifest.metrics
            assert manifest.metrics["vs_keras"]["top1_agreement"] > 0.99


@pytest.mark.slow
def test_int8_tflite_input_is_lossless_int8(exported):
    from edgeemo.runtime import open_model

    _, out, _ = exported
    runner_ = open_model(out / "tiny-int8.tflite")
    assert runner_.input.dtype == "int8" and runner_.output.dtype == "int8"
    assert runner_.input.scale == pytest.approx(1 / 255, rel=1e-4)
    assert runner_.input.zero_point == -128
    manifest = read_manifest(out / "tiny-int8.tflite.json")
    assert manifest.input["dtype"] == "int8" and manifest.input["zero_point"] == -128
    assert manifest.quantization["input_quantization"]["lossless"] is True


@pytest.mark.slow
def test_int8_models_agree_with_their_float_parents(exported):
    from edgeemo.export.calibration import export_samples, resolve_source
    from edgeemo.export.verify import predict_file

    run, out, _ = exported
    _, verify = export_samples(resolve_source(run))
    for fmt in ("tflite", "onnx"):
        p_float = predict_file(out / f"tiny-float.{fmt}", verify.x)
        p_int8 = predict_file(out / f"tiny-int8.{fmt}", verify.x)
        assert np.abs(p_float - p_int8).max() < 0.05
        # A 1-epoch model's class probabilities are nearly tied, closer than int8 resolves,
        # so agreement counts the int8 pick when it is within 0.01 of the float top score.
        picked = p_float[np.arange(len(p_float)), p_int8.argmax(1)]
        agree = np.mean(picked >= p_float.max(1) - 0.01)
        assert agree >= 0.9, (fmt, agree)


@pytest.mark.slow
def test_onnx_activation_types_were_both_measured(exported):
    _, out, _ = exported
    selection = read_manifest(out / "tiny-int8.onnx.json").quantization["activation_selection"]
    assert set(selection["candidates"]) == {"uint8", "int8"}
    assert selection["chosen"] in ("uint8", "int8")
    for m in selection["candidates"].values():
        assert m["p50_ms"] > 0 and 0 <= m["accuracy"] <= 1


@pytest.mark.slow
def test_failing_gate_removes_the_model_and_raises(exported, tmp_path):
    from edgeemo.export.pipeline import export_run

    run, _, _ = exported
    with pytest.raises(EdgeemoError) as info:
        export_run(run, tmp_path, formats=["tflite"], name="gate", max_drop=-100.0)
    assert "gate-int8.tflite" in str(info.value) and "\n" not in str(info.value)
    assert (tmp_path / "gate-float.tflite.json").is_file()  # the float parent stays
    assert not (tmp_path / "gate-int8.tflite").exists()
    assert not (tmp_path / "gate-int8.tflite.json").exists()


@pytest.mark.slow
def test_cli_export_float_only(exported, tmp_path):
    run, _, _ = exported
    result = runner.invoke(
        app,
        [
            "export",
            str(run),
            "--out",
            str(tmp_path),
            "--quantize",
            "none",
            "--format",
            "tflite",
            "--name",
            "cli",
            "--verify-size",
            "70",
        ],
        env=WIDE,
    )
    assert result.exit_code == 0, result.output
    assert "cli-float.tflite" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cli-float.tflite",
        "cli-float.tflite.json",
    ]
    assert read_manifest(tmp_path / "cli-float.tflite.json").metrics["n"] == 70


@pytest.mark.slow
def test_export_into_a_folder_with_an_earlier_export_replaces_its_manifests(exported, tmp_path):
    run, out, _ = exported
    # an earlier export's manifest: its sha256 describes another file
    stale = (out / "tiny-float.onnx.json").read_text().replace('"sha256": "', '"sha256": "0')
    (tmp_path / "again-float.onnx.json").write_text(stale)
    args = ["--quantize", "none", "--format", "onnx", "--name", "again", "--verify-size", "40"]
    result = runner.invoke(app, ["export", str(run), "--out", str(tmp_path), *args], env=WIDE)
    assert result.exit_code == 0, result.output
    manifest = read_manifest(tmp_path / "again-float.onnx.json")
    assert manifest.name == "again-float" and manifest.sha256 == sha256_of(tmp_path / "again-float.onnx")


@pytest.mark.slow
def test_mixed_precision_model_is_exported_in_float32(tmp_path):
    import keras

    from edgeemo.export.pipeline import float32_model

    inputs = keras.Input((48, 48, 1), name="face")
    x = keras.layers.Conv2D(4, 3, dtype="mixed_float16")(inputs)
    x = keras.layers.GlobalAveragePooling2D(dtype="mixed_float16")(x)
    outputs = keras.layers.Dense(7, activation="softmax", dtype="float32")(x)
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", compile=False)
    converted, mixed = float32_model(loaded)
    assert mixed == "mixed_float16"
    assert {layer.dtype_policy.name for layer in converted.layers} == {"float32"}
    x = np.random.default_rng(0).random((2, 48, 48, 1), dtype=np.float32)
    expected = loaded.predict(x, verbose=0)
    assert np.abs(converted.predict(x, verbose=0) - expected).max() < 1e-2
    assert float32_model(converted)[1] is None
