"""Distributed training (--distribute), as a user runs it: each training in its own process (TensorFlow splits
the CPU into logical devices, or joins a cluster, once per process).

Mirrored on two logical CPU devices, then export; two workers on loopback ports that finish and write the run
folder once; and the mistakes that must be one line, never a hang: a wrong TF_CONFIG, a port in use, a worker
that never comes, a worker that dies."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SHARED_DATA, requires_data, run_cli_without_tf

CKPLUS = SHARED_DATA / "ckplus" / "CK+48"
ENV = {"COLUMNS": "200", "NO_COLOR": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
TINY = ["--data", str(CKPLUS), "--limit-per-class", "6", "--epochs", "1", "--batch-size", "16"]


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def edgeemo(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edgeemo", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **ENV, **(env or {})})


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(("config", "problem"), [
    ("", "TF_CONFIG: not set"),
    ('{"cluster": {"worker": ["localhost:1"]', "TF_CONFIG: not valid JSON"),
    ('{"cluster": {"worker": ["localhost:1"]}}', "TF_CONFIG: no 'task' object"),
    ('{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 1}}',
     "TF_CONFIG: task index 1 is out of range: job 'worker' has 1 task(s) (0-0)"),
    ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG: 'localhost' in job 'worker' is not host:port"),
    ('{"cluster": {"ps": ["localhost:1"]}, "task": {"type": "ps", "index": 0}}', "TF_CONFIG: job 'ps'"),
])
def test_a_wrong_tf_config_is_one_line_before_tensorflow(tmp_path, config, problem):
    run = tmp_path / "run"
    proc = run_cli_without_tf(["train", "face", "--data", str(tmp_path), "--out", str(run), "--distribute",
                               "multi-worker"], cwd=tmp_path, env={**ENV, "TF_CONFIG": config})
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1 and lines[0].startswith(f"error: {problem}"), proc.stderr
    assert not run.exists()


def test_a_port_in_use_is_one_line_before_tensorflow(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_cli_without_tf(["train", "voice", "--data", str(tmp_path), "--out", str(tmp_path / "run"),
                                   "--distribute", "multi-worker"], cwd=tmp_path,
                                  env={**ENV, "TF_CONFIG": tf_config([port, port + 1], 0)})
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert f"error: TF_CONFIG: port {port} of this task (worker 0, localhost:{port}) cannot be used" in lines[0]


@pytest.mark.parametrize(("args", "problem"), [
    (["--distribute", "none", "--replicas", "2"], "--replicas is for --distribute mirrored"),
    (["--distribute", "mirrored", "--replicas", "3", "--batch-size", "32"], "does not split evenly"),
    (["--distribute", "all"], "unknown --distribute 'all'"),
    (["--stream-cache", "cache"], "--stream-cache is the cache of --stream"),
])
def test_distribution_and_stream_options_are_checked_before_tensorflow(tmp_path, args, problem):
    proc = run_cli_without_tf(["train", "face", "--data", str(tmp_path), "--out", str(tmp_path / "run"), *args],
                              cwd=tmp_path, env=ENV)
    assert proc.returncode == 1 and problem in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.slow
@requires_data("ckplus", "CK+48")
def test_mirrored_on_two_logical_cpu_devices_trains_records_its_replicas_and_exports(tmp_path):
    run = tmp_path / "run"
    train = edgeemo("train", "face", *TINY, "--out", str(run), "--distribute", "mirrored")
    _, err = train.communicate(timeout=300)
    assert train.returncode == 0, err[-3000:]
    record = json.loads((run / "config.json").read_text())["distribution"]
    assert record["strategy"] == "MirroredStrategy" and record["replicas"] == 2 and len(record["devices"]) == 2
    assert record["global_batch"] == 16 and record["per_replica_batch"] == 8
    export = edgeemo("export", str(run), "--quantize", "int8", "--format", "tflite")  # to exported/ in the run
    _, err = export.communicate(timeout=300)
    assert export.returncode == 0, err[-3000:]
    manifest = json.loads(next((run / "exported").glob("*-int8.tflite.json")).read_text())
    assert manifest["training"]["distribution"]["replicas"] == 2


@pytest.mark.slow
@requires_data("ckplus", "CK+48")
def test_two_workers_on_loopback_ports_finish_and_only_the_chief_writes(tmp_path):
    run, ports = tmp_path / "run", free_ports(2)
    workers = [edgeemo("train", "face", *TINY, "--out", str(run), "--distribute", "multi-worker", "--stream",
                       env={"TF_CONFIG": tf_config(ports, i)}) for i in (0, 1)]
    errs = [w.communicate(timeout=300)[1] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], errs[0][-2000:] + errs[1][-2000:]
    config = json.loads((run / "config.json").read_text())
    assert config["distribution"]["strategy"] == "MultiWorkerMirroredStrategy"
    assert config["distribution"]["workers"] == config["distribution"]["replicas"] == 2
    assert config["data_pipeline"] == {"stream": True, "cache": None, "shards": 2}
    assert len((run / "history.csv").read_text().splitlines()) == 2  # header + one epoch, written once
    assert {p.name for p in run.iterdir()} == {"config.json", "split.json", "history.csv", "curves.png", "last.keras",
                                               "last.weights.npz", "best.keras", "finished.json", "metrics.json"}
    scratch = next(line for line in errs[1].splitlines() if "is not the chief: it writes to" in line)
    assert not Path(scratch.split("writes to ")[1].split(" (removed")[0]).exists()  # removed when it ended


@pytest.mark.slow
@requires_data("ckplus", "CK+48")
def test_a_worker_that_never_comes_is_one_line_after_the_timeout(tmp_path):
    start = time.monotonic()
    alone = edgeemo("train", "face", *TINY, "--out", str(tmp_path / "run"), "--distribute", "multi-worker",
                    "--worker-timeout", "8", env={"TF_CONFIG": tf_config(free_ports(2), 0)})
    _, err = alone.communicate(timeout=120)
    assert alone.returncode != 0 and time.monotonic() - start < 60
    assert error_lines(err) == [error_lines(err)[0]] and "the cluster did not come up within 8 s" in err, err


@pytest.mark.slow
@requires_data("ckplus", "CK+48")
def test_a_worker_that_dies_stops_the_other_with_one_line(tmp_path):
    run, ports = tmp_path / "run", free_ports(2)
    args = ["--data", str(CKPLUS), "--limit-per-class", "20", "--epochs", "50", "--batch-size", "16"]
    workers = [edgeemo("train", "face", *args, "--out", str(run), "--distribute", "multi-worker",
                       env={"TF_CONFIG": tf_config(ports, i)}) for i in (0, 1)]
    deadline = time.monotonic() + 180
    while not (run / "history.csv").exists() and time.monotonic() < deadline:  # both are training
        time.sleep(0.5)
    workers[1].kill()
    _, err = workers[0].communicate(timeout=120)
    killed = workers[1].communicate()[1]
    scratch = next(line for line in killed.splitlines() if "is not the chief: it writes to" in line)
    shutil.rmtree(Path(scratch.split("writes to ")[1].split(" (removed")[0]).parent)  # killed: it could not
    assert workers[0].returncode == 1, err[-3000:]
    assert len(error_lines(err)) == 1 and "multi-worker: another worker stopped" in error_lines(err)[0], err[-3000:]
    assert "Traceback" not in err
