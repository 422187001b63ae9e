"""The int8 accuracy gate on a genuinely degraded model, at the default threshold, through the CLI.

A small face model learns a synthetic task it gets right (a bright square whose position is the class);
exported with its calibration faces replaced by black ones (`--data` pointing at the wrong train/ folder),
its int8 activations are scaled for nothing and the int8 model falls far below its float parent. The gate
must refuse it for TFLite and for ONNX: exit 1, an error line, the file and its manifest removed.
"""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from edgeemo.cli import app
from edgeemo.labels import EMOTIONS

pytest.importorskip("tf2onnx")
runner = CliRunner()
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def write_faces(folder, n_per_class: int, seed: int, black: bool = False) -> None:
    rng = np.random.default_rng(seed)
    for k, label in enumerate(EMOTIONS):
        (folder / label).mkdir(parents=True)
        for i in range(n_per_class):
            img = np.zeros((48, 48), np.uint8)
            if not black:
                img = rng.integers(40, 90, (48, 48)).astype(np.uint8)
                y, x = divmod(k, 3)
                img[4 + 14 * y : 14 + 14 * y, 4 + 14 * x : 14 + 14 * x] = 230
            cv2.imwrite(str(folder / label / f"{label}-{i}.png"), img)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from edgeemo.train.face import train_face
    from edgeemo.train.face_augment import FaceAugmentation
    from edgeemo.train.run import TrainSettings

    root = tmp_path_factory.mktemp("gate")
    good, wrong = root / "good", root / "wrong"
    write_faces(good / "train", 40, seed=0)
    write_faces(good / "publictest", 15, seed=1)
    write_faces(wrong / "train", 40, seed=2, black=True)  # calibration on the wrong data
    shutil.copytree(good / "publictest", wrong / "publictest")
    run = root / "run"
    still = FaceAugmentation(0, 0, 0, False, 0, 0, 0.001)  # nothing that moves the square
    train_face(good, run, augmentation=still, bn_momentum=0.5,  # BatchNorm averages settle within the few steps
               settings=TrainSettings(epochs=4, batch_size=32, learning_rate=2e-3))
    return run, wrong


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "suffix"), [("tflite", "tflite"), ("onnx", "onnx")])
def test_the_gate_removes_a_degraded_int8_model_at_the_default_threshold(trained, tmp_path, fmt, suffix):
    run, wrong = trained
    out = tmp_path / "out"
    args = ["export", str(run), "--out", str(out), "--name", "m", "--format", fmt, "--data", str(wrong)]
    result = runner.invoke(app, args, env=ENV)
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    line = [line for line in result.output.splitlines() if line.strip()][-1]  # after export's progress lines
    assert line.startswith("error: "), result.output
    assert f"m-int8.{suffix}" in line and "points below the float parent" in line and "(limit 1)" in line
    assert not (out / f"m-int8.{suffix}").exists() and not (out / f"m-int8.{suffix}.json").exists()
    assert (out / f"m-float.{suffix}").is_file()  # the float parent stays, and is good:
    assert json.loads((out / f"m-float.{suffix}.json").read_text())["metrics"]["accuracy"] > 0.9
