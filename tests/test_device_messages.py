"""What a newcomer reads from `edgeemo doctor`, `demo` and `run` on bad input or a bare machine: one line
per mistake, and words that say what is wrong."""

from __future__ import annotations

import types

import pytest
from conftest import one_line_error
from typer.testing import CliRunner

from edgeemo.cli import app
from edgeemo.device.microphone import PyAudioMicrophone
from edgeemo.errors import EdgeemoError

runner = CliRunner()
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


@pytest.mark.parametrize("args, match", [
    (["doctor", "--config", "{missing}"], "no-such.toml"),
    (["doctor", "--config", "{bad}"], "unknown key"),
    (["demo", "--image", "{missing_photo}"], "no-such.jpg"),
    (["demo", "--model", "no-such-model"], "no-such-model"),
    (["run", "--config", "{bad_detector}", "--no-microphone"], "pipeline detector must be one of blazeface, haar"),
])
def test_bad_input_is_one_line(tmp_path, args, match):
    (tmp_path / "bad.toml").write_text("[camera]\nresolution = 3\n")
    (tmp_path / "detector.toml").write_text('[pipeline]\ndetector = "yolo"\n')
    paths = {"missing": tmp_path / "no-such.toml", "bad": tmp_path / "bad.toml",
             "missing_photo": tmp_path / "no-such.jpg", "bad_detector": tmp_path / "detector.toml"}
    result = runner.invoke(app, [a.format(**paths) for a in args], env=ENV)
    assert match in one_line_error(result)


def fake_pyaudio(devices: list[dict]) -> types.SimpleNamespace:
    """pyaudio as it behaves on a machine without a sound card: opening the default input fails with -9996."""

    class PyAudio:
        def get_device_count(self) -> int:
            return len(devices)

        def get_device_info_by_index(self, i: int) -> dict:
            return devices[i]

        def open(self, **kwargs):
            raise OSError(-9996, "Invalid input device (no default output device)")

        def terminate(self) -> None:
            pass

    return types.SimpleNamespace(PyAudio=PyAudio, paInt16=8)


def test_no_default_microphone_names_the_input_device_not_an_output_one():
    mic = PyAudioMicrophone(pyaudio_module=fake_pyaudio([]))
    with pytest.raises(EdgeemoError) as info:
        mic.open()
    assert "no default input device" in str(info.value) and "output" not in str(info.value)


def test_doctor_does_not_call_no_microphone_inputs_ok(monkeypatch):
    from edgeemo.device import doctor
    from edgeemo.device.config import load_config

    monkeypatch.setattr(doctor, "import_pyaudio", lambda: fake_pyaudio([]))
    monkeypatch.setattr(doctor, "open_microphone", lambda *a, **k: PyAudioMicrophone(pyaudio_module=fake_pyaudio([])))
    checks = {c["check"]: c for c in doctor.microphone_check(load_config(None))}
    assert checks["microphone inputs"]["status"] == "missing"
    assert checks["microphone inputs"]["detail"] == "no input device found"
    assert checks["microphone"]["status"] == "fail" and "no default input device" in checks["microphone"]["detail"]


def test_library_chatter_only_with_verbose(tmp_path):
    # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate" from native code on every model load
    import cv2
    import numpy as np
    from conftest import run_cli_without_tf

    face = tmp_path / "face.png"
    cv2.imwrite(str(face), np.full((48, 48), 128, np.uint8))
    quiet = run_cli_without_tf(["predict", "face", str(face), "--json"], tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    verbose = run_cli_without_tf(["--verbose", "predict", "face", str(face), "--json"], tmp_path)
    assert verbose.returncode == 0 and "XNNPACK" in verbose.stderr
    assert verbose.stdout == quiet.stdout


def test_doctor_prints_no_opencv_or_jack_lines(tmp_path):
    from conftest import run_cli_without_tf

    proc = run_cli_without_tf(["doctor", "--json"], tmp_path)
    for noise in ("[ WARN:", "Cannot connect to server", "JackShmReadWritePtr", "XNNPACK"):
        assert noise not in proc.stderr


def test_on_a_terminal_errors_keep_their_colour_and_the_chatter_stays_hidden(tmp_path):
    # the filter on fd 2 must not hide the terminal from rich: errors are still red on a TTY
    import os
    import pty
    import subprocess
    import sys

    from conftest import NO_TF

    main, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", NO_TF, "predict", "face", str(tmp_path / "none.jpg")],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=child, cwd=tmp_path,
                            env={**os.environ, "TERM": "xterm", "COLUMNS": "200"})
    os.close(child)
    out = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(main)
    assert proc.wait(timeout=60) == 1
    assert b"\x1b[31merror:" in out and b"none.jpg" in out and b"XNNPACK" not in out
