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

import contextlib
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgeemo.audio import SAMPLE_RATE
from edgeemo.device.health import DEGRADED, DOWN, ENDED, OFF, OK, Component
from edgeemo.device.microphone import AudioSource
from edgeemo.device.paths import FacePath, VoicePath
from edgeemo.device.sinks.worker import Sink, SinkWorker, sink_name
from edgeemo.device.sources import FrameSource
from edgeemo.errors import EdgeemoError, SourceOverflow
from edgeemo.face_detect import DEFAULT_FACE_MARGIN, DETECTORS, DetectorSettings
from edgeemo.fusion import Fusion, FusionConfig

log = logging.getLogger("edgeemo.device")

_END = object()  # a capture thread's last item: its source has ended



@dataclass(frozen=True)
class PipelineSettings:
    """Timing and queue sizes of the daemon loop (the [pipeline] table of device.toml)."""

    frame_queue: int = 2  # frames waiting for the face worker; older ones are dropped
    audio_queue_s: float = 5.0  # audio waiting for the voice worker (seconds); older chunks are dropped
    hop_s: float = 0.5  # a voice window every hop_s seconds of audio
    voice_adapt: bool = True  # voice models that adapt: running statistics of the speech heard (no labels)
    voice_adapt_reset_s: float = 0.0  # silence that restarts them (0 = the model manifest's reset_after_silence_s)
    detector: str = "blazeface"  # blazeface (DNN, most confident face) or haar (OpenCV cascade, largest face)
    detector_model: str = ""  # blazeface: another copy of its model file (default: the one shipped in edgeemo)
    detect_min_score: float = 0.5  # blazeface: lowest face confidence kept
    detect_width: int = 320  # frames are shrunk to this width for face detection (0 = full size)
    detect_every: int = 2  # run the detector on every Nth frame; the frames between reuse its boxes
    detect_scale_factor: float = 1.2  # Haar pyramid step (1.1: finer and about twice as slow)
    face_margin: float = DEFAULT_FACE_MARGIN  # crop margin around the detected box, per side
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
        for name in ("publish_interval_s", "detect_width", "face_margin", "voice_adapt_reset_s"):
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
