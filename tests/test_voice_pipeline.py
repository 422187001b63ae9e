"""Voice end to end through the CLI, as a user runs it: train -> export int8 -> predict / bench
without TensorFlow.

Runs on a small RAVDESS-named corpus the test generates (4 speakers, 7 emotions, tones
whose pitch and rhythm depend on the emotion) with a 1 s window, so every step takes seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SHARED_DATA, one_line_error, run_cli_without_tf
from typer.testing import CliRunner

from edgeemo.cli import app
from edgeemo.manifest import read_manifest
from edgeemo.voice import VoicePreprocessing, preprocess_file

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
runner = CliRunner()
RATE = 16000
# RAVDESS emotion codes used (02 calm is merged into neutral by default; not generated here)
CODES = {"01": 0, "03": 1, "04": 2, "05": 3, "06": 4, "07": 5, "08": 6}

pytestmark = pytest.mark.slow


def _clip(code_index: int, speaker: int, rep: int, rng: np.random.Generator) -> np.ndarray:
    """0.2 s silence, 0.8 s of a harmonic tone (f0 and tremolo set by the emotion), 0.2 s silence."""
    t = np.arange(int(0.8 * RATE)) / RATE
    f0 = 110 + 45 * code_index + 4 * speaker + 2 * rep
    tone = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3))
    tone *= 0.6 + 0.4 * np.sin(2 * np.pi * (2 + code_index) * t)
    tone = 0.2 * tone / np.max(np.abs(tone)) + rng.normal(0, 0.002, len(t))
    gap = np.zeros(int(0.2 * RATE))
    return np.concatenate([gap, tone, gap]).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("voice") / "ravdess"
    rng = np.random.default_rng(0)
    for actor in range(1, 5):
        folder = root / f"Actor_{actor:02d}"
        folder.mkdir(parents=True)
        for code, index in CODES.items():
            for rep in range(1, 5):
                name = f"03-01-{code}-01-0{1 + rep % 2}-0{1 + rep // 3}-{actor:02d}.wav"
                sf.write(folder / name, _clip(index, actor, rep, rng), RATE, subtype="PCM_16")
    return root


def _train(corpus: Path, run: Path, arch: str, *extra: str):
    args = ["train", "voice", "--data", str(corpus), "--out", str(run), "--arch", arch, "--test-speakers", "4"]
    args += ["--window", "1.0", "--epochs", "3", "--batch-size", "16", "--aug-copies", "1", "--pitch", "0"]
    args += ["--stretch", "0", "--augment", "clip", *extra]  # fast; the channel augmentation: test_conv1d_...
    return runner.invoke(app, args, env=ENV)


@pytest.fixture(scope="module")
def crnn_run(corpus, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("runs") / "crnn"
    result = _train(corpus, run, "crnn")
    assert result.exit_code == 0, result.output
    return run


def test_training_run_is_speaker_independent_and_records_the_front_end(crnn_run):
    config = json.loads((crnn_run / "config.json").read_text())
    split = config["split"]
    assert config["task"] == "voice" and split["protocol"] == "speaker-independent"
    assert split["test"]["speakers"] == ["ravdess:04"]
    assert not set(split["train"]["speakers"]) & (set(split["val"]["speakers"]) | {"ravdess:04"})
    pre = VoicePreprocessing.from_dict(config["preprocessing"])
    assert pre.count > 0 and pre.input_shape == (99, 40) and config["input_shape"] == [99, 40]
    metrics = json.loads((crnn_run / "metrics.json").read_text())
    assert metrics["n"] == 28 and metrics["protocol"] == "speaker-independent"
    for name in ("best.keras", "last.keras", "history.csv", "curves.png", "features.npz", "split.json"):
        assert (crnn_run / name).is_file(), name
    listed = json.loads((crnn_run / "split.json").read_text())
    assert len(listed["test"]) == 28 and all("Actor_04" in p for p in listed["test"])


def test_rerun_reuses_the_cached_features(corpus, crnn_run):
    result = _train(corpus, crnn_run, "crnn")
    assert result.exit_code == 0, result.output
    assert "features from" in result.output and "already finished" in result.output


def test_export_crnn_full_int8_tflite_and_dynamic_onnx(crnn_run, tmp_path):
    out = tmp_path / "models"
    result = runner.invoke(app, ["export", str(crnn_run), "--out", str(out), "--name", "v", "--force"], env=ENV)
    assert result.exit_code == 0, result.output
    tfl = read_manifest(out / "v-int8.tflite.json")
    assert tfl.task == "voice" and tfl.input["dtype"] == "int8" and tfl.output["dtype"] == "int8"
    assert "unrolled" in tfl.quantization["recurrent"]
    assert tfl.metrics["n"] == 28 and "top1_agreement" in tfl.metrics
    assert tfl.metrics["gate"]["max_drop_points"] == 1.5  # the voice default (face: 1.0)
    # the manifest carries THE front end and the training statistics, identical to the run's
    config = json.loads((crnn_run / "config.json").read_text())
    assert tfl.preprocessing == config["preprocessing"]
    onnx = read_manifest(out / "v-int8.onnx.json")
    assert onnx.quantization["format"] == "dynamic" and onnx.quantization["recurrent_nodes"]
    assert "dynamic quantisation" in result.output  # said, not silent
    # what the device computes for a clip equals what export verified with
    pre = VoicePreprocessing.from_dict(tfl.preprocessing)
    clip = json.loads((crnn_run / "split.json").read_text())["test"][0]
    x = preprocess_file(clip, pre)
    assert x is not None and x.shape == (99, 40) and abs(float(x.mean())) < 5


def test_conv1d_exports_static_int8_onnx(corpus, tmp_path):
    run = tmp_path / "conv1d"
    # the default augmentation: one simulated channel (room, noise, microphone...) per speaker and copy
    result = _train(corpus, run, "conv1d", "--epochs", "1", "--augment", "channel")
    assert result.exit_code == 0, result.output
    config = json.loads((run / "config.json").read_text())
    assert config["channel_augmentation"]["copies"] == 1 and config["augmentation"] is None
    assert config["balance"] == "corpus-class"
    out = tmp_path / "m"
    result = runner.invoke(app, ["export", str(run), "--out", str(out), "--name", "c", "--force"], env=ENV)
    assert result.exit_code == 0, result.output
    onnx = read_manifest(out / "c-int8.onnx.json")
    assert onnx.quantization["format"] == "QDQ" and "recurrent_nodes" not in onnx.quantization
    # the model adapts to its speaker, and says so in the manifest the device rebuilds its input from
    assert onnx.preprocessing["adaptation"]["kind"] == "speaker_running"


@pytest.mark.parametrize("arch, extra", [("stats", ()), ("mlp", ("--summary", "functionals")),
                                         ("mlp", ("--summary", "functionals", "--prosody"))])
def test_utterance_level_models_export_full_int8_tflite_and_onnx(corpus, tmp_path, arch, extra):
    run = tmp_path / arch
    result = _train(corpus, run, arch, "--epochs", "2", *extra)
    assert result.exit_code == 0, result.output
    out = tmp_path / "m"
    result = runner.invoke(app, ["export", str(run), "--out", str(out), "--name", "s", "--force"], env=ENV)
    assert result.exit_code == 0, result.output  # the export gate: int8 agrees with its float parent
    tfl = read_manifest(out / "s-int8.tflite.json")
    assert tfl.input["dtype"] == "int8" and tfl.output["dtype"] == "int8"
    assert read_manifest(out / "s-int8.onnx.json").quantization["format"] == "QDQ"
    assert tfl.preprocessing.get("summary", "frames") == (extra[1] if extra else "frames")
    assert tfl.preprocessing["prosody"] is ("--prosody" in extra)  # the device rebuilds the same front end
    assert tfl.input["shape"][-1] == (301 if "--prosody" in extra else 280 if extra else 40)


def test_data_seed_trains_seed_ensemble_members_on_the_same_features(corpus, tmp_path):
    """--seed N --data-seed 0: the same split, cached features, statistics and val/test inputs as seed 0,
    another init; so the runs form one ensemble. Without --data-seed the features are drawn again."""
    common = ("--arch", "mlp", "--summary", "functionals", "--epochs", "2", "--augment", "channel",
              "--feature-cache", str(tmp_path / "cache"))
    runs = {}
    for name, extra in (("s0", ("--seed", "0")), ("s1", ("--seed", "1", "--data-seed", "0")), ("r1", ("--seed", "1"))):
        runs[name] = tmp_path / name
        result = _train(corpus, runs[name], "mlp", *common[2:], *extra)
        assert result.exit_code == 0, result.output
    config = {k: json.loads((r / "config.json").read_text()) for k, r in runs.items()}
    assert config["s1"]["data_seed"] == 0 and config["r1"]["data_seed"] == 1
    assert config["s1"]["preprocessing"] == config["s0"]["preprocessing"]
    assert config["r1"]["preprocessing"] != config["s0"]["preprocessing"]  # other augmented copies
    npz = {k: np.load(r / "features.npz") for k, r in runs.items()}
    for key in ("inputs_val", "inputs_test", "y_test"):
        np.testing.assert_array_equal(npz["s1"][key], npz["s0"][key])
    import keras

    w0, w1 = (keras.models.load_model(runs[k] / "best.keras").get_weights()[0] for k in ("s0", "s1"))
    assert not np.allclose(w0, w1)  # another init
    result = runner.invoke(app, ["train", "ensemble", str(runs["s0"]), str(runs["s1"]), "--out",
                                 str(tmp_path / "ens")], env=ENV)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "ens" / "metrics.json").read_text())
    assert metrics["n"] == 28 and metrics["per_corpus"]["ravdess"]["n"] == 28  # per corpus, as runs report
    assert metrics["per_corpus"]["ravdess"]["uar"] == metrics["uar"]


def test_predict_and_bench_voice_without_tensorflow(crnn_run, corpus, tmp_path):
    out = tmp_path / "models"
    assert runner.invoke(app, ["export", str(crnn_run), "--out", str(out), "--name", "v", "--force",
                               "--format", "tflite"], env=ENV).exit_code == 0
    silent = tmp_path / "silence.wav"
    sf.write(silent, np.zeros(RATE, np.float32), RATE)
    clip = sorted((corpus / "Actor_04").glob("*.wav"))[0]
    result = run_cli_without_tf(["predict", str(out / "v-int8.tflite"), str(clip), str(silent), "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0]["label"] in rows[0]["probs"] and abs(sum(rows[0]["probs"].values()) - 1) < 0.05
    assert rows[1] == {"clip": str(silent), "label": "no speech", "score": 0.0, "probs": {}}
    report = tmp_path / "r.json"
    result = run_cli_without_tf(
        ["bench", str(out / "v-float.tflite"), str(out / "v-int8.tflite"), "--data", str(corpus), "--speakers", "4",
         "--runs", "10", "--warmup", "1", "--json", str(report), "--no-plots"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(report.read_text())
    assert data["tensorflow_imported"] is False and data["data"]["speakers"] == ["ravdess:04"]
    assert [m["quantization"] for m in data["models"]] == ["none", "int8"]
    assert all(m["n"] == 28 and m["preprocess_ms"] > 0 for m in data["models"])
    assert data["data"]["adaptation"].startswith("causal per speaker")  # the run adapts (the default)
    result = run_cli_without_tf(
        ["bench", str(out / "v-int8.tflite"), "--data", str(corpus), "--speakers", "4", "--runs", "2",
         "--warmup", "0", "--json", str(report), "--no-plots", "--no-adapt"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(report.read_text())["data"]["adaptation"].startswith("off (--no-adapt)")


def test_face_model_refuses_audio_and_voice_model_refuses_faces(crnn_run, tmp_path):
    out = tmp_path / "models"
    assert runner.invoke(app, ["export", str(crnn_run), "--out", str(out), "--name", "v", "--force",
                               "--format", "tflite", "--quantize", "none"], env=ENV).exit_code == 0
    result = runner.invoke(app, ["bench", str(out / "v-float.tflite"), "face", "--data", "x"], env=ENV)
    assert "cannot be benchmarked on the same data" in one_line_error(result)


def test_single_speaker_corpus_needs_random_split(tmp_path):
    tess = SHARED_DATA / "tess"
    if not tess.is_dir():
        pytest.skip("TESS not available")
    result = runner.invoke(app, ["train", "voice", "--data", str(tess), "--out", str(tmp_path / "r")], env=ENV)
    assert "--split random" in one_line_error(result)


def test_unknown_arch_and_bad_options_are_one_line_errors(corpus, tmp_path):
    line = one_line_error(_train(corpus, tmp_path / "a", "transformer"))
    assert "conv1d, lstm, crnn" in line
    line = one_line_error(_train(corpus, tmp_path / "b", "crnn", "--noise-snr", "loud"))
    assert "--noise-snr" in line
    line = one_line_error(_train(corpus, tmp_path / "d", "conv1d", "--summary", "functionals"))
    assert "--summary functionals goes with --arch mlp" in line
    assert "--summary" in one_line_error(_train(corpus, tmp_path / "e", "mlp", "--summary", "spectrogram"))
    line = one_line_error(_train(corpus, tmp_path / "c", "crnn", "--test-speakers", "99"))
    assert "no speaker '99'" in line
