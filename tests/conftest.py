"""Helpers shared by the test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# Under CI (CI=true, as .ci/run sets it) a test that needs the real data fails when it is missing, instead of
# skipping quietly; on a developer's machine without ../shared it skips with this reason.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true")
NO_DATA = "real data not found in ../shared/data"


def requires_data(*parts: str) -> pytest.MarkDecorator:
    """Skip (fail under CI) unless ``../shared/data/<parts>`` exists."""
    path = SHARED_DATA.joinpath(*parts)
    return pytest.mark.skipif(not path.exists(), reason=f"{NO_DATA}: {path}")


def data_file(*parts: str) -> Path:
    """``../shared/data/<parts>``, or skip (fail under CI) where it is missing: for use inside a test."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        (pytest.fail if IN_CI else pytest.skip)(f"{NO_DATA}: {path}")
    return path


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI and not SHARED_DATA.is_dir():
        pytest.exit(f"CI=true but {SHARED_DATA} is missing: clone beside shared/ (../shared/data)", returncode=1)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and NO_DATA in str(report.longrepr):
        report.outcome = "failed"

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
