"""Helpers shared by the test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Runs the CLI with `import tensorflow` (and keras) made impossible.
NO_TF = """
import sys

class _NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ImportError("tensorflow is blocked in this test: " + name)
        return None

sys.meta_path.insert(0, _NoTensorFlow())
from edgeemo.cli import app
sys.argv = ["edgeemo", *sys.argv[1:]]
app()
"""


def run_cli_without_tf(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the edgeemo CLI in a fresh process where importing tensorflow or keras fails."""
    return subprocess.run(
        [sys.executable, "-c", NO_TF, *args],
        cwd=cwd,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )


def one_line_error(result) -> str:
    """Assert a CliRunner result is exit 1 with exactly one 'error: ...' line and no traceback; return it."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture(scope="session")
def face_model():
    """The shipped int8 face model, one interpreter thread (shared by the device tests)."""
    from edgeemo.predict import open_face_model

    return open_face_model("face", threads=1)


@pytest.fixture(scope="session")
def voice_model():
    """The shipped int8 voice model, one interpreter thread."""
    from edgeemo.predict import open_voice_model

    return open_voice_model("voice", threads=1)
