"""Faults while the daemon runs: a real Pipeline with the shipped models, stand-in sources
that misbehave on command, real sinks, /health read over real HTTP. The camera or the
microphone goes away and comes back, the microphone overflows, a source stalls, a sink
blocks, the disk fills up, logrotate moves the file, SSE clients stall or hang up, the MQTT
broker dies; the other parts keep going and /health says what is wrong."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import cv2
import pytest
import soundfile as sf
from conftest import NO_TF
from test_device_mqtt import wait_until

from edgeemo.audio import SAMPLE_RATE
from edgeemo.device.demo_clip import DemoCamera, demo_audio
from edgeemo.device.paths import FacePath, VoicePath
from edgeemo.device.pipeline import Pipeline, PipelineSettings
from edgeemo.device.sinks import HttpSink, MqttSink, RotatingFileSink
from edgeemo.device.standins import Disk, MosquittoBroker, StandInCamera, StandInMicrophone

QUICK = PipelineSettings(publish_interval_s=0.05, heartbeat_s=0.2, retry_initial_s=0.05, retry_max_s=0.2,
                         stall_s=0.5)


@pytest.fixture(scope="module")
def face_frame():
    return DemoCamera(seconds=1.0, fps=10, no_face_s=0.0, realtime=False).frame(0)


class ListSink:
    def __init__(self):
        self.results = []

    def publish(self, result):
        self.results.append(json.loads(json.dumps(result)))

    def close(self):
        pass


@contextlib.contextmanager
def running(pipeline: Pipeline):
    """The pipeline's run() in a thread for the duration of the block; stopped cleanly after."""
    thread = threading.Thread(target=pipeline.run, kwargs={"handle_signals": False}, daemon=True)
    thread.start()
    try:
        yield pipeline
    finally:
        pipeline.stop()
        thread.join(15)
        assert not thread.is_alive(), "the pipeline did not stop"


def get_json(url: str, headers: dict | None = None) -> dict:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as resp:
        return json.loads(resp.read())


def test_camera_unplugged_and_back_while_the_voice_keeps_publishing(face_model, voice_model, face_frame):
    camera, mic, sink = StandInCamera([face_frame], fps=20), StandInMicrophone(speed=10), ListSink()
    http = HttpSink(port=0)
    p = Pipeline(camera, mic, FacePath(face_model), VoicePath(voice_model), [sink, http], settings=QUICK)
    with running(p):
        health = lambda: get_json(http.url + "/health")  # noqa: E731
        wait_until(lambda: p.counters.faces > 0 and p.counters.windows > 0, 20, "face and voice readings")
        assert health()["status"] == "ok"
        camera.unplug()
        down = wait_until(lambda: (h := health())["components"]["camera"]["state"] == "down" and h, 5, "camera down")
        assert down["status"] == "degraded"
        assert "stopped delivering frames" in down["components"]["camera"]["last_error"]
        assert down["components"]["microphone"]["state"] == "ok" and down["sources"]["camera"] == "down"
        since = down["components"]["camera"]["since"]
        windows, frames = p.counters.windows, p.counters.frames_in
        wait_until(lambda: p.counters.windows >= windows + 3, 10, "voice windows while the camera is away")
        wait_until(lambda: any(r["voice"] and r["fused"] and r["status"]["face"] == "stale" for r in sink.results[-3:]),
                   5, "voice-only results once the last face is stale")
        assert p.counters.frames_in == frames
        assert camera.opens >= 2  # reopening with backoff
        camera.plug()
        up = wait_until(lambda: (h := health())["components"]["camera"]["state"] == "ok" and h, 5, "camera back")
        assert up["components"]["camera"]["reconnects"] == 1 and up["components"]["camera"]["since"] > since
        assert up["components"]["camera"]["errors"] >= 1 and up["status"] == "ok"
        faces = p.counters.faces
        wait_until(lambda: p.counters.faces > faces, 10, "faces again")
    assert p.counters.errors["camera"] >= 1 and p.counters.reconnects["camera"] == 1


def test_microphone_overflow_is_counted_and_unplugging_it_leaves_the_face_running(face_model, voice_model,
                                                                                   face_frame):
    camera, mic = StandInCamera([face_frame], fps=20), StandInMicrophone(speed=10)
    p = Pipeline(camera, mic, FacePath(face_model), VoicePath(voice_model), [ListSink()], settings=QUICK)
    with running(p):
        wait_until(lambda: p.counters.windows > 0, 20, "a voice window")
        mic.overflow()
        wait_until(lambda: p.components["microphone"].state == "degraded", 5, "degraded after the overflow")
        h = p.health()
        assert h["counters"]["audio_overflows"] == 1 and h["components"]["microphone"]["overflows"] == 1
        assert "overflowed" in h["components"]["microphone"]["last_error"] and mic.opens == 1  # not reopened
        wait_until(lambda: p.components["microphone"].state == "ok", 5, "ok once no more overflows")
        mic.unplug()
        wait_until(lambda: p.components["microphone"].state == "down", 5, "microphone down")
        processed = p.counters.frames_processed
        wait_until(lambda: p.counters.frames_processed >= processed + 5, 10, "faces while the microphone is away")
        mic.plug()
        wait_until(lambda: p.components["microphone"].state == "ok", 5, "microphone back")
        windows = p.counters.windows
        wait_until(lambda: p.counters.windows > windows, 10, "voice windows again")
    assert p.counters.reconnects["microphone"] == 1 and p.counters.audio_overflows == 1


def test_a_gap_restarts_the_voice_window(voice_model):
    path = VoicePath(voice_model, hop_s=0.5)
    speech = demo_audio(0.0, 4.0, 0.0)
    assert len(path.push(speech[: 3 * SAMPLE_RATE])) == 1
    path.reset()  # what the worker does after an overflow or a reopen
    assert path.push(speech[: 2 * SAMPLE_RATE]) == []  # 2 s of new audio: no window splices across the gap
    assert len(path.push(speech[: SAMPLE_RATE])) == 1  # the first window: 3 s after the gap


def test_a_stalled_camera_is_reported_and_recovers(face_model, face_frame):
    camera = StandInCamera([face_frame], fps=20)
    p = Pipeline(camera, None, FacePath(face_model), None, [ListSink()], settings=QUICK)
    with running(p):
        wait_until(lambda: p.counters.frames_in > 2, 10, "frames")
        camera.stall()
        wait_until(lambda: p.components["camera"].state == "degraded", 5, "stalled")
        assert p.health()["components"]["camera"]["last_error"].startswith("stalled: nothing from camera stand-in")
        camera.resume()
        wait_until(lambda: p.components["camera"].state == "ok", 5, "flowing again")


class BlockingSink:
    """A sink that hangs (a stdout pipe nobody reads) until released."""

    name = "stuck"

    def __init__(self):
        self.release, self.count = threading.Event(), 0

    def publish(self, result):
        self.release.wait()
        self.count += 1

    def close(self):
        self.release.set()


def test_a_blocked_sink_never_stalls_the_pipeline(face_model, face_frame):
    stuck, good = BlockingSink(), ListSink()
    settings = PipelineSettings(publish_interval_s=0.0, heartbeat_s=0.2, sink_queue=5, stall_s=0.5)
    camera = StandInCamera([face_frame], fps=30)
    p = Pipeline(camera, None, FacePath(face_model), None, [stuck, good], settings=settings)
    with running(p):
        wait_until(lambda: len(good.results) > 20, 10, "results to the working sink")
        h = p.health()
        assert h["sinks"]["stuck"]["state"] == "degraded" and "queue full" in h["sinks"]["stuck"]["last_error"]
        assert h["queues"]["sinks"]["stuck"]["depth"] == 5 and h["queues"]["sinks"]["stuck"]["dropped"] > 0
        assert h["sinks"]["ListSink"]["state"] == "ok" and h["status"] == "degraded"
        stuck.release.set()
        wait_until(lambda: p.health()["sinks"]["stuck"]["state"] == "ok", 5, "the sink catching up")
    assert p.counters.results_dropped > 0 and stuck.count > 0


def test_disk_full_drops_and_counts_lines_then_resumes_with_whole_lines(tmp_path):
    disk, path = Disk(), tmp_path / "results.jsonl"
    sink = RotatingFileSink(path, write=disk.write)
    sink.publish({"ts": 1.0})
    disk.full, disk.partial = True, 5  # half a line gets onto the disk, then ENOSPC
    for ts in (2.0, 3.0, 4.0):
        sink.publish({"ts": ts})  # never raises: the pipeline is not bothered
    h = sink.health()
    assert h["state"] == "down" and h["dropped"] == 3 and h["written"] == 1 and "ENOSPC" in h["last_error"]
    disk.full = False  # space again
    sink.publish({"ts": 5.0})
    sink.close()
    assert sink.health()["state"] == "ok" and sink.health()["written"] == 2
    assert [json.loads(line)["ts"] for line in path.read_text().splitlines()] == [1.0, 5.0]  # no half line


def test_a_real_full_device_in_a_running_pipeline(face_model, face_frame):
    file_sink, good = RotatingFileSink("/dev/full", max_bytes=10), ListSink()  # never rotated: not a regular file
    camera = StandInCamera([face_frame], fps=20)
    p = Pipeline(camera, None, FacePath(face_model), None, [file_sink, good], settings=QUICK)
    with running(p):
        wait_until(lambda: len(good.results) > 5, 10, "results")
        wait_until(lambda: p.health()["sinks"]["file"]["dropped"] > 3, 5, "dropped lines")
        h = p.health()
        assert h["sinks"]["file"]["state"] == "down" and "No space left on device" in h["sinks"]["file"]["last_error"]
        assert h["sinks"]["file"]["rotations"] == 0 and h["status"] == "degraded"
        assert h["sinks"]["file"]["errors"] >= h["sinks"]["file"]["dropped"] > 3
    assert os.path.exists("/dev/full") and not os.path.exists("/dev/full.1")


def test_logrotate_moving_or_deleting_the_file_is_followed(tmp_path):
    path = tmp_path / "results.jsonl"
    sink = RotatingFileSink(path)
    sink.publish({"ts": 1.0})
    os.rename(path, tmp_path / "results.jsonl.1")  # logrotate's default (create) mode
    sink.publish({"ts": 2.0})
    os.unlink(path)  # deleted outright
    sink.publish({"ts": 3.0})
    with open(path, "r+") as f:  # copytruncate: same inode, emptied
        f.truncate(0)
    sink.publish({"ts": 4.0})
    sink.close()
    assert (tmp_path / "results.jsonl.1").read_text() == '{"ts":1.0}\n'
    assert path.read_bytes() == b'{"ts":4.0}\n'  # no NUL gap before the line
    assert sink.health()["reopened"] == 2 and sink.health()["dropped"] == 0


def _sse_socket(http: HttpSink, rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect((http.host, http.port))
    s.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.0 200")
    return s


def test_a_slow_sse_client_loses_its_oldest_results_and_is_cut_off_without_blocking_publish():
    http = HttpSink(port=0, sse_queue=4, client_timeout_s=0.5)
    try:
        slow = _sse_socket(http, rcvbuf=4096)  # and never reads again
        wait_until(lambda: len(http.health()["clients"]) == 1, 5, "the client")
        big = {"ts": 0.0, "pad": "x" * 20_000}
        slowest, deadline, i = 0.0, time.monotonic() + 20, 0
        while http.health()["clients_timed_out"] == 0:  # keep publishing until the server gives up on it
            assert time.monotonic() < deadline, http.health()
            started = time.monotonic()
            http.publish({**big, "ts": float(i)})
            slowest = max(slowest, time.monotonic() - started)
            if http.health()["clients"]:
                client = http.health()["clients"][0]
            i += 1
            time.sleep(0.002)
        assert slowest < 0.25  # appends to bounded queues only: never waits for the client (timeout 0.5 s)
        assert client["queued"] <= 4 and client["dropped"] > 0
        h = http.health()
        assert h["clients"] == [] and h["sse_dropped"] >= client["dropped"]
        slow.close()
    finally:
        http.close()


def test_an_sse_client_that_hangs_up_mid_stream_is_removed():
    http = HttpSink(port=0)
    try:
        s = _sse_socket(http)
        http.publish({"ts": 1.0})
        assert s.recv(100).startswith(b"data: {")
        s.close()
        wait_until(lambda: (http.publish({"ts": 2.0}), http.health()["clients"] == [])[1], 5, "the client removed")
        assert http.health()["clients_disconnected"] == 1
        with urllib.request.urlopen(http.url + "/events", timeout=5) as events:  # a new client is served
            wait_until(lambda: len(http.health()["clients"]) == 1, 5, "the new client")
            http.publish({"ts": 3.0})
            assert json.loads(events.readline().decode().removeprefix("data: "))["ts"] == 3.0
    finally:
        http.close()


def test_too_many_event_streams_get_503():
    http = HttpSink(port=0, max_clients=1)
    try:
        first = _sse_socket(http)
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(http.url + "/events", timeout=5)
        assert exc.value.code == 503 and http.health()["clients_rejected"] == 1
        first.close()
    finally:
        http.close()


def test_mqtt_broker_dies_and_returns_while_the_pipeline_runs(tmp_path, face_model, face_frame):
    broker = MosquittoBroker(tmp_path).start()
    http = HttpSink(port=0)
    mqtt = MqttSink("127.0.0.1", broker.port, topic_prefix="f", retry_initial_s=0.05, retry_max_s=0.2)
    p = Pipeline(StandInCamera([face_frame], fps=20), None, FacePath(face_model), None, [http, mqtt], settings=QUICK)
    try:
        with running(p):
            health = lambda: get_json(http.url + "/health")  # noqa: E731
            wait_until(lambda: health()["sinks"]["mqtt"].get("sent", 0) > 3, 10, "results to the broker")
            broker.stop(signal.SIGKILL)
            down = wait_until(lambda: (h := health())["sinks"]["mqtt"]["state"] == "down" and h, 5, "mqtt down")
            assert down["status"] == "degraded" and down["sinks"]["http"]["state"] == "ok"
            assert not down["sinks"]["mqtt"]["connected"]
            results = p.counters.results
            wait_until(lambda: health()["sinks"]["mqtt"]["queued"] > 3, 5, "results queued for the broker")
            assert p.counters.results > results  # everything else goes on
            broker.start()
            up = wait_until(lambda: (h := health())["sinks"]["mqtt"]["state"] == "ok" and h, 10, "mqtt back")
            assert up["sinks"]["mqtt"]["reconnects"] == 1 and up["status"] == "ok"
            wait_until(lambda: health()["sinks"]["mqtt"]["queued"] == 0, 10, "the queue delivered")
    finally:
        broker.stop()


def test_edgeemo_run_follows_logrotate_and_reports_it_in_health(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "a.png"), DemoCamera(seconds=1.0, fps=10, no_face_s=0.0, realtime=False).frame(0))
    sf.write(tmp_path / "speech.wav", demo_audio(0.0, 3.5, 0.0), SAMPLE_RATE, subtype="PCM_16")
    out = tmp_path / "out" / "results.jsonl"
    config = tmp_path / "device.toml"
    config.write_text(f'[camera]\nsource = "{frames}"\nfps = 10\nloop = true\n'
                      f'[microphone]\nsource = "{tmp_path / "speech.wav"}"\nloop = true\n'
                      f'[output]\nstdout = "off"\nfile = "{out}"\n[http]\nport = 0\n'
                      '[pipeline]\npublish_interval_s = 0.1\n')
    proc = subprocess.Popen([sys.executable, "-c", NO_TF, "run", "--config", str(config)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in proc.stderr:
            if m := re.search(r"serving (http://127\.0\.0\.1:\d+)/latest", line):
                url = m.group(1)
                break
        assert url, "no 'serving' line"
        wait_until(lambda: out.exists() and out.stat().st_size > 0, 20, "lines in the file")
        os.rename(out, out.with_name("results.jsonl.1"))
        wait_until(lambda: out.exists() and out.stat().st_size > 0, 10, "a new file after the move")
        h = get_json(url + "/health")
        assert h["sinks"]["file"]["reopened"] == 1 and h["sinks"]["file"]["state"] == "ok"
        assert set(h["queues"]) == {"frames", "audio", "sinks"} and h["components"]["camera"]["state"] == "ok"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        for name in ("results.jsonl", "results.jsonl.1"):
            for line in (out.parent / name).read_text().splitlines():
                assert set(json.loads(line)) == {"ts", "face", "voice", "fused", "status"}
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
