"""The soak benchmark's quick mode (20 s of `edgeemo run` on replayed input, HTTP on): the daemon
stays up, stops cleanly, and grows neither file descriptors nor threads."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[1] / "benchmarks" / "robustness" / "soak.py"


@pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None, reason="needs the [device] extra")
@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib (the plots extra)")
@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads /proc")
def test_soak_quick_has_no_fd_or_thread_growth(tmp_path):
    out = tmp_path / "soak"
    proc = subprocess.run([sys.executable, str(SOAK), "--quick", "--out", str(out)], capture_output=True, text=True,
                          timeout=240)
    result = json.loads(out.with_suffix(".json").read_text())
    assert result["samples"], proc.stderr[-2000:]
    checks = result["checks"]
    assert checks["no file-descriptor growth after warm-up"], result["fds"]
    assert checks["no thread growth after warm-up"], result["threads"]
    assert checks["daemon ran the whole time"] and checks["stopped cleanly on SIGTERM (exit 0)"], \
        result["daemon_log_tail"]
    assert result["health_keys"], "no numeric counters in /health"
    assert out.with_suffix(".png").stat().st_size > 10_000
