"""Fault injection against a running daemon: the real ``Pipeline`` built by ``edgeemo run``'s
``build_pipeline`` with the shipped models, stand-in camera and microphone that break on command
(``edgeemo.device.standins``, shared with the tests; ``fault_standins.py`` adds the observers), and
real outputs: the HTTP server (``/health`` polled over HTTP every 0.1 s, a normal ``/events`` client
reading throughout), a rotating JSON-lines file, and, in the MQTT scenarios, a real Mosquitto broker
on a free loopback port with a real paho subscriber.

Each scenario runs one daemon and injects its fault ``--repeats`` times (a baseline, the fault
for ``outage`` seconds, then the fault removed and the recovery watched). Per repeat: did the
daemon survive (its threads alive, no uncaught exception, no traceback in its log or stderr),
did the other modality / the other outputs keep publishing (rates during the fault vs the
baseline before it), the time from removing the fault to the first fresh result of that modality
(or line in the file, message at the subscriber) and to ``/health`` saying ok again, what
``/health`` said during the fault (state, last_error) and after, and the drop counters.

The full mode runs with the shipped ``[pipeline]`` defaults (publish every 0.2 s, reopen backoff
0.5 s doubling to 30 s, stalled after 5 s); ``--quick`` (1 repeat, short outages, fast retry
settings, the microphone at 2x real time) is what CI runs (``tests/test_fault_benchmark_quick.py``).

    .venv/bin/python benchmarks/robustness/fault_injection.py                    # full: every scenario, 5 repeats
    .venv/bin/python benchmarks/robustness/fault_injection.py --quick --out /tmp/fi
    .venv/bin/python benchmarks/robustness/fault_injection.py --scenarios camera_unplug,disk_full --repeats 2
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from fault_standins import RecordingSink, SseClient, Subscriber, wait_until  # noqa: E402

from edgeemo.device.standins import MOSQUITTO, Disk, MosquittoBroker, StandInCamera, StandInMicrophone
from edgeemo.shipped import shipped_sha256

RESULTS = Path(__file__).resolve().parents[1] / "results" / "robustness"
INSTANT_WINDOW_S = 2.0  # "during" an instant fault (a file rotated away): the 2 s after it


@dataclass(frozen=True)
class Mode:
    """How long each phase lasts and the daemon's [pipeline] settings."""

    name: str
    repeats: int
    before_s: float  # baseline before each fault
    outage_s: float  # how long a fault lasts
    sse_outage_s: float  # how long the SSE clients misbehave
    after_s: float  # watched after the recovery (the "after" health)
    recover_timeout_s: float
    mic_speed: float
    pipeline: dict[str, Any]
    overflow_burst: int  # overflowed reads in a row


FULL = Mode("full", 5, before_s=4.0, outage_s=8.0, sse_outage_s=15.0, after_s=1.0, recover_timeout_s=60.0,
            mic_speed=1.0, pipeline={}, overflow_burst=20)
QUICK = Mode("quick", 1, before_s=1.0, outage_s=1.5, sse_outage_s=2.0, after_s=0.3, recover_timeout_s=15.0,
             mic_speed=2.0, pipeline={"publish_interval_s": 0.05, "heartbeat_s": 0.2, "retry_initial_s": 0.05,
                                      "retry_max_s": 0.2, "stall_s": 0.5}, overflow_burst=5)


# ---------------------------------------------------------------------------------------------- the daemon


class Capture:
    """Everything that would end up in the daemon's journal: log records, stderr, uncaught thread exceptions."""

    def __init__(self) -> None:
        self.log = io.StringIO()
        self.stderr = io.StringIO()
        self.thread_exceptions: list[str] = []
        self.errors = 0

    @contextlib.contextmanager
    def active(self) -> Iterator[Capture]:
        handler = logging.StreamHandler(self.log)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        counter = self

        class ErrorCount(logging.Filter):
            def filter(self, record: logging.LogRecord) -> bool:
                if record.levelno >= logging.ERROR or record.exc_info:
                    counter.errors += 1
                return True

        handler.addFilter(ErrorCount())
        root = logging.getLogger()
        device = logging.getLogger("edgeemo.device")
        old_level = device.level
        root.addHandler(handler)
        device.setLevel(logging.INFO)
        old_hook, old_stderr = threading.excepthook, sys.stderr

        def hook(args: threading.ExceptHookArgs) -> None:
            self.thread_exceptions.append(f"{args.thread.name if args.thread else '?'}: "
                                          f"{args.exc_type.__name__}: {args.exc_value}")
            old_hook(args)

        threading.excepthook = hook
        sys.stderr = _Tee(old_stderr, self.stderr)  # socketserver prints handler tracebacks to sys.stderr
        try:
            yield self
        finally:
            sys.stderr = old_stderr
            threading.excepthook = old_hook
            root.removeHandler(handler)
            device.setLevel(old_level)

    def tracebacks(self) -> int:
        return self.log.getvalue().count("Traceback") + self.stderr.getvalue().count("Traceback")


class _Tee(io.TextIOBase):
    def __init__(self, *streams: Any) -> None:
        self.streams = streams

    def write(self, s: str) -> int:
        for stream in self.streams:
            stream.write(s)
        return len(s)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


class Daemon:
    """One running daemon: stand-in sources, the shipped models, HTTP + file (+ MQTT) outputs."""

    def __init__(self, folder: Path, mode: Mode, mqtt: bool = False, mqtt_queue: int = 1000) -> None:
        from edgeemo.device.config import from_dict
        from edgeemo.device.daemon import build_pipeline
        from edgeemo.device.sinks import HttpSink, MqttSink, RotatingFileSink

        self.folder, self.mode = folder, mode
        self.cfg = from_dict({"models": {"threads": 1}, "pipeline": dict(mode.pipeline),
                              "output": {"stdout": "off"}, "http": {"port": 0}})
        self.camera, self.mic = StandInCamera(), StandInMicrophone(mode.mic_speed)
        self.disk, self.recorder = Disk(), RecordingSink()
        self.path = folder / "out" / "results.jsonl"
        self.file = RotatingFileSink(self.path, self.cfg.output.file_max_bytes, self.cfg.output.file_backups,
                                     write=self.disk.write)
        h = self.cfg.http
        self.http = HttpSink(h.host, 0, sse_queue=h.sse_queue, max_clients=h.max_clients,
                             client_timeout_s=h.client_timeout_s)
        sinks: list[Any] = [self.recorder, self.file, self.http]
        self.broker: MosquittoBroker | None = None
        self.subscriber: Subscriber | None = None
        self.mqtt = None
        if mqtt:
            self.broker = MosquittoBroker(folder, "autosave_interval 1\nmax_queued_messages 100000\n",
                                          persistence=True).start()
            self.subscriber = Subscriber(self.broker.port, "bench")
            p = self.cfg.pipeline
            self.mqtt = MqttSink("127.0.0.1", self.broker.port, "bench", client_id="bench-daemon",
                                 queue_size=mqtt_queue, retry_initial_s=p.retry_initial_s, retry_max_s=p.retry_max_s)
            sinks.append(self.mqtt)
        self.pipeline = build_pipeline(self.cfg, self.camera, self.mic, sinks)
        self.polls: list[tuple[float, dict[str, Any]]] = []
        self.poll_failures = 0
        self._stop_polling = threading.Event()
        self.thread = threading.Thread(target=self.pipeline.run, kwargs={"handle_signals": False},
                                       name="daemon", daemon=True)
        self.thread.start()
        self.sse = [SseClient(self.http.host, self.http.port)]  # a normal client, reading throughout
        self.sse_ids: list[int] = []
        self.poller = threading.Thread(target=self._poll, name="bench-health", daemon=True)
        self.poller.start()
        ready = wait_until(lambda: self.fresh("face") and self.fresh("voice"), 60.0, 0.05)
        if not ready:
            raise RuntimeError(f"the daemon did not produce face and voice results: {self.pipeline.health()}")

    def fresh(self, modality: str) -> bool:
        r = self.recorder.results[-1:] or [None]
        return r[0] is not None and r[0]["status"][modality] == "ok"

    def _poll(self) -> None:
        while not self._stop_polling.is_set():
            try:
                with urllib.request.urlopen(self.http.url + "/health", timeout=5) as resp:
                    self.polls.append((time.time(), json.loads(resp.read())))
            except (OSError, ValueError):
                self.poll_failures += 1
            self._stop_polling.wait(0.1)

    def health(self) -> dict[str, Any]:
        """The latest /health report read over HTTP."""
        return self.polls[-1][1] if self.polls else self.pipeline.health()

    def threads_alive(self) -> bool:
        """The daemon's run loop and all its capture and worker threads still running."""
        return self.thread.is_alive() and all(t.is_alive() for t in self.pipeline._threads)

    def stop(self) -> dict[str, Any]:
        """Stop the daemon the way SIGTERM does; how long it took and whether it finished."""
        self.camera.resume()
        self.camera.plug()
        self.mic.plug()
        self.disk.full = False
        self._stop_polling.set()
        self.poller.join(5)
        for client in self.sse:
            with contextlib.suppress(OSError):
                client.close()
        t0 = time.monotonic()
        self.pipeline.stop()
        self.thread.join(30)
        stopped = {"stopped_cleanly": not self.thread.is_alive(), "stop_s": round(time.monotonic() - t0, 2)}
        if self.subscriber is not None:
            self.subscriber.close()
        if self.broker is not None:
            self.broker.kill(signal.SIGTERM)
        return stopped


# ---------------------------------------------------------------------------------------------- measuring


def fresh_readings(results: list[dict[str, Any]], modality: str, t0: float, t1: float) -> float:
    """New readings of ``modality`` per second that reached the outputs in [t0, t1): distinct reading
    timestamps among the results published then (independent of how often results are published)."""
    if t1 <= t0:
        return 0.0
    n = len({r[modality]["ts"] for r in results if t0 <= r["ts"] < t1 and r.get(modality) is not None})
    return round(n / (t1 - t0), 2)


def rate(times: list[float], t0: float, t1: float) -> float:
    """Events per second in [t0, t1)."""
    return round(sum(1 for t in times if t0 <= t < t1) / (t1 - t0), 2) if t1 > t0 else 0.0


def dig(report: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        report = report.get(key, {}) if isinstance(report, dict) else {}
    return report


def health_states(polls: list[tuple[float, dict[str, Any]]], path: tuple[str, ...], t0: float,
                  t1: float) -> dict[str, Any]:
    """What /health said in [t0, t1): overall statuses and the part's states seen, and its last_error."""
    seen = [(h["status"], dig(h, path)) for t, h in polls if t0 <= t < t1]
    errors = [part.get("last_error") for _, part in seen if part.get("state") in ("degraded", "down")]
    return {"status": sorted({s for s, _ in seen}), "state": sorted({p.get("state") for _, p in seen if p}),
            "last_error": errors[-1] if errors else None, "polls": len(seen)}


def health_ok_after(polls: list[tuple[float, dict[str, Any]]], path: tuple[str, ...], t: float) -> float | None:
    """Seconds from ``t`` to the first /health poll with the part ok and the overall status ok."""
    for when, h in polls:
        if when >= t and dig(h, path).get("state") == "ok" and h["status"] == "ok":
            return round(when - t, 3)
    return None


def first_fresh_after(results: list[dict[str, Any]], modality: str, t: float) -> float | None:
    """Seconds from ``t`` to the first published result with a reading of ``modality`` captured after ``t``."""
    for r in results:
        reading = r.get(modality)
        if reading is not None and reading["ts"] >= t:
            return round(r["ts"] - t, 3)
    return None


def counters(d: Daemon) -> dict[str, float]:
    """The drop counters of the daemon, read in-process from Pipeline.health() (the same as /health)."""
    h = d.pipeline.health()
    c = h["counters"]
    out = {"frames_dropped": c["frames_dropped"], "audio_chunks_dropped": c["audio_chunks_dropped"],
           "audio_overflows": c["audio_overflows"], "frames_in": c["frames_in"], "faces": c["faces"],
           "windows": c["windows"], "results": c["results"]}
    for name, q in h["queues"]["sinks"].items():
        out[f"sink_queue_dropped.{name}"] = q["dropped"]
    f = h["sinks"]["file"]
    out.update({"file.written": f["written"], "file.dropped": f["dropped"], "file.reopened": f["reopened"]})
    ht = h["sinks"]["http"]
    out.update({"http.sse_dropped": ht["sse_dropped"], "http.clients_timed_out": ht["clients_timed_out"],
                "http.clients_disconnected": ht["clients_disconnected"]})
    if "mqtt" in h["sinks"]:
        m = h["sinks"]["mqtt"]
        out.update({"mqtt.dropped": m["dropped"], "mqtt.sent": m["sent"], "mqtt.queued": m["queued"],
                    "mqtt.reconnects": m["reconnects"]})
    return out


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before.get(k, 0) for k in after if not k.startswith("mqtt.queued")}


@dataclass
class Trial:
    """One fault: its times and what was seen."""

    t0: float = 0.0  # fault injected
    t1: float = 0.0  # fault removed
    c0: dict[str, float] | None = None


def sse_times(d: Daemon) -> list[float]:
    return [t for t, _ in d.sse[0].received]


def base_measure(d: Daemon, t0: float, t1: float, before_s: float) -> dict[str, Any]:
    """The rates every scenario reports: per modality, the normal SSE client and the file, before vs during."""
    res = d.recorder.results
    b0, b1, f0, f1 = t0 - before_s, t0, t0, t1
    files = [d.path, d.path.with_name("results.jsonl.1")]  # the rotated file too
    file_ts = [r["ts"] for f in files if f.exists() for r in read_lines(f)]
    out = {
        "face_results_per_s": {"before": fresh_readings(res, "face", b0, b1), "during": fresh_readings(res, "face",
                                                                                                      f0, f1)},
        "voice_results_per_s": {"before": fresh_readings(res, "voice", b0, b1),
                                "during": fresh_readings(res, "voice", f0, f1)},
        "results_per_s": {"before": rate([r["ts"] for r in res], b0, b1), "during": rate([r["ts"] for r in res],
                                                                                         f0, f1)},
        "sse_per_s": {"before": rate(sse_times(d), b0, b1), "during": rate(sse_times(d), f0, f1)},
        "file_lines_per_s": {"before": rate(file_ts, b0, b1), "during": rate(file_ts, f0, f1)},
    }
    if d.subscriber is not None:
        got = [t for t, _ in d.subscriber.received]
        out["mqtt_received_per_s"] = {"before": rate(got, b0, b1), "during": rate(got, f0, f1)}
    return out


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a results file; raises on a half or corrupt line."""
    data = path.read_bytes()
    if b"\0" in data:
        raise ValueError(f"{path}: NUL bytes in the file")
    return [json.loads(line) for line in data.decode().splitlines()]


# ---------------------------------------------------------------------------------------------- scenarios


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    inject: Callable[[Daemon], Any]
    restore: Callable[[Daemon, Any], None]
    part: tuple[str, ...]  # where /health reports the faulty part
    modality: str | None = None  # the modality that goes away (recovery: its first fresh result)
    mqtt: bool = False
    mqtt_queue: int = 1000
    outage: str = "outage_s"  # which Mode field sets the fault's length
    instant: bool = False  # the fault is an event (logrotate): no outage, recovery from the event
    until: Callable[[Daemon], bool] | None = None  # the fault lasts until this is true (instead of an outage)


def _mic_overflow(d: Daemon) -> None:
    d.mic.overflow(d.mode.overflow_burst)


def _rename(d: Daemon) -> None:
    os.rename(d.path, d.path.with_name("results.jsonl.1"))


def _delete(d: Daemon) -> None:
    os.unlink(d.path)


def _copytruncate(d: Daemon) -> None:
    shutil.copyfile(d.path, d.path.with_name("results.jsonl.1"))
    with open(d.path, "r+") as f:
        f.truncate(0)


def _disk_full(d: Daemon) -> None:
    d.disk.partial, d.disk.full = 7, True  # the first failing line gets 7 bytes onto the disk


def _sse_misbehave(d: Daemon) -> None:
    d.sse[1].stall()
    d.sse[2].hang_up()


def _nothing(d: Daemon, token: Any = None) -> None:
    pass


SCENARIOS = {s.name: s for s in (
    Scenario("camera_stall", "camera stops delivering (read blocks), then delivers again",
             lambda d: d.camera.stall(), lambda d, _: d.camera.resume(), ("components", "camera"), "face"),
    Scenario("camera_unplug", "camera unplugged (read and open raise), then plugged back",
             lambda d: d.camera.unplug(), lambda d, _: d.camera.plug(), ("components", "camera"), "face"),
    Scenario("mic_overflow", "microphone overflow burst (consecutive overflowed reads, 0.1 s each)",
             _mic_overflow, _nothing, ("components", "microphone"), "voice", until=lambda d: d.mic.overflows == 0),
    Scenario("mic_unplug", "microphone unplugged (read and open raise), then plugged back",
             lambda d: d.mic.unplug(), lambda d, _: d.mic.plug(), ("components", "microphone"), "voice"),
    Scenario("mqtt_broker_kill", "Mosquitto SIGKILLed, restarted on the same port (queue 1000: no drops)",
             lambda d: d.broker.kill(), lambda d, _: d.broker.start(), ("sinks", "mqtt"), mqtt=True),
    Scenario("mqtt_outage_over_queue", "the same with queue_size = 10 (the outage outgrows the queue)",
             lambda d: d.broker.kill(), lambda d, _: d.broker.start(), ("sinks", "mqtt"), mqtt=True,
             mqtt_queue=10),
    Scenario("sse_slow_and_hangup", "one /events client stops reading, one hangs up mid-stream; a third reads on",
             _sse_misbehave, _nothing, ("sinks", "http"), outage="sse_outage_s"),
    Scenario("disk_full", "output disk full (writes fail with ENOSPC, a half line first), then space again",
             _disk_full, lambda d, _: setattr(d.disk, "full", False), ("sinks", "file")),
    Scenario("logrotate_rename", "output file renamed away (logrotate create mode)", _rename, _nothing,
             ("sinks", "file"), instant=True),
    Scenario("logrotate_delete", "output file deleted", _delete, _nothing, ("sinks", "file"), instant=True),
    Scenario("logrotate_copytruncate", "output file copied then truncated in place (copytruncate)",
             _copytruncate, _nothing, ("sinks", "file"), instant=True),
)}


def run_trial(d: Daemon, s: Scenario, mode: Mode) -> dict[str, Any]:
    """One fault on a running daemon: baseline, fault, removal, recovery; what was measured."""
    time.sleep(mode.before_s)
    tr = Trial()
    tr.c0 = counters(d)
    file_lines_before = len(read_lines(d.path)) if d.path.exists() else 0
    mqtt_seen_before = len(d.subscriber.received) if d.subscriber else 0
    clients0 = {c["id"]: c for c in d.http.health()["clients"]}
    tr.t0 = time.time()
    token = s.inject(d)
    if s.until is not None:
        wait_until(lambda: s.until(d), 60.0)
    elif not s.instant:
        time.sleep(getattr(mode, s.outage))
    tr.t1 = time.time()
    s.restore(d, token)
    out: dict[str, Any] = {"outage_s": round(tr.t1 - tr.t0, 2)}
    rec: dict[str, Any] = {}

    # recovery: the faulty part's first fresh output after the fault is removed, and /health ok again
    if s.modality:
        ok = wait_until(lambda: first_fresh_after(d.recorder.results, s.modality, tr.t1) is not None,
                        mode.recover_timeout_s, 0.05)
        rec["first_fresh_result_s"] = first_fresh_after(d.recorder.results, s.modality, tr.t1) if ok else None
    elif s.part == ("sinks", "file"):
        event = tr.t0 if s.instant else tr.t1

        def first_line() -> float | None:
            with contextlib.suppress(OSError, ValueError):
                later = [r["ts"] for r in read_lines(d.path) if r["ts"] >= event]
                return round(later[0] - event, 3) if later else None
            return None

        wait_until(lambda: first_line() is not None, mode.recover_timeout_s, 0.05)
        rec["first_line_written_s"] = first_line()
    elif s.mqtt:
        sub = d.subscriber
        # a result published during the outage, received after the restart (not a redelivery of an older one
        # the broker had persisted for the subscriber)
        wait_until(lambda: any(t >= tr.t1 and ts >= tr.t0 for t, ts in sub.received[mqtt_seen_before:]),
                   mode.recover_timeout_s, 0.02)
        got = [t for t, ts in sub.received[mqtt_seen_before:] if t >= tr.t1 and ts >= tr.t0]
        rec["first_message_delivered_s"] = round(got[0] - tr.t1, 3) if got else None
        drained = wait_until(lambda: d.mqtt.health()["queued"] == 0 and d.mqtt.health()["connected"] and time.time(),
                             mode.recover_timeout_s, 0.02)
        rec["queue_drained_s"] = round(drained - tr.t1, 3) if drained else None
    hp = wait_until(lambda: health_ok_after(d.polls, s.part, tr.t1 if not s.instant else tr.t0),
                    mode.recover_timeout_s, 0.05)
    rec["health_ok_s"] = hp
    time.sleep(mode.after_s + 0.2)
    t_end = time.time()
    out["recovery"] = rec
    out["recovered"] = all(v is not None for v in rec.values())
    during_end = min(tr.t0 + INSTANT_WINDOW_S, t_end) if s.instant else tr.t1
    out["rates"] = base_measure(d, tr.t0, during_end, mode.before_s)
    out["health_during"] = health_states(d.polls, s.part, tr.t0, during_end)
    last = d.polls[-1][1]
    out["health_after"] = {"status": last["status"], "state": dig(last, s.part).get("state")}
    out["drops"] = delta(tr.c0, counters(d))
    out["survived"] = d.threads_alive()

    if s.mqtt:  # ordering and loss: what the subscriber got of what the pipeline published while the sink was cut
        # off: from the kill until the sink had reconnected and drained its queue (the broker's restart plus the
        # sink's reconnect backoff)
        back = tr.t1 + (rec["queue_drained_s"] or 0.0)
        published = [r["ts"] for r in d.recorder.results if tr.t0 <= r["ts"] < back]
        seen = list(dict.fromkeys(ts for _, ts in d.subscriber.received[mqtt_seen_before:]))
        in_order = all(a < b for a, b in zip(seen, seen[1:], strict=False))
        got = set(seen)
        out["mqtt"] = {"published_during_outage": len(published), "outage_seen_by_sink_s": round(back - tr.t0, 2),
                       "delivered_after": sum(1 for ts in published if ts in got),
                       "lost": sum(1 for ts in published if ts not in got),
                       "dropped_counter": out["drops"].get("mqtt.dropped"), "in_order": in_order,
                       "duplicates": len(d.subscriber.received[mqtt_seen_before:]) - len(seen),
                       "max_queued": max((h["sinks"]["mqtt"]["queued"] for t, h in d.polls if tr.t0 <= t < tr.t1
                                          and "mqtt" in h["sinks"]), default=None)}
    if s.part == ("sinks", "file"):
        lines = read_lines(d.path)  # raises on a half line or a NUL gap: whole JSON lines only
        after = [r["ts"] for r in lines if r["ts"] >= tr.t0]
        published = [r["ts"] for r in d.recorder.results if tr.t0 <= r["ts"] < t_end - 0.3]
        if s.name in ("logrotate_copytruncate", "logrotate_rename"):  # lines in the rotated file are not lost
            copied = {r["ts"] for r in read_lines(d.path.with_name("results.jsonl.1"))}
            after = sorted(set(after) | {ts for ts in copied if ts >= tr.t0})
        out["file"] = {"whole_json_lines": True, "lines_before_event": file_lines_before,
                       "lines_missing_after_event": sum(1 for ts in published if ts not in set(after)),
                       "dropped_counter": out["drops"]["file.dropped"], "reopened": out["drops"]["file.reopened"]}
        if s.instant:  # the next repeat starts from one file again
            for extra in d.path.parent.glob("results.jsonl.*"):
                extra.unlink()
    if s.name == "sse_slow_and_hangup":
        h = d.http.health()
        clients = {c["id"]: c for c in h["clients"]}
        slow_id = d.sse_ids[1]
        slow = clients.get(slow_id)
        out["sse"] = {"normal_client_received_during": sum(1 for t in sse_times(d) if tr.t0 <= t < tr.t1),
                      "slow_client": slow or "disconnected",
                      "slow_client_results_written_while_not_reading": None if slow is None else
                      slow["sent"] - clients0.get(slow_id, {"sent": 0})["sent"],
                      "hangup_client_removed": d.sse_ids[2] not in clients,
                      "clients_timed_out": out["drops"]["http.clients_timed_out"],
                      "clients_disconnected": out["drops"]["http.clients_disconnected"]}
    return out


def run_scenario(s: Scenario, mode: Mode, folder: Path, repeats: int, progress: Callable[[str], None]) -> dict:
    """One daemon, ``repeats`` faults; per-repeat measurements, the daemon's stop, and its log's verdict."""
    capture = Capture()
    trials: list[dict[str, Any]] = []
    started = time.monotonic()
    with capture.active():
        d = Daemon(folder, mode, mqtt=s.mqtt, mqtt_queue=s.mqtt_queue)
        try:
            for r in range(repeats):
                if s.name.startswith("sse"):  # two fresh clients to misbehave (4 KB receive buffers), reading for now
                    for old in d.sse[1:]:
                        old.close()
                    known = {c["id"] for c in d.http.health()["clients"]}
                    d.sse[1:] = [SseClient(d.http.host, d.http.port, rcvbuf=4096) for _ in range(2)]
                    wait_until(lambda known=known: len({c["id"] for c in d.http.health()["clients"]} - known) == 2,
                               5.0)
                    first = min(c["id"] for c in d.http.health()["clients"])
                    d.sse_ids = [first, *sorted({c["id"] for c in d.http.health()["clients"]} - known)]
                trial = run_trial(d, s, mode)
                trials.append(trial)
                progress(f"{s.name} #{r + 1}: survived {trial['survived']}, recovery {trial['recovery']}")
        finally:
            stop = d.stop()
    return {"scenario": s.name, "what": s.what, "repeats": trials, **stop,
            "log_tracebacks": capture.tracebacks(), "log_errors": capture.errors,
            "thread_exceptions": capture.thread_exceptions, "health_poll_failures": d.poll_failures,
            "wall_s": round(time.monotonic() - started, 1), "log_tail": capture.log.getvalue()[-1500:]}


# ---------------------------------------------------------------------------------------------- summary


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    """Per scenario: survival over repeats, recovery p50/max, rates, health seen, drops (median per repeat)."""
    trials = run["repeats"]
    clean = run["stopped_cleanly"] and not run["log_tracebacks"] and not run["thread_exceptions"]
    rec_keys = sorted({k for t in trials for k in t["recovery"]})
    recovery = {k: {"p50": _median([t["recovery"][k] for t in trials]),
                    "max": max((t["recovery"][k] for t in trials if t["recovery"][k] is not None), default=None),
                    "missing": sum(1 for t in trials if t["recovery"][k] is None)} for k in rec_keys}
    rates = {k: {p: statistics.median(t["rates"][k][p] for t in trials) for p in ("before", "during")}
             for k in trials[0]["rates"]}
    drops = {k: statistics.median(t["drops"][k] for t in trials) for k in trials[0]["drops"]}
    during = {"status": sorted({s for t in trials for s in t["health_during"]["status"]}),
              "state": sorted({s for t in trials for s in t["health_during"]["state"] if s}),
              "last_error": next((t["health_during"]["last_error"] for t in trials
                                  if t["health_during"]["last_error"]), None)}
    after = sorted({f"{t['health_after']['status']}/{t['health_after']['state']}" for t in trials})
    out = {"repeats": len(trials), "survived": sum(1 for t in trials if t["survived"]) if clean else 0,
           "recovered": sum(1 for t in trials if t["recovered"]), "recovery_s": recovery, "rates": rates,
           "health_during": during, "health_after": after, "drops_median": drops}
    for key in ("mqtt", "file", "sse"):
        if key in trials[0]:
            out[key] = [t[key] for t in trials]
    return out


def run(scenarios: list[str] | None = None, quick: bool = False, repeats: int | None = None,
        progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the scenarios (all by default); returns the JSON-ready result."""
    mode = QUICK if quick else FULL
    names = scenarios or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    if any(SCENARIOS[n].mqtt for n in names) and not Path(MOSQUITTO).exists():
        raise SystemExit(f"the MQTT scenarios need mosquitto ({MOSQUITTO})")
    n = repeats or mode.repeats
    started = time.monotonic()
    out: dict[str, Any] = {"mode": mode.name, "settings": {k: v for k, v in vars(mode).items() if k != "name"},
                           "scenarios": {}}
    for name in names:
        with tempfile.TemporaryDirectory(prefix=f"fault-{name}-") as tmp:
            result = run_scenario(SCENARIOS[name], mode, Path(tmp), n, progress)
        result["summary"] = summarize(result)
        out["scenarios"][name] = result
    out["wall_s"] = round(time.monotonic() - started, 1)
    out["all_survived"] = all(r["summary"]["survived"] == r["summary"]["repeats"] for r in out["scenarios"].values())
    out["all_recovered"] = all(r["summary"]["recovered"] == r["summary"]["repeats"]
                               for r in out["scenarios"].values())
    return out


def _fmt(x: Any) -> str:
    return "-" if x is None else f"{x:g}" if isinstance(x, float | int) else str(x)


def _drops_text(name: str, s: dict[str, Any]) -> str:
    d = s["drops_median"]
    keys = {"frames_dropped", "audio_chunks_dropped", "audio_overflows", "file.dropped", "http.sse_dropped",
            "mqtt.dropped"} | {k for k in d if k.startswith("sink_queue_dropped.")}
    parts = [f"{k.replace('sink_queue_dropped.', 'queue ')} {_fmt(d[k])}" for k in sorted(keys) if d.get(k)]
    if "mqtt" in s:
        m = s["mqtt"]
        parts.append(f"MQTT lost {'/'.join(str(x['lost']) for x in m)} of "
                     f"{'/'.join(str(x['published_during_outage']) for x in m)} published while the sink was cut off "
                     f"(dropped counter {'/'.join(_fmt(x['dropped_counter']) for x in m)}), "
                     f"in order {sum(x['in_order'] for x in m)}/{len(m)}")
    if "file" in s:
        f = s["file"]
        missing = "/".join(str(x["lines_missing_after_event"]) for x in f)
        parts.append(f"lines missing from the files after the event {missing}"
                     f" (file dropped counter {'/'.join(_fmt(x['dropped_counter']) for x in f)}; reopened "
                     f"{'/'.join(_fmt(x['reopened']) for x in f)})")
    if "sse" in s:
        slow = [x["slow_client"] for x in s["sse"]]
        kept = [c for c in slow if c != "disconnected"]
        parts.append(f"stalled client cut off in {len(slow) - len(kept)}/{len(slow)} repeats, its queue "
                     f"{'/'.join(str(c['queued']) for c in kept) or '-'}, dropped "
                     f"{'/'.join(str(c['dropped']) for c in kept) or '-'}")
        parts.append("results written to it while it did not read (kernel buffers) "
                     + "/".join(str(x["slow_client_results_written_while_not_reading"]) for x in s["sse"]))
        parts.append(f"hung-up client removed {sum(x['hangup_client_removed'] for x in s['sse'])}/{len(s['sse'])}")
    return "; ".join(parts) or "none"


def render(result: dict[str, Any], command: str) -> str:
    """The markdown table."""
    lines = [
        "# Fault injection: the daemon under camera, microphone, broker, client and disk faults",
        "",
        f"`{command}` ({result['date']}, {result['machine']}, load average at start "
        f"{result['load_average_at_start']}; {result['wall_s']:.0f} s). A running daemon (`build_pipeline` of "
        "`edgeemo run` with the shipped face and voice models) on stand-in camera (the demo portrait, 15 fps) "
        f"and microphone (synthetic speech, {result['settings']['mic_speed']:g}x real time) that break on command, "
        "with real outputs: HTTP (`/health` polled over HTTP every 0.1 s, one `/events` client reading "
        "throughout), a JSON-lines file, and Mosquitto on a free loopback port with a paho subscriber. One daemon "
        f"per scenario, the fault injected {result['settings']['repeats']} times ({result['settings']['before_s']:g} s "
        f"baseline, {result['settings']['outage_s']:g} s fault, SSE faults {result['settings']['sse_outage_s']:g} s). "
        + ("[pipeline] settings: the shipped defaults (publish every 0.2 s, heartbeat 1 s, reopen backoff 0.5 s "
           "doubling to 30 s, stalled after 5 s)." if not result["settings"]["pipeline"] else
           f"[pipeline] settings: {result['settings']['pipeline']}."),
        "",
        "Survived: the daemon's threads alive after each repeat, a clean stop, no traceback or uncaught thread "
        "exception in its log or stderr. Rates: results per second with a fresh reading of that modality (or lines, "
        "events, messages per second), median over repeats, baseline -> during the fault. Recovery: seconds from "
        "removing the fault (for instant events: from the event) to the first fresh output of the faulty part, "
        "and to `/health` showing that part and the overall status `ok`; p50 / max over repeats.",
        "",
        "| scenario | repeats | survived | other modality / outputs during the fault (per s, before -> during) "
        "| recovery: first fresh output p50 / max (s) | recovery: /health ok p50 / max (s) "
        "| /health during | /health after | drops (median per repeat) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in result["scenarios"].items():
        s = r["summary"]
        rt = s["rates"]
        keep = []
        for key, label in (("face_results_per_s", "face"), ("voice_results_per_s", "voice"),
                           ("sse_per_s", "SSE"), ("file_lines_per_s", "file"), ("mqtt_received_per_s", "MQTT")):
            if key in rt:
                keep.append(f"{label} {_fmt(rt[key]['before'])} -> {_fmt(rt[key]['during'])}")
        rec = s["recovery_s"]
        first = next((v for k, v in rec.items() if k != "health_ok_s"), None)
        first_txt = "-" if first is None else f"{_fmt(first['p50'])} / {_fmt(first['max'])}" + (
            f" ({first['missing']} never)" if first["missing"] else "")
        if "queue_drained_s" in rec:
            q = rec["queue_drained_s"]
            first_txt += f"; queue drained {_fmt(q['p50'])} / {_fmt(q['max'])}"
        hok = rec["health_ok_s"]
        during = s["health_during"]
        err = (during["last_error"] or "")[:110]
        lines.append(
            f"| `{name}`: {r['what']} | {s['repeats']} | {s['survived']}/{s['repeats']} | {'; '.join(keep)} "
            f"| {first_txt} | {_fmt(hok['p50'])} / {_fmt(hok['max'])}"
            + (f" ({hok['missing']} never)" if hok["missing"] else "")
            + f" | status {'/'.join(during['status'])}, part {'/'.join(during['state'])}"
            + (f": `{err}`" if err else "") + f" | {', '.join(s['health_after'])} | {_drops_text(name, s)} |")
    lines += ["", "Notes: recovery after an unplugged camera or microphone or a dead broker is set by the reopen "
              "backoff (0.5 s doubling, capped at `retry_max_s`): after an 8 s outage the next attempt comes about "
              "7.5 s after the device or broker is back. A voice result needs a full 3 s window of new audio after "
              "any gap, and after an overflow the microphone stays `degraded` for `stall_s`. The MQTT sink is cut off "
              "from the kill until its reconnect, so results published after the broker is back but before the "
              "reconnect wait in its queue too. `logrotate_delete` has no file baseline (the deleted file held it).",
              "", f"All scenarios survived every repeat: {'yes' if result['all_survived'] else '**no**'}; "
                  f"all recovered: {'yes' if result['all_recovered'] else '**no**'}. Per-repeat numbers, the "
                  "health seen, every counter delta and the MQTT ordering check are in `fault_injection.json`.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=None, help="faults per scenario (default 5; --quick: 1)")
    ap.add_argument("--quick", action="store_true", help="1 repeat, short outages, fast retry settings (CI)")
    ap.add_argument("--scenarios", default="", help=f"comma-separated subset of: {', '.join(SCENARIOS)}")
    ap.add_argument("--out", type=Path, default=RESULTS / "fault_injection", help="writes OUT.md and OUT.json")
    args = ap.parse_args()
    load = [round(x, 2) for x in os.getloadavg()]
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    result = run([s for s in args.scenarios.split(",") if s] or None, args.quick, args.repeats,
                 progress=lambda line: print(line, file=sys.stderr, flush=True))
    result["date"], result["load_average_at_start"] = date, load
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    command = "benchmarks/robustness/fault_injection.py" + (" --quick" if args.quick else "") + (
        f" --repeats {args.repeats}" if args.repeats else "") + (f" --scenarios {args.scenarios}" if args.scenarios
                                                                 else "")
    result["command"] = command
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result["models_sha256"] = shipped_sha256(["face", "voice"])
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    text = render(result, command)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    sys.exit(0 if result["all_survived"] and result["all_recovered"] else 1)


if __name__ == "__main__":
    main()
