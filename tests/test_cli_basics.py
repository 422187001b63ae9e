"""The command line: help works, and a user mistake is one clean line with exit code 1."""

import pytest
from conftest import one_line_error, run_cli_without_tf
from typer.testing import CliRunner

from edgeemo.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}


def test_help():
    result = runner.invoke(app, ["--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "train" in result.output
    assert "--version" in result.output
    assert "[train]" in result.output  # the extra's name is not eaten as rich markup


def test_train_face_help_mentions_key_options():
    result = runner.invoke(app, ["train", "face", "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    for option in ("--data", "--out", "--arch", "--epochs", "--split", "--limit-per-class"):
        assert option in result.output


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("edgeemo ")


@pytest.mark.parametrize("data", ["/nonexistent", "/nonexistent/fer2013 [kaggle]", "/x/[/y]"])
def test_train_face_on_a_missing_path_is_one_clean_line(tmp_path, data):
    # Paths with brackets must come through intact (not read as rich markup).
    result = runner.invoke(app, ["train", "face", "--data", data, "--out", str(tmp_path / "run")], env=WIDE)
    line = one_line_error(result)
    assert data in line
    assert not (tmp_path / "run").exists()  # nothing written for a failed start


@pytest.mark.parametrize(("task", "option", "value"), [
    ("face", "--arch", "resnet"), ("face", "--precision", "fp8"), ("face", "--schedule", "linear"),
    ("face", "--class-weight", "inverse"), ("face", "--dataset", "affectnet"), ("face", "--split", "speaker"),
    ("voice", "--arch", "transformer"), ("voice", "--precision", "fp8"), ("voice", "--schedule", "linear"),
])
def test_a_bad_training_option_is_refused_before_tensorflow_and_the_run_folder(tmp_path, task, option, value):
    run = tmp_path / "run"
    # TensorFlow cannot be imported in this process: the option must be checked before the stage loads it.
    proc = run_cli_without_tf(["train", task, "--data", str(tmp_path), "--out", str(run), option, value],
                              cwd=tmp_path, env=WIDE)
    assert proc.returncode == 1, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: unknown {option} {value!r} (expected "), lines
    assert not run.exists()  # no config.json left behind to block the corrected command


def test_python_dash_m_edgeemo_is_the_same_command_line():
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "edgeemo", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("edgeemo "), proc.stderr
    proc = subprocess.run([sys.executable, "-m", "edgeemo", "--help"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})
    assert "Usage: edgeemo" in proc.stdout and "train" in proc.stdout


def test_no_cli_module_is_over_400_lines():
    from pathlib import Path

    import edgeemo.cli

    for module in Path(edgeemo.cli.__file__).parent.glob("*.py"):
        assert len(module.read_text().splitlines()) <= 400, module.name
