"""The daemon loop: camera and microphone threads feed bounded queues; a face worker and a
voice worker run the models; ``Fusion`` combines them; results go to the sinks.

::

    camera --frames (queue of 2, oldest dropped)--> face worker: detect, crop, preprocess, model --+
                                                                                                   +--> Fusion --> sinks
    mic --chunks (audio_queue_s, oldest dropped)--> voice worker: ring buffer, a window every      |
                                                    hop_s, VAD ("no speech"), model ---------------+

A source that fails at run time is closed and reopened with exponential backoff while the
other modality keeps working; at start-up a source that cannot be opened is an error. A
microphone overflow (audio lost, device still open) is counted and the voice ring buffer
restarts, so no window splices audio from both sides of a gap. Each sink gets its own
bounded queue and thread (oldest result dropped and counted when it cannot keep up), so a
slow disk, a blocked stdout or a dead broker never stalls the models. Every component's
state (ok / degraded / down, last error, since), the queue depths and all drop counters
are in ``health()`` (``/health``). Only results (labels, probabilities, timestamps) leave
the pipeline: frames and audio never do.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from edgeemo.device.health import DEGRADED, DOWN, ENDED, OFF, OK, Component
from edgeemo.device.microphone import AudioSource
from edgeemo.device.sources import FrameSource, SourceOverflow

from edgeemo.audio import SAMPLE_RATE, PcmStream
from edgeemo.errors import EdgeemoError
from edgeemo.face import FacePreprocessing, preprocess_face
from edgeemo.face_detect import DETECTORS, Box, DetectorSettings, FaceDetector, crop_face, detect_faces
from edgeemo.face_detect import make_detector as make_face_detector
from edgeemo.fusion import Fusion, FusionConfig
from edgeemo.predict import EmotionModel
from edgeemo.voice import VoicePreprocessing

log = logging.getLogger("edgeemo.device")

_END = object()  # a capture thread's last item: its source has ended


class Sink(Protocol):
    """Where results go: ``publish`` gets each JSON-ready result; ``close`` at shutdown."""

    def publish(self, result: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def make_detector(settings: PipelineSettings, threads: int | None = 1) -> FaceDetector:
    """The face detector the settings name (see ``edgeemo.face_detect``)."""
    return make_face_detector(settings.detection(), threads=threads)


@dataclass(frozen=True)
class PipelineSettings:
    """Timing and queue sizes of the daemon loop (the [pipeline] table of device.toml)."""

    frame_queue: int = 2  # frames waiting for the face worker; older ones are dropped
    audio_queue_s: float = 5.0  # audio waiting for the voice worker (seconds); older chunks are dropped
    hop_s: float = 0.5  # a voice window every hop_s seconds of audio
    detector: str = "blazeface"  # blazeface (DNN, most confident face) or haar (OpenCV cascade, largest face)
    detector_model: str = ""  # blazeface: another copy of its model file (default: the one shipped in edgeemo)
    detect_min_score: float = 0.5  # blazeface: lowest face confidence kept
    detect_width: int = 320  # frames are shrunk to this width for face detection (0 = full size)
    detect_every: int = 2  # run the detector on every Nth frame; the frames between reuse its boxes
    detect_scale_factor: float = 1.2  # Haar pyramid step (1.1: finer and about twice as slow)
    face_margin: float = 0.1  # crop margin around the detected box, per side
    min_face: int = 40  # smallest face (pixels, in the detection image)
    publish_interval_s: float = 0.2  # at most one result per interval (0 = one per face frame / voice window)
    heartbeat_s: float = 1.0  # publish at least this often even without new readings (shows staleness)
    retry_initial_s: float = 0.5  # first wait before reopening a failed source
    retry_max_s: float = 30.0  # longest wait between reopening attempts
    stall_s: float = 5.0  # a source with nothing new for this long is reported degraded ("stalled")
    sink_queue: int = 100  # results waiting for each sink; the oldest is dropped (and counted) when full

    def detection(self) -> DetectorSettings:
        """The detection keys: what ``edgeemo bench --detect`` and ``predict --detect`` take from a config."""
        return DetectorSettings(self.detector, self.detector_model, self.detect_min_score, self.detect_width,
                                self.detect_scale_factor, self.min_face, self.face_margin)

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise EdgeemoError(f"pipeline detector must be one of {', '.join(DETECTORS)}, got {self.detector!r}")
        if not 0.0 < self.detect_min_score < 1.0:
            raise EdgeemoError(f"pipeline detect_min_score must be in (0, 1), got {self.detect_min_score}")
        for name in ("frame_queue", "detect_every", "min_face", "sink_queue"):
            if getattr(self, name) < 1:
                raise EdgeemoError(f"pipeline {name} must be >= 1, got {getattr(self, name)}")
        if not self.detect_scale_factor > 1.0:
            raise EdgeemoError(f"pipeline detect_scale_factor must be > 1, got {self.detect_scale_factor}")
        for name in ("audio_queue_s", "hop_s", "retry_initial_s", "retry_max_s", "heartbeat_s", "stall_s"):
            if not getattr(self, name) > 0:
                raise EdgeemoError(f"pipeline {name} must be > 0, got {getattr(self, name)}")
        for name in ("publish_interval_s", "detect_width", "face_margin"):
            if not getattr(self, name) >= 0:
                raise EdgeemoError(f"pipeline {name} must be >= 0, got {getattr(self, name)}")
        if self.retry_max_s < self.retry_initial_s:
            raise EdgeemoError(f"pipeline retry_max_s ({self.retry_max_s}) must be >= retry_initial_s "
                               f"({self.retry_initial_s})")
        for name in ("frame_queue", "sink_queue"):  # each slot may hold a frame: keep memory bounded for real
            if getattr(self, name) > 10_000:
                raise EdgeemoError(f"pipeline {name} must be <= 10000, got {getattr(self, name)}")
        if self.audio_queue_s > 3600:
            raise EdgeemoError(f"pipeline audio_queue_s must be <= 3600, got {self.audio_queue_s}")


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
    """Frame -> probabilities of the first face the detector returns (BlazeFace: the most confident;
    Haar: the largest), in model label order, or None when there is no face.

    ``boxes`` brings your own detections (full-frame pixel boxes, the first is used); otherwise
    the detector (default: BlazeFace) runs on a copy shrunk to ``detect_width``, on every
    ``detect_every``-th frame, and the frames in between reuse its boxes (a face moves little in
    1/15 s). Detection and crop are ``edgeemo.face_detect``'s, the same that ``edgeemo bench --detect`` scores.
    """

    def __init__(self, model: EmotionModel, detector: FaceDetector | None = None, margin: float = 0.1,
                 detect_width: int = 320, detect_every: int = 1) -> None:
        if not isinstance(model.preprocessing, FacePreprocessing):
            raise EdgeemoError(f"{model.spec}: is a {model.task} model; the camera needs a face model", model.path)
        self.model = model
        self.detector = detector or make_face_detector()
        self.margin, self.detect_width, self.detect_every = margin, detect_width, max(1, detect_every)
        self._frame = 0
        self._boxes: list[Box] = []

    def reset(self) -> None:
        """After a gap in the frames (camera reopened): detect again on the next frame."""
        self._frame = 0
        self._boxes = []

    def detect(self, frame: np.ndarray) -> list[Box]:
        """Face boxes in full-frame pixels, in the detector's order (the face to use first)."""
        return detect_faces(frame, self.detector, self.detect_width)

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
        if crop.size == 0:
            return None
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

    def reset(self) -> None:
        """After a gap in the audio (overflow, microphone reopened): the next window holds only new audio."""
        self.stream.reset()
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
    audio_overflows: int = 0  # reads where the microphone itself lost audio (its buffer overran)
    windows: int = 0
    no_speech: int = 0
    results: int = 0
    results_dropped: int = 0  # summed over the sinks' queues
    errors: dict[str, int] = field(default_factory=lambda: {"camera": 0, "microphone": 0, "face": 0, "voice": 0,
                                                            "sink": 0})
    reconnects: dict[str, int] = field(default_factory=lambda: {"camera": 0, "microphone": 0})


def sink_name(sink: Any) -> str:
    """A sink's name in /health: its ``name`` attribute or its class name."""
    return str(getattr(sink, "name", None) or type(sink).__name__)


class SinkWorker:
    """One sink behind a bounded queue and its own thread: ``put`` never blocks (the oldest
    result is dropped and counted when the sink falls behind); a sink that raises is marked
    degraded with the error and keeps getting results."""

    def __init__(self, sink: Sink, name: str, capacity: int, clock: Callable[[], float] = time.time) -> None:
        self.sink, self.name, self.capacity = sink, name, capacity
        self.component = Component(f"sink {name}", clock=clock)
        self.published = self.dropped = self.failures = 0
        self._items: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"sink-{name}", daemon=True)
        self._thread.start()

    def put(self, result: dict[str, Any]) -> int:
        """Queue a result; returns how many old ones were dropped to make room (0 or 1)."""
        with self._cond:
            dropped = 0
            if len(self._items) >= self.capacity:
                self._items.popleft()
                dropped = 1
                self.dropped += 1
            self._items.append(result)
            self._cond.notify()
        if dropped:
            self.component.degraded(f"queue full ({self.capacity}): the sink is slower than the results",
                                    count=False)
        return dropped

    @property
    def depth(self) -> int:
        return len(self._items)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._items or self._closing)
                if not self._items:
                    return  # closing and drained
                result = self._items.popleft()
            try:
                self.sink.publish(result)
            except Exception as exc:  # one broken sink (full disk, closed pipe) must not stop the others
                self.failures += 1
                self.component.degraded(f"{type(exc).__name__}: {exc}")
                continue
            self.published += 1
            if self.component.state == DEGRADED and not self._items:
                self.component.ok()

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (up to ``timeout``), then close the sink."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("%s: still busy after %.0f s at shutdown; %d results not delivered", self.name, timeout,
                        self.depth)
        self.sink.close()

    def report(self) -> dict[str, Any]:
        """State, the queue, and whatever the sink adds about itself (``sink.health()``)."""
        out = self.component.report()
        out.update({"published": self.published, "queue": {"depth": self.depth, "capacity": self.capacity,
                                                            "dropped": self.dropped}})
        own = getattr(self.sink, "health", None)
        if own is not None:
            extra = dict(own())
            state = extra.pop("state", OK)
            if _rank(state) > _rank(out["state"]):  # the sink's own view wins when it is worse
                out["state"] = state
                for key in ("since", "last_error", "last_error_ts"):
                    if key in extra:
                        out[key] = extra[key]
            out["errors"] += extra.pop("errors", 0)  # the sink's own (a failed write) plus exceptions it raised
            for key in ("since", "last_error", "last_error_ts"):
                extra.pop(key, None)
            out.update(extra)
        return out


def _rank(state: str) -> int:
    return {DOWN: 2, DEGRADED: 1}.get(state, 0)


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
        self.components = {
            "camera": Component("camera", OFF if camera is None else "starting", clock),
            "microphone": Component("microphone", OFF if microphone is None else "starting", clock),
            "face": Component("face model", OFF if face is None else OK, clock),
            "voice": Component("voice model", OFF if voice is None else OK, clock),
        }
        self.latest: dict[str, Any] | None = None
        self.started = clock()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._last_publish = 0.0
        s = self.settings
        self.frames: queue.Queue = queue.Queue(maxsize=s.frame_queue)
        chunk_s = getattr(microphone, "chunk", 1600) / SAMPLE_RATE
        self.audio: queue.Queue = queue.Queue(maxsize=max(2, round(s.audio_queue_s / max(chunk_s, 1e-3))))
        # a capture thread bumps its generation after a gap (reopen, overflow): the worker then starts afresh
        self._generation = {"camera": 0, "microphone": 0}
        self._last_item = {"camera": 0.0, "microphone": 0.0}  # monotonic time of the last frame / chunk
        self._quiet_until = {"camera": 0.0, "microphone": 0.0}  # degraded until then after an overflow
        self._threads: list[threading.Thread] = []
        self._sink_workers: list[SinkWorker] = []
        for sink in self.sinks:
            bind = getattr(sink, "bind", None)
            if bind is not None:
                bind(self.health)

    @property
    def state(self) -> dict[str, str]:
        """The camera's and the microphone's state (ok, degraded, down, off, ended, starting)."""
        return {k: self.components[k].state for k in ("camera", "microphone")}

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
                    self.components[kind].ok()
                    self._last_item[kind] = time.monotonic()
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
                self._watch()
        finally:
            self._stop.set()
            for t in self._threads:
                t.join(timeout=5.0)
            for source in (self.camera, self.microphone):
                if source is not None:
                    with contextlib.suppress(Exception):  # a vanished device may fail to close too
                        source.close()
            self._close_sinks()
            self.counters.errors["sink"] = sum(w.failures for w in self._sink_workers)
            for sig, handler in restore.items():
                signal.signal(sig, handler)
        return self.counters

    def _close_sinks(self) -> None:
        workers = {id(w.sink): w for w in self._sink_workers}
        for sink in self.sinks:
            try:
                if id(sink) in workers:
                    workers[id(sink)].close()  # delivers what is queued, then closes
                else:
                    sink.close()
            except Exception as exc:  # a sink failing at shutdown must not hide the others
                log.warning("closing %s failed: %s", sink_name(sink), exc)

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
        names: set[str] = set()
        workers = []
        for sink in self.sinks:
            name = base = sink_name(sink)
            n = 1
            while name in names:
                n += 1
                name = f"{base}-{n}"
            names.add(name)
            workers.append(SinkWorker(sink, name, self.settings.sink_queue, self.clock))
        # one assignment: /health (another thread) sees all the sinks or none of them, never half the list
        self._sink_workers = workers
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
        component = self.components[kind]
        delay = s.retry_initial_s
        is_open = True
        while not self._stop.is_set():
            try:
                if not is_open:
                    source.open()
                    is_open = True
                    self.counters.reconnects[kind] += 1
                    self._generation[kind] += 1  # what comes next does not continue what came before
                    self._last_item[kind] = time.monotonic()
                    delay = s.retry_initial_s
                    log.info("%s is back", source.name)
                item = source.read()
            except SourceOverflow as exc:  # data lost, device still open: count it, no reopen
                if kind == "microphone":
                    self.counters.audio_overflows += 1
                self._generation[kind] += 1
                self._quiet_until[kind] = time.monotonic() + s.stall_s
                component.degraded(str(exc))
                continue
            except Exception as exc:  # EdgeemoError from the adapters; anything else is handled the same way
                self.counters.errors[kind] += 1
                component.down(f"{exc}; reopening in {delay:.1f} s")
                if is_open:
                    with contextlib.suppress(Exception):  # closing a device that vanished may fail too
                        source.close()
                    is_open = False
                self._stop.wait(delay)
                delay = min(delay * 2, s.retry_max_s)
                continue
            if item is None:
                component.set(ENDED)
                break
            ts = self.clock()
            self._last_item[kind] = time.monotonic()
            if component.state != OK and time.monotonic() >= self._quiet_until[kind]:
                component.ok()
            entry = (ts, self._generation[kind], item)
            if kind == "camera":
                self.counters.frames_in += 1
                self.counters.frames_dropped += put_drop_oldest(q, entry)
            else:
                self.counters.audio_chunks_in += 1
                self.counters.audio_chunks_dropped += put_drop_oldest(q, entry)
        dropped = put_drop_oldest(q, _END)  # the end marker may push out the oldest item too
        if kind == "camera":
            self.counters.frames_dropped += dropped
        else:
            self.counters.audio_chunks_dropped += dropped

    def _watch(self) -> None:
        """Mark a source that is open but has delivered nothing for ``stall_s`` as degraded (stalled)."""
        now = time.monotonic()
        for kind in ("camera", "microphone"):
            component = self.components[kind]
            if component.state == OK and now - self._last_item[kind] > self.settings.stall_s:
                component.degraded(f"stalled: nothing from {getattr(getattr(self, kind), 'name', kind)} for "
                                   f"{now - self._last_item[kind]:.1f} s")

    def _next(self, q: queue.Queue) -> Any:
        while not self._stop.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return _END

    def _face_worker(self) -> None:
        assert self.face is not None
        generation = 0
        while (item := self._next(self.frames)) is not _END:
            ts, gen, frame = item
            if gen != generation:
                generation = gen
                self.face.reset()
            try:
                probs = self.face(frame)
            except Exception as exc:
                self.counters.errors["face"] += 1
                self.components["face"].degraded(f"a frame failed: {type(exc).__name__}: {exc}")
                continue
            self.components["face"].ok()
            self.counters.frames_processed += 1
            if probs is None:
                self.counters.no_face += 1
            else:
                self.counters.faces += 1
            self._update("face", probs, ts, self.face.model.labels)

    def _voice_worker(self) -> None:
        assert self.voice is not None
        generation = 0
        while (item := self._next(self.audio)) is not _END:
            ts, gen, chunk = item
            if gen != generation:
                generation = gen
                self.voice.reset()
            try:
                windows = self.voice.push(chunk)
            except Exception as exc:
                self.counters.errors["voice"] += 1
                self.components["voice"].degraded(f"a window failed: {type(exc).__name__}: {exc}")
                continue
            self.components["voice"].ok()
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
        for worker in self._sink_workers:  # never blocks: each sink has its own bounded queue
            self.counters.results_dropped += worker.put(result)

    def health(self) -> dict[str, Any]:
        """Everything /health serves: overall status, each component and sink, queues, counters."""
        c = self.counters
        components = {}
        for kind, component in self.components.items():
            report = component.report()
            if kind in ("camera", "microphone") and getattr(self, kind) is not None:
                report["source"] = getattr(getattr(self, kind), "name", kind)
                report["reconnects"] = c.reconnects[kind]
                last = self._last_item[kind]
                report["last_input_age_s"] = round(time.monotonic() - last, 3) if last else None
            components[kind] = report
        components["microphone"]["overflows"] = c.audio_overflows
        sinks = {w.name: w.report() for w in self._sink_workers} or {  # before run() has started them
            sink_name(sink): {"state": "starting"} for sink in self.sinks}
        c.errors["sink"] = sum(w.failures for w in self._sink_workers)
        sources = [components[k]["state"] for k in ("camera", "microphone") if components[k]["state"] != OFF]
        sink_states = [r["state"] for r in sinks.values()]
        everything = sources + sink_states + [components[k]["state"] for k in ("face", "voice")]
        if sources and all(st == DOWN for st in sources) or sink_states and all(st == DOWN for st in sink_states):
            status = DOWN  # nothing to analyse, or nowhere to send it
        elif any(st in (DEGRADED, DOWN) for st in everything):
            status = DEGRADED
        else:
            status = OK
        now = self.clock()
        return {
            "status": status,
            "time": round(now, 3),
            "uptime_s": round(now - self.started, 3),
            "components": components,
            "sinks": sinks,
            "queues": {
                "frames": {"depth": self.frames.qsize(), "capacity": self.frames.maxsize, "dropped": c.frames_dropped},
                "audio": {"depth": self.audio.qsize(), "capacity": self.audio.maxsize,
                          "dropped": c.audio_chunks_dropped},
                "sinks": {w.name: {"depth": w.depth, "capacity": w.capacity, "dropped": w.dropped}
                          for w in self._sink_workers},
            },
            "sources": {k: components[k]["state"] for k in ("camera", "microphone")},
            "counters": {k: (dict(v) if isinstance(v, dict) else v) for k, v in vars(c).items()},
            "last_result_ts": None if self.latest is None else self.latest["ts"],
            "last_result_age_s": None if self.latest is None else round(now - self.latest["ts"], 3),
        }
