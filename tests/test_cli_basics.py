"""The command line: help works, and a user mistake is one clean line with exit code 1."""

import pytest
from conftest import one_line_error
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
