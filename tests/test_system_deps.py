"""`make test` on a fresh machine: the system packages it needs are installed (apt, as root) or named
in one line before anything else runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "system-deps.sh"


def test_a_user_without_root_gets_one_line_naming_the_missing_packages(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    (bin_dir / "id").write_text("#!/bin/sh\necho 1000\n")  # not root: nothing may be installed
    (bin_dir / "id").chmod(0o755)
    # no gcc or openssl on this PATH (mosquitto counts as present where /usr/sbin/mosquitto exists)
    proc = subprocess.run([shutil.which("bash"), str(SCRIPT)], env={**os.environ, "PATH": str(bin_dir)},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: make test needs these system packages: "), lines
    assert "gcc" in lines[0] and "openssl" in lines[0] and "sudo apt-get install" in lines[0]
    assert proc.stdout == ""


def test_the_readme_test_command_and_ci_run_it():
    root = SCRIPT.parents[1]
    assert "test: system-deps" in (root / "Makefile").read_text()
    assert "make test" in (root / ".ci" / "run").read_text()
