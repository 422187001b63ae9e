"""`edgeemo bench` / `edgeemo predict` and the shipped-model registry.

Fast tests use a tiny ONNX model written with onnx.helper (no TensorFlow); the slow test
converts a tiny Keras model to float and int8 TFLite and benchmarks them side by side in a
process where `import tensorflow` fails.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import one_line_error, run_cli_without_tf
from typer.testing import CliRunner

from edgeemo import shipped
from edgeemo.errors import EdgeemoError
from edgeemo.face import FacePreprocessing
from edgeemo.labels import EMOTIONS
from edgeemo.manifest import Manifest, manifest_path, write_manifest

runner = CliRunner()
WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}
PER_CLASS = 3
N_IMAGES = PER_CLASS * len(EMOTIONS)


def _needs(*modules: str) -> None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module}")


def _manifest(path: Path, fmt: str, quant: str, input_spec: dict, classes: int = 7) -> Path:
    write_manifest(
        Manifest(
            task="face",
            labels=list(EMOTIONS),
            model_file="",
            format=fmt,
            sha256="",
            size_bytes=0,
            input=input_spec,
            output={"shape": [None, classes], "dtype": "float32"},
            preprocessing=FacePreprocessing().to_dict(),
            quantization={"mode": quant},
            metrics={"accuracy": 0.5},
            name=path.stem,
        ),
        path,
    )
    return path


def make_onnx(path: Path, shape: tuple[int, ...] = (48, 48, 1), classes: int = 7) -> Path:
    """A linear softmax classifier as ONNX, written without TensorFlow."""
    _needs("onnx", "onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    d = int(np.prod(shape))
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(np.array([-1, d], np.int64), "flat_shape"),
        numpy_helper.from_array(rng.normal(0, 0.05, (d, classes)).astype(np.float32), "w"),
        numpy_helper.from_array(np.zeros(classes, np.float32), "b"),
    ]
    nodes = [
        helper.make_node("Reshape", ["face", "flat_shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["logits0"]),
        helper.make_node("Add", ["logits0", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("face", TensorProto.FLOAT, ["N", *shape])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", classes])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<emotion>/ folders of small faces: gray jpg, colour png, and an odd-sized gray png."""
    root = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(1)
    for i, emotion in enumerate(EMOTIONS):
        folder = root / emotion
        folder.mkdir()
        base = np.clip(rng.normal(30 + 30 * i, 20, (48, 48)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / "a.jpg"), base)
        cv2.imwrite(str(folder / "b.png"), cv2.cvtColor(cv2.resize(base, (64, 64)), cv2.COLOR_GRAY2BGR))
        cv2.imwrite(str(folder / "c.png"), cv2.resize(base, (90, 100)))
    return root


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("onnx")
    path = make_onnx(folder / "tiny-float.onnx")
    return _manifest(path, "onnx", "none", {"shape": [None, 48, 48, 1], "dtype": "float32"})


def _run_cli_without_tf(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return run_cli_without_tf(args, cwd, env=WIDE)


def _check_report(report: dict, n_models: int, n: int) -> None:
    for key in ("edgeemo_version", "date", "machine", "data", "n", "models"):
        assert key in report
    assert report["n"] == n
    assert report["machine"]["cores"] >= 1 and report["machine"]["cpu"]
    assert report["tensorflow_imported"] is False
    assert len(report["models"]) == n_models
    for m in report["models"]:
        for key in (
            "model", "path", "format", "backend", "quantization", "threads", "n", "accuracy",
            "macro_f1", "uar", "per_class", "confusion_matrix", "latency_ms", "throughput_per_s",
            "invoke_overhead_ratio", "size_bytes", "peak_rss_mb", "manifest_metrics",
        ):  # fmt: skip
            assert key in m, key
        assert m["n"] == n
        assert 0.0 <= m["accuracy"] <= 1.0 and 0.0 <= m["macro_f1"] <= 1.0 and 0.0 <= m["uar"] <= 1.0
        assert set(m["per_class"]) == set(EMOTIONS)
        assert sum(c["support"] for c in m["per_class"].values()) == n
        assert np.asarray(m["confusion_matrix"]).sum() == n
        lat = m["latency_ms"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"]
        assert m["size_bytes"] == Path(m["path"]).stat().st_size
        assert m["threads"] == 1


# --- shipped names -------------------------------------------------------------------


def test_unknown_name_lists_shipped_names():
    with pytest.raises(EdgeemoError) as exc:
        shipped.resolve_model("smile")
    assert "face, face-float, face-onnx" in str(exc.value)


def test_shipped_name_not_installed_then_installed(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped, "MODELS_DIR", tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(EdgeemoError) as exc:
        shipped.resolve_model("face-onnx")
    assert "not installed" in str(exc.value) and "available: none" in str(exc.value)
    (tmp_path / "face").mkdir()
    (tmp_path / "face" / "face-int8.onnx").write_bytes(b"x")
    assert shipped.available() == ["face-onnx"]
    assert shipped.resolve_model("face-onnx") == tmp_path / "face" / "face-int8.onnx"
    with pytest.raises(EdgeemoError, match="available: face-onnx"):
        shipped.resolve_model("face")


def test_missing_model_path_is_not_called_a_name(tmp_path):
    with pytest.raises(EdgeemoError, match="model file not found"):
        shipped.resolve_model(tmp_path / "face-int8.tflite")


# --- bench -----------------------------------------------------------------------------


def test_bench_onnx_without_tensorflow(onnx_model, faces, tmp_path):
    """JSON keys and values, confusion PNG beside the JSON, and no TensorFlow import."""
    no_manifest = tmp_path / "bare.onnx"
    no_manifest.write_bytes(onnx_model.read_bytes())
    out = tmp_path / "report" / "bench.json"
    args = ["bench", str(onnx_model), str(no_manifest), "--data", str(faces), "--json", str(out)]
    proc = _run_cli_without_tf([*args, "--runs", "10", "--warmup", "2", "--threads", "1"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "tiny-float" in proc.stdout and "latency p50" in proc.stdout and "disgust" in proc.stdout
    assert "no manifest" in proc.stderr  # the bare model's assumed preprocessing is stated
    report = json.loads(out.read_text())
    _check_report(report, n_models=2, n=N_IMAGES)
    first, bare = report["models"]
    assert first["quantization"] == "none" and first["manifest_metrics"] == {"accuracy": 0.5}
    assert bare["accuracy"] == first["accuracy"]  # same weights, same default preprocessing
    assert (out.parent / "confusion-tiny-float.png").stat().st_size > 1000
    assert (out.parent / "confusion-bare.png").is_file()


def test_bench_skips_plots_without_matplotlib(onnx_model, faces, tmp_path, monkeypatch):
    from edgeemo.bench import run_bench
    from edgeemo.report import write_plots

    report = run_bench([onnx_model], faces, runs=3, warmup=0, threads=1, limit_per_class=1)
    assert report.data["n"] == len(EMOTIONS)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    warnings: list[str] = []
    assert write_plots(report, tmp_path, warn=warnings.append) == []
    assert len(warnings) == 1 and "matplotlib" in warnings[0]
    assert not list(tmp_path.glob("*.png"))


def test_bench_help_is_useful():
    from edgeemo.cli import app

    result = runner.invoke(app, ["bench", "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    for option in (
        "--data",
        "--json",
        "--plot-dir",
        "--threads",
        "--runs",
        "--warmup",
        "--backend",
    ):
        assert option in result.output


# --- clean errors ----------------------------------------------------------------------


def _one_line_error(args: list[str]) -> str:
    from edgeemo.cli import app

    return one_line_error(runner.invoke(app, args, env=WIDE))


def test_predict_json_and_table(onnx_model, faces):
    from edgeemo.cli import app

    images = [str(faces / "happy" / "b.png"), str(faces / "sad" / "c.png")]
    result = runner.invoke(app, ["predict", str(onnx_model), *images, "--json"], env=WIDE)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["image"] for r in lines] == images
    for r in lines:
        assert r["label"] in EMOTIONS and set(r["probs"]) == set(EMOTIONS)
        assert abs(sum(r["probs"].values()) - 1.0) < 1e-4
        assert r["score"] == max(r["probs"].values())
    table = runner.invoke(app, ["predict", str(onnx_model), *images, "--top", "2"], env=WIDE)
    assert table.exit_code == 0, table.output
    assert "b.png" in table.output and lines[0]["label"] in table.output


def test_predict_corrupt_image(onnx_model, faces, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    line = _one_line_error(["predict", str(onnx_model), str(faces / "happy" / "a.jpg"), str(bad)])
    assert "broken.jpg" in line and "not a decodable image" in line


def test_predict_unknown_name():
    assert "face-float" in _one_line_error(["predict", "smiley", "x.png"])


@pytest.mark.parametrize("suffix", [".onnx", ".tflite"])
def test_file_that_is_not_a_model(tmp_path, faces, suffix):
    _needs("onnxruntime" if suffix == ".onnx" else "ai_edge_litert")
    junk = tmp_path / f"junk{suffix}"
    junk.write_bytes(b"definitely not a model\n" * 10)
    line = _one_line_error(["bench", str(junk), "--data", str(faces)])
    assert "junk" in line and "not a loadable" in line


def test_unexpected_input_shape(tmp_path, faces):
    wrong = make_onnx(tmp_path / "rgb32.onnx", shape=(32, 32, 3))
    line = _one_line_error(["predict", str(wrong), str(faces / "fear" / "a.jpg")])
    assert "rgb32.onnx" in line and "(32, 32, 3)" in line
    # With a manifest that agrees with the model but not with its own preprocessing.
    _manifest(wrong, "onnx", "none", {"shape": [None, 32, 32, 3], "dtype": "float32"})
    line = _one_line_error(["bench", str(wrong), "--data", str(faces)])
    assert "unexpected input shape (32, 32, 3)" in line


def test_sha256_mismatch_is_refused(onnx_model, faces, tmp_path):
    model = tmp_path / "tampered.onnx"
    model.write_bytes(onnx_model.read_bytes())
    data = json.loads(manifest_path(onnx_model).read_text())
    data["sha256"] = "0" * 64
    manifest_path(model).write_text(json.dumps(data))
    line = _one_line_error(["bench", str(model), "--data", str(faces)])
    assert "tampered.onnx" in line and "sha256" in line and "refusing" in line


def test_wrong_number_of_outputs(tmp_path, faces):
    five = make_onnx(tmp_path / "five.onnx", classes=5)
    assert "5 outputs but 7 labels" in _one_line_error(["bench", str(five), "--data", str(faces)])


# --- TFLite float + int8 side by side (slow: TensorFlow converts them) --------------------


def _tflite_pair(folder: Path, faces: Path) -> tuple[Path, Path]:
    """Tiny Keras CNN -> float TFLite and full-integer int8 TFLite (int8 in/out), with manifests."""
    tf = pytest.importorskip("tensorflow")
    keras = pytest.importorskip("keras")
    _needs("ai_edge_litert")
    from ai_edge_litert.interpreter import Interpreter

    from edgeemo.face import preprocess_faces
    from edgeemo.face_datasets import load_faces

    keras.utils.set_random_seed(0)  # the same tiny model every run: an unseeded one flaked on near-tied outputs
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(7, activation="softmax")(x))
    calib = preprocess_faces(load_faces(faces).images)

    def convert(int8: bool) -> bytes:
        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        if int8:
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = lambda: ([calib[i : i + 1]] for i in range(len(calib)))
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = conv.inference_output_type = tf.int8
        return conv.convert()

    float_path, int8_path = folder / "tiny-float.tflite", folder / "tiny-int8.tflite"
    float_path.write_bytes(convert(False))
    int8_path.write_bytes(convert(True))
    _manifest(float_path, "tflite", "none", {"shape": [None, 48, 48, 1], "dtype": "float32"})
    detail = Interpreter(model_path=str(int8_path)).get_input_details()[0]
    scale, zero = detail["quantization"]
    spec = {"shape": [None, 48, 48, 1], "dtype": "int8", "scale": scale, "zero_point": zero}
    _manifest(int8_path, "tflite", "int8", spec)
    return float_path, int8_path


@pytest.mark.slow
def test_bench_tflite_float_and_int8_without_tensorflow(tmp_path, faces, onnx_model):
    float_path, int8_path = _tflite_pair(tmp_path, faces)
    out = tmp_path / "bench.json"
    plots = tmp_path / "plots"
    models = [str(int8_path), str(onnx_model), str(float_path)]
    args = ["bench", *models, "--data", str(faces), "--json", str(out)]
    proc = _run_cli_without_tf(
        [*args, "--plot-dir", str(plots), "--runs", "20", "--warmup", "2", "--threads", "1"],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    _check_report(report, n_models=3, n=N_IMAGES)
    # the two tiny-float models are told apart by their file names
    by_name = {m["model"]: m for m in report["models"]}
    assert set(by_name) == {"tiny-int8", "tiny-float.tflite", "tiny-float.onnx"}
    int8, flt = by_name["tiny-int8"], by_name["tiny-float.tflite"]
    assert int8["quantization"] == "int8" and flt["quantization"] == "none"
    assert int8["backend"] in ("litert", "tflite-runtime")
    assert abs(int8["accuracy"] - flt["accuracy"]) <= 0.25  # int8 tracks its float parent
    for name in by_name:
        assert (plots / f"confusion-{name}.png").is_file(), sorted(p.name for p in plots.iterdir())
    # the table shows the models in the order given on the command line
    header = next(line for line in proc.stdout.splitlines() if "tiny-int8" in line)
    assert header.index("tiny-int8") < header.index("tiny-float.onnx") < header.index("tiny-float.tflite")
