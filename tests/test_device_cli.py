"""`edgeemo run` and `edgeemo doctor` as a user runs them: without TensorFlow, clean errors, clean shutdown."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import NO_TF, one_line_error, run_cli_without_tf
from typer.testing import CliRunner

from edgeemo.cli import app
from edgeemo.labels import EMOTIONS

runner = CliRunner()
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def test_run_demo_without_tensorflow_prints_fused_results(tmp_path):
    proc = run_cli_without_tf(["run", "--demo", "--json", "--duration", "4.5"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(results) >= 4
    for r in results:
        assert set(r) >= {"ts", "face", "voice", "fused"}
    assert any(r["face"] and r["face"]["label"] in EMOTIONS for r in results)
    assert any(r["voice"] and r["fused"] for r in results)  # the first 3 s window arrives at ~3 s
    assert "Traceback" not in proc.stderr


LOADED_AFTER_DEMO = """
import sys
from edgeemo.cli import app
sys.argv = ["edgeemo", "run", "--demo", "--json", "--duration", "4.5"]
try:
    app()
except SystemExit as e:
    assert not e.code, e.code
print(sorted({m.split(".")[0] if m.startswith(("matplotlib", "tensorflow")) else m for m in sys.modules}))
"""


def test_the_daemon_loads_neither_scipy_signal_nor_matplotlib(tmp_path):
    # scipy.signal (76 MiB of RSS) and matplotlib (19 MiB) stay out of the daemon's memory, demo included
    proc = subprocess.run([sys.executable, "-c", LOADED_AFTER_DEMO], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    *results, loaded = proc.stdout.splitlines()
    assert any(json.loads(r)["voice"] for r in results)  # the voice path (MFCCs, VAD) ran
    assert "ai_edge_litert" in loaded
    for heavy in ("scipy.signal", "matplotlib", "tensorflow"):
        assert f"'{heavy}'" not in loaded


def test_run_demo_text_lines(tmp_path):
    proc = run_cli_without_tf(["run", "--demo", "--duration", "1.5"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "fused:" in proc.stdout and "voice: waiting" in proc.stdout


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_demo_loops_and_serves_http_as_the_readme_shows(tmp_path):
    import time
    import urllib.request

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", NO_TF, "run", "--demo", "--loop", "--http", "--port", str(port),
                             "--json", "--duration", "13"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    latest = None
    deadline = time.monotonic() + 60
    while latest is None and time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/latest", timeout=2) as response:
                if response.status == 204:  # serving, no result yet (the sink's documented answer)
                    time.sleep(0.3)
                    continue
                latest = json.loads(response.read())
        except OSError:
            time.sleep(0.3)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert latest is not None and {"ts", "face", "voice", "fused"} <= set(latest)
    results = [json.loads(line) for line in out.splitlines()]
    # the built-in clip is 8 s: with --loop the replay starts again and results keep coming until --duration
    assert results[-1]["ts"] - results[0]["ts"] > 9.5
    assert any(r["face"] for r in results if r["ts"] - results[0]["ts"] > 9.5)


def test_sigterm_stops_the_daemon_cleanly(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", NO_TF, "run", "--demo", "--json"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # running: a result was published
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert json.loads(first)["ts"] > 0
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_replayed_files_from_the_command_line(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((120, 160, 3), np.uint8))
    result = runner.invoke(app, ["run", "--camera", str(folder), "--no-microphone", "--no-http", "--json",
                                 "--log-level", "error"])
    assert result.exit_code == 0, result.output
    last = json.loads(result.stdout.splitlines()[-1])
    assert last["face"] is None and last["voice"] is None and last["fused"] is None


@pytest.mark.parametrize(
    "args, match",
    [
        (["--camera", "/no/such/video.mp4", "--no-microphone"], "camera not found"),
        (["--microphone", "/no/such.wav", "--no-camera"], "no such file"),
        (["--face-model", "/no/model.tflite", "--camera", "{frames}"], "model file not found"),
        (["--voice-model", "face", "--no-camera", "--microphone", "{wav}"], "this command takes voice models"),
        (["--output", "{blocker}/out.jsonl", "--camera", "{frames}", "--no-microphone"], "cannot write the output"),
        (["--config", "{bad_config}"], "unknown key [camera] resolution"),
        (["--mqtt", "broker:port"], "--mqtt must be host or host:port"),
    ],
)
def test_start_up_mistakes_are_one_line(tmp_path, args, match):
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "a.png"), np.zeros((60, 80, 3), np.uint8))
    wav = tmp_path / "a.wav"
    import soundfile as sf

    sf.write(wav, np.zeros(16000), 16000)
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    bad_config = tmp_path / "device.toml"
    bad_config.write_text("[camera]\nresolution = 3\n")
    paths = {"frames": frames, "wav": wav, "blocker": blocker, "bad_config": bad_config}
    args = [a.format(**paths) for a in args]
    result = runner.invoke(app, ["run", "--no-http", "--log-level", "error", *args], env=ENV)
    assert match in one_line_error(result)


def test_doctor_reports_models_and_a_missing_camera(tmp_path):
    result = runner.invoke(app, ["doctor", "--json", "--camera", str(tmp_path / "nope"),
                                 "--microphone", str(tmp_path / "none.wav")])
    assert result.exit_code == 1
    checks = {c["check"]: c for c in json.loads(result.stdout)}
    assert checks["model face"]["status"] == "ok" and "sha256 verified" in checks["model face"]["detail"]
    assert checks["model voice"]["status"] == "ok"
    assert checks["runtime onnxruntime"]["status"] == "ok"
    assert checks["camera"]["status"] == "fail" and "camera not found" in checks["camera"]["detail"]
    assert checks["microphone"]["status"] == "fail"


def test_doctor_passes_with_replay_sources(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((60, 80, 3), np.uint8))
    import soundfile as sf

    sf.write(tmp_path / "a.wav", np.zeros(16000), 16000)
    result = runner.invoke(app, ["doctor", "--camera", str(tmp_path), "--microphone", str(tmp_path / "a.wav")],
                           env=ENV)
    assert result.exit_code == 0, result.output
    assert "80x60 frame read" in result.output


def test_demo_photo_is_matplotlibs_sample_portrait_and_its_absence_is_one_clear_line(monkeypatch):
    import importlib.util

    from edgeemo.device import demo
    from edgeemo.errors import EdgeemoError

    photo = demo.default_photo()
    assert photo.name == "grace_hopper.jpg" and "sample_data" in photo.parts
    assert cv2.imread(str(photo)) is not None
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # a device without edgeemo[plots]
    with pytest.raises(EdgeemoError, match=r"pip install 'edgeemo\[plots\]'.*--image"):
        demo.default_photo()
