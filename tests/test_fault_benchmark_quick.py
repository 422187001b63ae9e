"""The fault-injection benchmark's quick mode, run as a user runs it: a running daemon with the shipped models
survives the camera being unplugged, the output disk filling up and (with Mosquitto installed) the MQTT
broker being SIGKILLed, and recovers from each, all in under 30 s."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "robustness" / "fault_injection.py"
MOSQUITTO = Path(shutil.which("mosquitto") or "/usr/sbin/mosquitto")


@pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None, reason="needs the [device] extra")
def test_quick_fault_injection_survives_and_recovers(tmp_path):
    scenarios = ["camera_unplug", "disk_full"]
    if MOSQUITTO.exists() and importlib.util.find_spec("paho") is not None:
        scenarios.append("mqtt_broker_kill")
    out = tmp_path / "faults"
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--scenarios", ",".join(scenarios),
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert out.with_suffix(".json").is_file(), proc.stderr[-3000:]
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["models_sha256"]["face"] and result["models_sha256"]["voice"]
    elapsed = time.monotonic() - started
    assert elapsed < 45, f"quick mode took {elapsed:.1f} s (30 s of faults, plus the start of a process)"
    for name in scenarios:
        r = result["scenarios"][name]
        s, trial = r["summary"], r["repeats"][0]
        assert r["stopped_cleanly"] and not r["log_tracebacks"] and not r["thread_exceptions"], r["log_tail"]
        assert s["survived"] == s["repeats"] == 1, name
        assert trial["recovered"], (name, trial["recovery"])
        assert s["health_after"] == ["ok/ok"], (name, s["health_after"])
        assert set(trial["health_during"]["state"]) & {"down", "degraded"}, (name, trial["health_during"])
        assert trial["health_during"]["last_error"], name
    cam = result["scenarios"]["camera_unplug"]["repeats"][0]
    assert cam["rates"]["voice_results_per_s"]["during"] > 0  # the voice kept publishing while the camera was away
    assert cam["recovery"]["first_fresh_result_s"] < 5
    disk = result["scenarios"]["disk_full"]["repeats"][0]
    assert disk["file"]["lines_missing_after_event"] == disk["drops"]["file.dropped"] > 0  # every lost line counted
    assert disk["rates"]["sse_per_s"]["during"] > 0  # HTTP kept publishing while the disk was full
    if "mqtt_broker_kill" in scenarios:
        mqtt = result["scenarios"]["mqtt_broker_kill"]["repeats"][0]["mqtt"]
        assert mqtt["in_order"] and mqtt["lost"] == 0 and mqtt["published_during_outage"] > 0, mqtt
    assert result["all_survived"] and result["all_recovered"] and proc.returncode == 0
