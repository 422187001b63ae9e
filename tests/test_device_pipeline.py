"""The daemon loop with the shipped models and replayed/fake sources: results, missing and
failing modalities, bounded queues, recovery, shutdown, and the HTTP/file/MQTT sinks."""

from __future__ import annotations

import json
import queue
import threading
import urllib.request
from dataclasses import replace

import numpy as np
import pytest

from edgeemo.audio import SAMPLE_RATE
from edgeemo.device.demo_clip import DemoCamera, demo_audio, resonator, sawtooth
from edgeemo.device.microphone import AudioReplay
from edgeemo.device.paths import FacePath, VoicePath
from edgeemo.device.pipeline import Pipeline, PipelineSettings, put_drop_oldest
from edgeemo.device.sinks import HttpSink, MqttSink, RotatingFileSink
from edgeemo.device.sources import FrameReplay
from edgeemo.errors import EdgeemoError
from edgeemo.face_detect import Box, HaarFaceDetector
from edgeemo.labels import EMOTIONS

FAST = PipelineSettings(publish_interval_s=0.0, retry_initial_s=0.01, retry_max_s=0.02)


def test_demo_voice_filters_match_scipy_signal():
    # the demo synthesises its voice with numpy alone; the numbers are scipy.signal's
    from scipy.signal import lfilter
    from scipy.signal import sawtooth as scipy_sawtooth

    phase = np.linspace(-20, 60, 20001)
    np.testing.assert_allclose(sawtooth(phase, 0.8), scipy_sawtooth(phase, width=0.8), atol=1e-12)
    x = np.random.default_rng(0).standard_normal(4000)
    for f, bw in ((730, 80), (2290, 100), (3010, 120)):
        r, w = np.exp(-np.pi * bw / SAMPLE_RATE), 2 * np.pi * f / SAMPLE_RATE
        expected = lfilter([1 - r], [1, -2 * r * np.cos(w), r * r], x)
        np.testing.assert_allclose(resonator(x, f, bw), expected, atol=1e-10)


@pytest.fixture(scope="module")
def demo_frames():
    cam = DemoCamera(seconds=1.0, fps=10, no_face_s=0.3, realtime=False)
    return [cam.frame(i) for i in range(cam.n)]  # 7 frames with the face, 3 on its side


class ListSink:
    def __init__(self):
        self.results, self.closed = [], False

    def publish(self, result):
        self.results.append(json.loads(json.dumps(result)))  # what a JSON sink would carry

    def close(self):
        self.closed = True


def test_face_path_finds_the_face_and_takes_your_own_boxes(face_model, demo_frames):
    path = FacePath(face_model)
    probs = path(demo_frames[0])
    assert probs.shape == (7,) and probs.sum() == pytest.approx(1.0, abs=0.02)
    assert path(np.zeros((480, 640, 3), np.uint8)) is None  # no face: nothing, not a guess
    mine = path(np.zeros((480, 640, 3), np.uint8), boxes=[Box(100, 100, 200, 200)])
    assert mine is not None and mine.shape == (7,)
    boxes = path.detect(demo_frames[0])  # detected on a 320-wide copy, returned in full-frame pixels
    assert boxes and boxes[0].w > 100


def test_voice_path_windows_every_hop_and_silence_is_no_speech(voice_model):
    path = VoicePath(voice_model, hop_s=0.5)
    silence = np.zeros(4 * SAMPLE_RATE, np.int16)
    windows = path.push(silence)
    assert len(windows) == 3 and all(w is None for w in windows)  # at 3.0, 3.5 and 4.0 s
    speech = demo_audio(lead_s=0.0, speech_s=3.0, tail_s=0.0)
    out = [w for i in range(0, len(speech), 1600) for w in path.push(speech[i : i + 1600])]  # 0.1 s chunks
    assert len(out) == 6 and out[-1] is not None and out[-1].shape == (7,)


@pytest.mark.parametrize("chunk", [160, 1600, 4800, 7000, 40000])
def test_voice_windows_do_not_depend_on_the_chunk_size(voice_model, chunk):
    pcm = demo_audio(lead_s=0.0, speech_s=5.0, tail_s=0.0)
    reference = VoicePath(voice_model, hop_s=0.5).push(pcm)  # one big chunk
    path = VoicePath(voice_model, hop_s=0.5)
    got = [w for i in range(0, len(pcm), chunk) for w in path.push(pcm[i : i + chunk])]
    assert len(got) == len(reference) == 5  # windows ending at 3.0, 3.5, ..., 5.0 s
    for a, b in zip(got, reference, strict=True):
        np.testing.assert_array_equal(a, b)


def test_models_must_match_their_modality(face_model, voice_model):
    with pytest.raises(EdgeemoError, match="needs a face model"):
        FacePath(voice_model)
    with pytest.raises(EdgeemoError, match="needs a voice model"):
        VoicePath(face_model)


def test_put_drop_oldest_keeps_memory_bounded():
    q = queue.Queue(maxsize=2)
    dropped = sum(put_drop_oldest(q, i) for i in range(5))
    assert dropped == 3 and [q.get_nowait(), q.get_nowait()] == [3, 4]


def test_replayed_run_publishes_fused_results_and_counts(face_model, voice_model, demo_frames):
    sink = ListSink()
    camera = FrameReplay(demo_frames, fps=0)
    mic = AudioReplay(demo_audio(0.0, 3.5, 0.0), realtime=False)
    roomy = PipelineSettings(frame_queue=20, audio_queue_s=60, publish_interval_s=0.0)  # nothing dropped
    face = FacePath(face_model, HaarFaceDetector())  # the frontal cascade: blind to the sideways frames
    p = Pipeline(camera, mic, face, VoicePath(voice_model), [sink], settings=roomy)
    counters = p.run(duration_s=60, handle_signals=False)  # ends with the replays
    assert sink.closed
    assert counters.frames_in == counters.frames_processed == 10 and counters.frames_dropped == 0
    assert counters.faces == 7 and counters.no_face == 3  # the last 3 frames show the photo on its side
    assert counters.windows == 2 and counters.no_speech == 0  # 3.5 s of speech: windows at 3.0 and 3.5 s
    assert sum(counters.errors.values()) == 0
    for r in sink.results:
        assert set(r) == {"ts", "face", "voice", "fused", "status"}
        for name in ("face", "voice", "fused"):
            assert r[name] is None or (r[name]["label"] in EMOTIONS and set(r[name]["probs"]) == set(EMOTIONS))
    assert any(r["face"] and r["fused"] for r in sink.results)
    assert any(r["voice"] for r in sink.results)
    assert p.health()["sources"] == {"camera": "ended", "microphone": "ended"}


class FlakyCamera:
    """Delivers 2 frames, fails (unplugged), fails to reopen once, then comes back with 2 more frames."""

    name = "camera flaky"

    def __init__(self, frame):
        self.frame, self.reads, self.opens = frame, 0, 0

    def open(self):
        self.opens += 1
        if self.opens == 2:
            raise EdgeemoError("camera flaky: no such device")

    def read(self):
        self.reads += 1
        if self.reads == 3:
            raise EdgeemoError("camera flaky stopped delivering frames")
        return None if self.reads > 5 else self.frame

    def close(self):
        pass


def test_frames_the_face_worker_cannot_keep_up_with_are_dropped_and_counted(face_model, demo_frames):
    p = Pipeline(FrameReplay(demo_frames * 5, fps=0), None, FacePath(face_model), None, [ListSink()],
                 settings=PipelineSettings(frame_queue=2))
    counters = p.run(duration_s=60, handle_signals=False)
    assert counters.frames_in == 50 and counters.frames_processed + counters.frames_dropped == 50
    assert counters.frames_dropped > 0  # an unpaced replay outruns detection + inference


def test_a_failing_camera_is_retried_while_the_microphone_keeps_working(face_model, voice_model, demo_frames):
    sink = ListSink()
    camera = FlakyCamera(demo_frames[0])
    mic = AudioReplay(demo_audio(0.0, 3.5, 0.0), realtime=False)
    p = Pipeline(camera, mic, FacePath(face_model), VoicePath(voice_model), [sink], settings=FAST)
    counters = p.run(duration_s=60, handle_signals=False)
    assert counters.errors["camera"] == 2 and counters.reconnects["camera"] == 1
    assert counters.frames_in == 4
    assert counters.windows >= 1 and any(r["voice"] for r in sink.results)


def test_a_source_that_cannot_open_at_start_is_an_error_and_sinks_close(face_model):
    sink = ListSink()
    camera = FlakyCamera(None)
    camera.opens = 1  # the next open fails
    p = Pipeline(camera, None, FacePath(face_model), None, [sink], settings=FAST)
    with pytest.raises(EdgeemoError, match="no such device"):
        p.run(handle_signals=False)
    assert sink.closed


def test_stop_ends_an_endless_run(face_model, demo_frames):
    sink = ListSink()
    p = Pipeline(FrameReplay(demo_frames, fps=50, loop=True), None, FacePath(face_model), None, [sink],
                 settings=FAST)
    timer = threading.Timer(0.5, p.stop)
    timer.start()
    counters = p.run(handle_signals=False)
    timer.join()
    assert sink.closed and counters.frames_in > 0 and counters.results > 0


def test_pipeline_needs_something_to_run():
    with pytest.raises(EdgeemoError, match="nothing to run"):
        Pipeline(None, None, None, None, [])


# ----------------------------------------------------------------------------- sinks


def get(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.read()


def test_http_sink_serves_latest_health_and_server_sent_events():
    sink = HttpSink(port=0)  # any free port
    try:
        assert sink.host == "127.0.0.1"  # localhost only by default
        assert get(sink.url + "/latest")[0] == 204  # nothing yet
        sink.bind(lambda: {"status": "ok", "counters": {"frames_in": 3}})
        assert json.loads(get(sink.url + "/health")[1])["counters"]["frames_in"] == 3
        with urllib.request.urlopen(sink.url + "/events", timeout=5) as events:
            assert events.headers["Content-Type"] == "text/event-stream"
            sink.publish({"ts": 1.0, "fused": {"label": "happy"}})
            line = events.readline()
        assert json.loads(line.decode().removeprefix("data: ")) == {"ts": 1.0, "fused": {"label": "happy"}}
        assert json.loads(get(sink.url + "/latest")[1])["fused"]["label"] == "happy"
        with pytest.raises(urllib.error.HTTPError) as exc:
            get(sink.url + "/frames")
        assert exc.value.code == 404
    finally:
        sink.close()


def test_http_port_in_use_is_a_clear_error():
    first = HttpSink(port=0)
    try:
        with pytest.raises(EdgeemoError, match=f"cannot serve HTTP on 127.0.0.1:{first.port}"):
            HttpSink(port=first.port)
    finally:
        first.close()


def test_rotating_file_sink_writes_json_lines_and_rotates(tmp_path):
    path = tmp_path / "out" / "results.jsonl"
    sink = RotatingFileSink(path, max_bytes=200, backups=2)
    for i in range(20):
        sink.publish({"ts": float(i), "face": None, "voice": None, "fused": None})
    sink.close()
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["results.jsonl", "results.jsonl.1", "results.jsonl.2"]  # bounded on disk too
    lines = path.read_text().splitlines()
    assert json.loads(lines[-1])["ts"] == 19.0


def test_unwritable_output_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EdgeemoError, match="cannot write the output file"):
        RotatingFileSink(blocker / "results.jsonl")


# MQTT against a real Mosquitto broker: tests/test_device_mqtt.py


def test_real_paho_client_against_no_broker_is_a_clear_error():
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt not installed (the [device] extra)")
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(EdgeemoError, match=f"cannot connect to the MQTT broker 127.0.0.1:{port}"):
        MqttSink("127.0.0.1", port)


def test_a_stream_window_on_a_real_clip_is_the_file_path_exactly(voice_model, tmp_path):
    # The microphone path (int16 chunks -> PcmStream -> VoicePath) and the file path (preprocess_file) must give
    # the model the same input, bit for bit, when the window holds the same samples: here the clip's first window.
    import soundfile as sf
    from conftest import data_file

    from edgeemo.audio import float_to_pcm16, load_audio
    from edgeemo.voice import VoicePreprocessing, preprocess_clip, preprocess_file

    pre = voice_model.preprocessing
    pcm = float_to_pcm16(load_audio(data_file("ravdess", "Actor_01", "03-01-05-01-01-01-01.flac"))[0])
    n, hop = pre.features.window_samples, SAMPLE_RATE // 2
    assert n % hop == 0 and len(pcm) > n  # a window is due exactly when sample n arrives
    wav = tmp_path / "first-window.wav"
    sf.write(wav, pcm[:n], SAMPLE_RATE, subtype="PCM_16")
    x_file = preprocess_file(wav, pre)
    assert x_file is not None

    path = VoicePath(voice_model, hop_s=0.5, adapt=False)  # each window alone, as a single file is
    rng = np.random.default_rng(0)
    pos, due = 0, []
    while pos < n:
        size = min(int(rng.integers(1, 3000)), n - pos)
        due += path.push(pcm[pos : pos + size])
        pos += size
    assert np.array_equal(preprocess_clip(path.stream.window(), pre), x_file)
    assert len(due) == 1 and np.array_equal(due[0], voice_model.predict(x_file[None])[0])
    # the same holds for a model that sees the clip as one vector of utterance functionals
    for prosody in (False, True):  # with and without the pitch and spectral-balance functionals
        functionals = VoicePreprocessing(replace(pre.features, prosody=prosody), summary="functionals")
        x_vector = preprocess_clip(path.stream.window(), functionals)
        assert x_vector is not None and np.array_equal(x_vector, preprocess_file(wav, functionals))
