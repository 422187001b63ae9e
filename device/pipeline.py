"""The daemon loop: camera and microphone threads feed bounded queues; a face worker and a
voice worker run the models; ``Fusion`` combines them; results go to the sinks.

::

    camera --frames (queue of 2, oldest dropped)--> face worker: detect, crop, preprocess, model --+
                                                                                                   +--> Fusion --> sinks
    mic --chunks (audio_queue_s, oldest dropped)--> voice worker: ring buffer, a window every      |
                                                    hop_s, VAD ("no speech"), model ---------------+

A source that fails at run time is closed and reopened with exponential backoff while the
other modality keeps working; at start-up a source that cannot be opened is an error. Only
results (labels, probabilities, timestamps) leave the pipeline: frames and audio never do.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np
from edgeemo.device.face_detector import Box, HaarFaceDetector, crop_face
from edgeemo.device.microphone import AudioSource
from edgeemo.device.sources import FrameSource

from edgeemo.audio import SAMPLE_RATE, PcmStream
from edgeemo.errors import EdgeemoError
from edgeemo.face import FacePreprocessing, preprocess_face
from edgeemo.fusion import Fusion, FusionConfig
from edgeemo.predict import EmotionModel
from edgeemo.voice import VoicePreprocessing

log = logging.getLogger("edgeemo.device")

_END = object()  # a capture thread's last item: its source has ended


class Sink(Protocol):
    """Where results go: ``publish`` gets each JSON-ready result; ``close`` at shutdown."""

    def publish(self, result: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class PipelineSettings:
    """Timing and queue sizes of the daemon loop (the [pipeline] table of device.toml)."""

    frame_queue: int = 2  # frames waiting for the face worker; older ones are dropped
    audio_queue_s: float = 5.0  # audio waiting for the voice worker (seconds); older chunks are dropped
    hop_s: float = 0.5  # a voice window every hop_s seconds of audio
    detect_width: int = 320  # frames are shrunk to this width for face detection (0 = full size)
    detect_every: int = 2  # run the detector on every Nth frame; the frames between reuse its boxes
    detect_scale_factor: float = 1.2  # Haar pyramid step (1.1: finer and about twice as slow)
    face_margin: float = 0.1  # crop margin around the detected box, per side
    min_face: int = 40  # smallest face (pixels, in the detection image)
    publish_interval_s: float = 0.2  # at most one result per interval (0 = one per face frame / voice window)
    heartbeat_s: float = 1.0  # publish at least this often even without new readings (shows staleness)
    retry_initial_s: float = 0.5  # first wait before reopening a failed source
    retry_max_s: float = 30.0  # longest wait between reopening attempts

    def __post_init__(self) -> None:
        if self.frame_queue < 1 or self.detect_every < 1:
            raise EdgeemoError("pipeline frame_queue and detect_every must be >= 1")
        if self.detect_scale_factor <= 1.0:
            raise EdgeemoError(f"pipeline detect_scale_factor must be > 1, got {self.detect_scale_factor}")
        for name in ("audio_queue_s", "hop_s", "retry_initial_s", "retry_max_s", "heartbeat_s"):
            if getattr(self, name) <= 0:
                raise EdgeemoError(f"pipeline {name} must be > 0, got {getattr(self, name)}")
        if self.publish_interval_s < 0 or self.detect_width < 0 or self.face_margin < 0 or self.min_face < 1:
            raise EdgeemoError("pipeline publish_interval_s, detect_width and face_margin must be >= 0, min_face >= 1")


def put_drop_oldest(q: queue.Queue, item: Any) -> int:
    """Put without blocking; when the queue is full, drop the oldest items first. Returns how many were dropped."""
    dropped = 0
    while True:
        try:
            q.put_nowait(item)
            return dropped
        except queue.Full:
            try:
                q.get_nowait()
                dropped += 1
            except queue.Empty:
                pass


class FacePath:
    """Frame -> probabilities of the largest face (model label order), or None when there is no face.

    ``boxes`` brings your own detections (full-frame pixel boxes, the first is used); otherwise
    the Haar detector runs on a copy shrunk to ``detect_width``, on every ``detect_every``-th
    frame, and the frames in between reuse its boxes (a face moves little in 1/15 s).
    """

    def __init__(self, model: EmotionModel, detector: Any = None, margin: float = 0.1, detect_width: int = 320,
                 min_face: int = 40, detect_every: int = 1, scale_factor: float = 1.1) -> None:
        if not isinstance(model.preprocessing, FacePreprocessing):
            raise EdgeemoError(f"{model.spec}: is a {model.task} model; the camera needs a face model", model.path)
        self.model = model
        self.detector = detector or HaarFaceDetector(min_size=min_face, scale_factor=scale_factor)
        self.margin, self.detect_width, self.detect_every = margin, detect_width, max(1, detect_every)
        self._frame = 0
        self._boxes: list[Box] = []

    def detect(self, frame: np.ndarray) -> list[Box]:
        """Face boxes in full-frame pixels, largest first."""
        h, w = frame.shape[:2]
        scale = self.detect_width / w if 0 < self.detect_width < w else 1.0
        small = frame if scale == 1.0 else cv2.resize(frame, (self.detect_width, round(h * scale)),
                                                      interpolation=cv2.INTER_AREA)
        boxes = self.detector.detect(small)
        if scale == 1.0:
            return list(boxes)
        return [Box(round(b.x / scale), round(b.y / scale), round(b.w / scale), round(b.h / scale)) for b in boxes]

    def __call__(self, frame: np.ndarray, boxes: Sequence[Box] | None = None) -> np.ndarray | None:
        if boxes is None:
            if self._frame % self.detect_every == 0:
                self._boxes = self.detect(frame)
            self._frame += 1
            found = self._boxes
        else:
            found = list(boxes)
        if not found:
            return None
        crop = crop_face(frame, found[0], self.margin)
        x = preprocess_face(crop, self.model.preprocessing)
        return self.model.predict(x[None])[0]


class VoicePath:
    """PCM chunks in; every ``hop_s`` seconds of audio, the latest window's probabilities (model
    label order) or None when the window has no speech (VAD), never a guess."""

    def __init__(self, model: EmotionModel, hop_s: float = 0.5) -> None:
        if not isinstance(model.preprocessing, VoicePreprocessing):
            raise EdgeemoError(f"{model.spec}: is a {model.task} model; the microphone needs a voice model",
                               model.path)
        self.model = model
        self.pre: VoicePreprocessing = model.preprocessing
        self.stream = PcmStream(self.pre.features)
        self.hop = max(1, round(hop_s * SAMPLE_RATE))
        self._since = 0

    def push(self, chunk: np.ndarray) -> list[np.ndarray | None]:
        """Add audio; returns one entry per window that became due (usually zero or one)."""
        due = []
        pos = 0
        while pos < len(chunk):  # split at hop boundaries: windows every hop samples whatever the chunk size
            take = min(len(chunk) - pos, self.hop - self._since)
            self.stream.push(chunk[pos : pos + take])
            pos += take
            self._since += take
            if self._since == self.hop:
                self._since = 0
                if self.stream.total_samples >= self.pre.features.window_samples:
                    due.append(self.window())
        return due

    def window(self) -> np.ndarray | None:
        feats = self.stream.features()
        if feats is None:
            return None
        return self.model.predict(self.pre.standardize(feats)[None])[0]


@dataclass
class Counters:
    """What /health reports: totals since start."""

    frames_in: int = 0
    frames_dropped: int = 0
    frames_processed: int = 0
    faces: int = 0
    no_face: int = 0
    audio_chunks_in: int = 0
    audio_chunks_dropped: int = 0
    windows: int = 0
    no_speech: int = 0
    results: int = 0
    errors: dict[str, int] = field(default_factory=lambda: {"camera": 0, "microphone": 0, "face": 0, "voice": 0,
                                                            "sink": 0})
    reconnects: dict[str, int] = field(default_factory=lambda: {"camera": 0, "microphone": 0})


class Pipeline:
    """The running daemon. ``run()`` blocks until stopped (signal, ``stop()``, ``duration_s``)
    or until every replay source has ended and been processed."""

    def __init__(
        self,
        camera: FrameSource | None,
        microphone: AudioSource | None,
        face: FacePath | None,
        voice: VoicePath | None,
        sinks: Sequence[Sink],
        fusion: FusionConfig | None = None,
        settings: PipelineSettings | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if camera is not None and face is None or microphone is not None and voice is None:
            raise EdgeemoError("a camera needs a face model and a microphone a voice model")
        if camera is None and microphone is None:
            raise EdgeemoError("nothing to run: neither a camera nor a microphone is configured")
        self.camera, self.microphone, self.face, self.voice = camera, microphone, face, voice
        self.sinks = list(sinks)
        self.settings = settings or PipelineSettings()
        self.fusion = Fusion(fusion)
        self.clock = clock
        self.counters = Counters()
        self.state = {"camera": "off" if camera is None else "starting",
                      "microphone": "off" if microphone is None else "starting"}
        self.latest: dict[str, Any] | None = None
        self.started = clock()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._last_publish = 0.0
        s = self.settings
        self.frames: queue.Queue = queue.Queue(maxsize=s.frame_queue)
        chunk_s = getattr(microphone, "chunk", 1600) / SAMPLE_RATE
        self.audio: queue.Queue = queue.Queue(maxsize=max(2, round(s.audio_queue_s / max(chunk_s, 1e-3))))
        self._threads: list[threading.Thread] = []
        for sink in self.sinks:
            bind = getattr(sink, "bind", None)
            if bind is not None:
                bind(self.health)

    # ------------------------------------------------------------------ control

    def stop(self) -> None:
        """Ask every thread to finish (safe from a signal handler or another thread)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def open_sources(self) -> None:
        """Open the camera and microphone once; failure here is a start-up error (closes what was opened)."""
        opened = []
        try:
            for kind, source in (("camera", self.camera), ("microphone", self.microphone)):
                if source is not None:
                    source.open()
                    opened.append(source)
                    self.state[kind] = "ok"
        except BaseException:
            for source in opened:
                source.close()
            raise

    def run(self, duration_s: float | None = None, handle_signals: bool = True) -> Counters:
        """Open the sources, start the threads, and block until done; returns the counters."""
        restore = self._install_signals() if handle_signals else {}
        try:
            self.open_sources()
            log.info("running: camera %s, microphone %s", getattr(self.camera, "name", "off"),
                     getattr(self.microphone, "name", "off"))
            self._start_threads()
            deadline = None if duration_s is None else time.monotonic() + duration_s
            workers = [t for t in self._threads if t.name.endswith("worker")]
            while not self._stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if not any(t.is_alive() for t in workers):
                    break  # every source ended and its queue was drained
                self._stop.wait(0.05)
                self._heartbeat()
        finally:
            self._stop.set()
            for t in self._threads:
                t.join(timeout=5.0)
            for source in (self.camera, self.microphone):
                if source is not None:
                    source.close()
            for sink in self.sinks:
                try:
                    sink.close()
                except Exception as exc:  # a sink failing at shutdown must not hide the others
                    log.warning("closing %s failed: %s", type(sink).__name__, exc)
            for sig, handler in restore.items():
                signal.signal(sig, handler)
        return self.counters

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda signum, _frame: self._on_signal(signum))
        return previous

    def _on_signal(self, signum: int) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        self.stop()

    def _start_threads(self) -> None:
        specs = []
        if self.camera is not None:
            specs += [("camera", self._capture, ("camera", self.camera, self.frames)),
                      ("face-worker", self._face_worker, ())]
        if self.microphone is not None:
            specs += [("microphone", self._capture, ("microphone", self.microphone, self.audio)),
                      ("voice-worker", self._voice_worker, ())]
        for name, target, args in specs:
            t = threading.Thread(target=target, args=args, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    # ------------------------------------------------------------------ threads

    def _capture(self, kind: str, source: Any, q: queue.Queue) -> None:
        """Read a source into its queue; reopen it with backoff when it fails; _END when it ends."""
        s = self.settings
        delay = s.retry_initial_s
        is_open = True
        while not self._stop.is_set():
            try:
                if not is_open:
                    source.open()
                    is_open = True
                    self.counters.reconnects[kind] += 1
                    self.state[kind] = "ok"
                    delay = s.retry_initial_s
                    log.info("%s is back", source.name)
                item = source.read()
            except Exception as exc:  # EdgeemoError from the adapters; anything else is logged the same way
                self.counters.errors[kind] += 1
                self.state[kind] = "retrying"
                log.warning("%s: %s; retrying in %.1f s", source.name, exc, delay)
                if is_open:
                    with contextlib.suppress(Exception):  # closing a device that vanished may fail too
                        source.close()
                    is_open = False
                self._stop.wait(delay)
                delay = min(delay * 2, s.retry_max_s)
                continue
            if item is None:
                self.state[kind] = "ended"
                break
            ts = self.clock()
            if kind == "camera":
                self.counters.frames_in += 1
                self.counters.frames_dropped += put_drop_oldest(q, (ts, item))
            else:
                self.counters.audio_chunks_in += 1
                self.counters.audio_chunks_dropped += put_drop_oldest(q, (ts, item))
        dropped = put_drop_oldest(q, _END)  # the end marker may push out the oldest item too
        if kind == "camera":
            self.counters.frames_dropped += dropped
        else:
            self.counters.audio_chunks_dropped += dropped

    def _next(self, q: queue.Queue) -> Any:
        while not self._stop.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return _END

    def _face_worker(self) -> None:
        assert self.face is not None
        while (item := self._next(self.frames)) is not _END:
            ts, frame = item
            try:
                probs = self.face(frame)
            except Exception as exc:
                self.counters.errors["face"] += 1
                log.warning("face path failed on a frame: %s", exc)
                continue
            self.counters.frames_processed += 1
            if probs is None:
                self.counters.no_face += 1
            else:
                self.counters.faces += 1
            self._update("face", probs, ts, self.face.model.labels)

    def _voice_worker(self) -> None:
        assert self.voice is not None
        while (item := self._next(self.audio)) is not _END:
            ts, chunk = item
            try:
                windows = self.voice.push(chunk)
            except Exception as exc:
                self.counters.errors["voice"] += 1
                log.warning("voice path failed on a window: %s", exc)
                continue
            for probs in windows:
                self.counters.windows += 1
                if probs is None:
                    self.counters.no_speech += 1
                self._update("voice", probs, ts, self.voice.model.labels)

    # ------------------------------------------------------------------ fusion and output

    def _update(self, modality: str, probs: np.ndarray | None, ts: float, labels: Sequence[str]) -> None:
        with self._lock:
            self.fusion.update(modality, probs, ts, labels)
            now = self.clock()
            if now - self._last_publish >= self.settings.publish_interval_s:
                self._publish(now)

    def _heartbeat(self) -> None:
        with self._lock:
            now = self.clock()
            if now - self._last_publish >= self.settings.heartbeat_s:
                self._publish(now)

    def _publish(self, now: float) -> None:
        result = self.fusion.result(now)
        self._last_publish = now
        self.latest = result
        self.counters.results += 1
        for sink in self.sinks:
            try:
                sink.publish(result)
            except Exception as exc:  # one broken sink (full disk, MQTT down) must not stop the others
                self.counters.errors["sink"] += 1
                log.warning("%s failed: %s", type(sink).__name__, exc)

    def health(self) -> dict[str, Any]:
        """Uptime, source states, counters and the last result's time (what /health serves)."""
        c = self.counters
        ok = all(state in ("ok", "off", "ended") for state in self.state.values())
        return {
            "status": "ok" if ok else "degraded",
            "uptime_s": round(self.clock() - self.started, 3),
            "sources": dict(self.state),
            "counters": {k: (dict(v) if isinstance(v, dict) else v) for k, v in vars(c).items()},
            "last_result_ts": None if self.latest is None else self.latest["ts"],
        }
