"""Soak test of the device daemon: ``edgeemo run`` in a subprocess on a replayed 30 fps 640x480 video
and a replayed WAV (both looping; the inputs of ``device_pipeline.py``), with the HTTP sink on a
free port, for ``--duration`` seconds (600 by default).

Every ``--interval`` seconds it samples the daemon's RSS, open file descriptors (/proc/PID/fd),
thread count (/proc/PID/status) and the numeric counters of its ``/health`` JSON (queue depths,
drops, whatever keys the daemon reports), and checks that the process is flat after warm-up:
RSS growth < 5 MB, no growth in file descriptors or threads. Writes ``results/soak.{md,json,png}``
(four panels over time) and exits 1 if a check fails.

    .venv/bin/python benchmarks/robustness/soak.py                 # the 10-minute run
    .venv/bin/python benchmarks/robustness/soak.py --quick         # 20 s, 1 s samples (CI: tests/test_soak_quick.py)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from device_pipeline import make_inputs  # noqa: E402 - the replay clip and WAV of the pipeline benchmark

from edgeemo.device.standins import free_port
from edgeemo.shipped import shipped_sha256

RESULTS = Path(__file__).resolve().parents[1] / "results" / "robustness"
RSS_GROWTH_LIMIT_MB = 5.0
CLI = "import sys; from edgeemo.cli import app; sys.argv[0] = 'edgeemo'; app()"


def proc_sample(pid: int) -> dict[str, float]:
    """RSS (MB), open file descriptors and threads of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mb": int(fields["VmRSS"].split()[0]) * 1024 / 1e6,
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": int(fields["Threads"]),
    }


def flatten(tree: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a JSON document as {"a.b.c": value} (booleans and strings left out)."""
    out: dict[str, float] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.update(flatten(value, f"{prefix}{key}."))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            out.update(flatten(value, f"{prefix}{i}."))
    elif isinstance(tree, int | float) and not isinstance(tree, bool):
        out[prefix.rstrip(".")] = float(tree)
    return out


def health(port: int) -> dict[str, float] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2.0) as r:
            return flatten(json.loads(r.read()))
    except (OSError, ValueError):
        return None


def is_queue_key(key: str) -> bool:
    k = key.lower()
    if any(w in k for w in ("capacity", "drop", "error")):
        return False
    return any(w in k for w in ("depth", "backlog", "pending", "qsize")) or k.endswith("queue")


def is_drop_key(key: str) -> bool:
    k = key.lower()
    return "capacity" not in k and any(w in k for w in ("drop", "overrun", "lost", "discard"))


def soak(duration: float, interval: float, warmup: float, folder: Path) -> dict[str, Any]:
    video, wav = make_inputs(folder)
    port = free_port()
    cmd = [sys.executable, "-c", CLI, "run", "--camera", str(video), "--microphone", str(wav), "--loop",
           "--http", "--port", str(port), "--stdout", "off", "--duration", str(duration + 30.0),
           "--log-level", "warning"]
    log = (folder / "daemon.log").open("w")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    samples: list[dict[str, Any]] = []
    try:
        t_start = time.monotonic()
        while health(port) is None:  # models loaded, sources open, HTTP up
            if proc.poll() is not None or time.monotonic() - t_start > 120:
                raise SystemExit(f"daemon did not start: {(folder / 'daemon.log').read_text()[-2000:]}")
            time.sleep(0.2)
        t0 = time.monotonic()
        cpu0 = _cpu_s(proc.pid)
        next_t = t0
        while True:
            now = time.monotonic()
            if now - t0 > duration or proc.poll() is not None:
                break
            sample: dict[str, Any] = {"t": round(now - t0, 2), **proc_sample(proc.pid)}
            sample["health"] = health(port) or {}
            samples.append(sample)
            next_t += interval
            time.sleep(max(0.0, next_t - time.monotonic()))
        cpu = _cpu_s(proc.pid) - cpu0
        wall = time.monotonic() - t0
        exit_code = proc.poll()
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
    stopped_cleanly = proc.returncode == 0
    return analyse(samples, warmup, wall, cpu, exit_code, stopped_cleanly, (folder / "daemon.log").read_text())


def _cpu_s(pid: int) -> float:
    parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def analyse(samples: list[dict[str, Any]], warmup: float, wall: float, cpu: float, exit_code: int | None,
            stopped_cleanly: bool, daemon_log: str) -> dict[str, Any]:
    """Growth after warm-up and the pass/fail checks."""
    warm = [s for s in samples if s["t"] >= warmup] or samples[-2:]
    first, last = warm[0], warm[-1]
    # RSS growth: median of the last 10% minus median of the first 10% of the warm samples (one
    # sample's allocator noise is not growth)
    k = max(1, len(warm) // 10)

    def med(values: list[float]) -> float:
        values = sorted(values)
        return values[len(values) // 2]

    rss_growth = med([s["rss_mb"] for s in warm[-k:]]) - med([s["rss_mb"] for s in warm[:k]])
    keys = sorted({key for s in samples for key in s["health"]})
    queue_keys = [key for key in keys if is_queue_key(key)]
    drop_keys = [key for key in keys if is_drop_key(key)]
    checks = {
        "daemon ran the whole time": exit_code is None,
        f"RSS growth after warm-up < {RSS_GROWTH_LIMIT_MB:g} MB": rss_growth < RSS_GROWTH_LIMIT_MB,
        "no file-descriptor growth after warm-up": max(s["fds"] for s in warm) <= first["fds"],
        "no thread growth after warm-up": max(s["threads"] for s in warm) <= first["threads"],
        "stopped cleanly on SIGTERM (exit 0)": stopped_cleanly,
    }
    return {
        "duration_s": round(wall, 1),
        "samples": samples,
        "warmup_s": warmup,
        "cpu_cores_used": round(cpu / wall, 3) if wall else None,
        "rss_mb_first_warm": round(first["rss_mb"], 2),
        "rss_mb_last": round(last["rss_mb"], 2),
        "rss_mb_peak": round(max(s["rss_mb"] for s in samples), 2),
        "rss_growth_mb_after_warmup": round(rss_growth, 2),
        "fds": [min(s["fds"] for s in warm), max(s["fds"] for s in warm)],
        "threads": [min(s["threads"] for s in warm), max(s["threads"] for s in warm)],
        "health_keys": keys,
        "queue_keys": queue_keys,
        "drop_keys": drop_keys,
        "health_last": last["health"],
        "checks": checks,
        "passed": all(checks.values()),
        "daemon_log_tail": daemon_log[-2000:],
    }


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["samples"]
    t = [x["t"] / 60 for x in s]
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5), sharex=True)
    ax = axes[0, 0]
    ax.plot(t, [x["rss_mb"] for x in s], color="tab:blue")
    ax.axvline(result["warmup_s"] / 60, color="gray", ls=":", label="end of warm-up")
    ax.set_title(f"RSS (MB): growth after warm-up {result['rss_growth_mb_after_warmup']:+.2f} MB")
    ax.set_ylabel("MB")
    ax.legend(loc="lower right")
    ax = axes[0, 1]
    ax.plot(t, [x["fds"] for x in s], color="tab:green", label="open file descriptors")
    ax.plot(t, [x["threads"] for x in s], color="tab:purple", label="threads")
    ax.set_title("file descriptors and threads")
    ax.set_ylim(0, max(max(x["fds"] for x in s), max(x["threads"] for x in s)) * 1.3 + 1)
    ax.legend(loc="lower right")
    ax = axes[1, 0]
    for key in result["queue_keys"][:8]:
        ax.plot(t, [x["health"].get(key, float("nan")) for x in s], label=key)
    ax.set_title("queue depths (/health)" if result["queue_keys"] else "queue depths: none reported by /health")
    ax.set_xlabel("minutes")
    if result["queue_keys"]:
        ax.legend(loc="upper left", fontsize=7)
    ax = axes[1, 1]
    for key in result["drop_keys"][:8]:
        ax.plot(t, [x["health"].get(key, float("nan")) for x in s], label=key)
    top = max([x["health"].get(key, 0.0) for x in s for key in result["drop_keys"]] or [0.0])
    ax.set_ylim(-0.05 * max(1.0, top), max(1.0, top * 1.1))
    ax.set_title("drop counters, cumulative (/health)" if result["drop_keys"] else "drop counters: none in /health")
    ax.set_xlabel("minutes")
    if result["drop_keys"]:
        ax.legend(loc="upper left", fontsize=7)
    fig.suptitle(f"edgeemo run soak: {result['duration_s'] / 60:.1f} min, replayed 30 fps 640x480 video + WAV, "
                 f"HTTP sink; {'all checks passed' if result['passed'] else 'CHECKS FAILED'}")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def render(result: dict[str, Any], command: str) -> str:
    h = result["health_last"]
    counters = {k: v for k, v in h.items() if is_drop_key(k) or is_queue_key(k) or "frames" in k.lower()
                or "windows" in k.lower() or "errors" in k.lower()}
    lines = [
        "# Soak: `edgeemo run` on replayed input",
        "",
        f"`{command}`: the daemon (`edgeemo run --camera clip.avi --microphone voice.wav --loop --http`) in a "
        f"subprocess for {result['duration_s']:.0f} s on the replayed 30 fps 640x480 video and WAV of "
        "`device_pipeline.py`, sampled every few seconds from /proc and `/health`. "
        f"{result['machine']}; load average at the end {result['load_average_at_end']}.",
        "",
        "| check | measured | result |",
        "|---|---|---|",
        f"| RSS growth after {result['warmup_s']:g} s warm-up | {result['rss_growth_mb_after_warmup']:+.2f} MB "
        f"({result['rss_mb_first_warm']} -> {result['rss_mb_last']} MB, peak {result['rss_mb_peak']} MB) "
        f"| {_ok(result['checks'], 'RSS')} |",
        f"| open file descriptors after warm-up (min-max) | {result['fds'][0]}-{result['fds'][1]} "
        f"| {_ok(result['checks'], 'file-descriptor')} |",
        f"| threads after warm-up (min-max) | {result['threads'][0]}-{result['threads'][1]} "
        f"| {_ok(result['checks'], 'thread')} |",
        f"| daemon alive for the whole run, exit 0 on SIGTERM | CPU {result['cpu_cores_used']} cores "
        f"| {_ok(result['checks'], 'ran')} / {_ok(result['checks'], 'stopped')} |",
        "",
        f"`/health` at the end (counters): `{json.dumps(counters)}`",
        "",
        f"Queue-depth keys plotted: {', '.join(result['queue_keys']) or 'none reported'}; drop counters: "
        f"{', '.join(result['drop_keys']) or 'none reported'}. Plot: `soak.png`.",
        "",
    ]
    return "\n".join(lines)


def _ok(checks: dict[str, bool], word: str) -> str:
    return next(("pass" if v else "**FAIL**") for k, v in checks.items() if word in k)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of soak after start-up")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds before growth is measured")
    ap.add_argument("--quick", action="store_true", help="20 s, a sample a second, 8 s warm-up")
    ap.add_argument("--out", type=Path, default=RESULTS / "soak", help="writes OUT.md, OUT.json, OUT.png")
    args = ap.parse_args()
    if args.quick:
        args.duration, args.interval, args.warmup = 20.0, 1.0, 8.0
    with tempfile.TemporaryDirectory() as tmp:
        result = soak(args.duration, args.interval, args.warmup, Path(tmp))
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["models_sha256"] = shipped_sha256(["face", "voice"])  # `edgeemo run` with its defaults: the shipped models
    command = "benchmarks/robustness/soak.py" + (" --quick" if args.quick else f" --duration {args.duration:g}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    plot(result, args.out.with_suffix(".png"))
    text = render(result, command)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    sys.exit(0 if result["passed"] else 1)


if __name__ == "__main__":
    main()
