"""The real microphone path (pyaudio -> PortAudio -> ALSA) with no sound card: an ALSA `file`
PCM whose capture side reads a raw PCM file (``infile``), defined in a throw-away ~/.asoundrc.

Runs in subprocesses with HOME pointing at that folder, since ALSA reads its configuration
once per process. CI installs portaudio19-dev and pyaudio (.ci/run, the [device] extra).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import NO_TF

from edgeemo.device.demo_clip import demo_audio

pytest.importorskip("pyaudio", reason="pyaudio (PortAudio) not installed: pip install 'edgeemo[device]'")

ASOUNDRC = """
pcm.edgeemo_file {{
    type file
    slave.pcm "null"
    file "/dev/null"
    infile "{infile}"
    format "raw"
}}
"""

READ = """
import numpy as np
from edgeemo.device.microphone import PyAudioMicrophone
mic = PyAudioMicrophone("edgeemo_file", chunk_s=0.1)
mic.open()
np.save("got.npy", np.concatenate([mic.read() for _ in range(10)]))
mic.close()
"""


@pytest.fixture
def alsa_home(tmp_path):
    pcm = demo_audio(lead_s=0.0, speech_s=4.0, tail_s=0.0)  # 16 kHz mono int16 (synthetic voice)
    pcm.astype("<i2").tofile(tmp_path / "in.raw")
    (tmp_path / ".asoundrc").write_text(ASOUNDRC.format(infile=tmp_path / "in.raw"))
    env = {**os.environ, "HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return tmp_path, pcm, env


def test_pyaudio_capture_reads_the_alsa_device_sample_exact(alsa_home):
    home, pcm, env = alsa_home
    proc = subprocess.run([sys.executable, "-c", READ], cwd=home, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = np.load(home / "got.npy")
    assert len(got) == 16000 and np.array_equal(got, pcm[:16000])  # 16 kHz mono 16-bit, as captured


def test_edgeemo_run_on_the_alsa_microphone_publishes_voice_results(alsa_home):
    home, _, env = alsa_home
    args = ["run", "--no-camera", "--microphone", "edgeemo_file", "--no-http", "--json", "--duration", "2"]
    proc = subprocess.run([sys.executable, "-c", NO_TF, *args], cwd=home, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert any(r["voice"] and r["fused"] for r in results)
    assert all(r["face"] is None for r in results)
