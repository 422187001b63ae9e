"""Stand-ins for the fault-injection benchmark (``fault_injection.py``): a camera and a microphone
that break on command, a disk that fills up on command, a Mosquitto broker that can be killed
and restarted on the same port, a paho subscriber, an SSE reader, and a sink that records every
result. Test-only code: kept out of ``device/`` on purpose (the CI tests have their own copies).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeemo.audio import SAMPLE_RATE
from edgeemo.device.demo_clip import DemoCamera, demo_audio
from edgeemo.errors import EdgeemoError, SourceOverflow

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Any, timeout: float, step: float = 0.01) -> Any:
    """Poll ``predicate`` until it is truthy (returns its value) or ``timeout`` passes (returns None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None


class StandInCamera:
    """The demo portrait (moving, always a face) at ``fps``, paced on the clock. ``unplug()``: read and
    open raise (a camera pulled out); ``stall()``: read blocks (a camera that stops delivering)."""

    name = "camera stand-in"

    def __init__(self, fps: float = 15.0, n_frames: int = 30) -> None:
        clip = DemoCamera(seconds=n_frames / fps, fps=fps, no_face_s=0.0, realtime=False)
        self.frames = [clip.frame(i) for i in range(clip.n)]
        self.period = 1.0 / fps
        self.present, self.opens, self.i = True, 0, 0
        self.flowing = threading.Event()
        self.flowing.set()
        self._next = 0.0

    def unplug(self) -> None:
        self.present = False

    def plug(self) -> None:
        self.present = True

    def stall(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    def open(self) -> None:
        self.opens += 1
        if not self.present:
            raise EdgeemoError(f"cannot open {self.name} (no such device)")
        self._next = time.monotonic()

    def read(self) -> np.ndarray:
        while not self.flowing.wait(0.02):
            pass
        if not self.present:
            raise EdgeemoError(f"{self.name} stopped delivering frames (unplugged?)")
        self._next = max(self._next + self.period, time.monotonic() - self.period)
        time.sleep(max(0.0, self._next - time.monotonic()))
        self.i += 1
        return self.frames[self.i % len(self.frames)]

    def close(self) -> None:
        pass


class StandInMicrophone:
    """Synthetic speech, looped, in 0.1 s chunks paced at ``speed`` times real time. ``overflow(n)``: the
    next ``n`` reads report lost audio; ``unplug()``/``plug()`` like the camera."""

    name = "microphone stand-in"
    chunk = 1600

    def __init__(self, speed: float = 1.0) -> None:
        self.pcm = demo_audio(0.0, 4.0, 0.0)
        self.period = self.chunk / SAMPLE_RATE / speed
        self.pos, self.opens, self.present, self.overflows = 0, 0, True, 0
        self._next = 0.0

    def unplug(self) -> None:
        self.present = False

    def plug(self) -> None:
        self.present = True

    def overflow(self, n: int = 1) -> None:
        self.overflows += n

    def open(self) -> None:
        self.opens += 1
        if not self.present:
            raise EdgeemoError(f"cannot open {self.name} (no such device)")
        self._next = time.monotonic()

    def read(self) -> np.ndarray:
        if not self.present:
            raise EdgeemoError(f"{self.name} stopped delivering audio (unplugged?)")
        self._next = max(self._next + self.period, time.monotonic() - self.period)
        time.sleep(max(0.0, self._next - time.monotonic()))
        if self.overflows:
            self.overflows -= 1
            raise SourceOverflow(f"{self.name}: input overflowed (audio was lost)")
        if self.pos + self.chunk > len(self.pcm):
            self.pos = 0
        self.pos += self.chunk
        return self.pcm[self.pos - self.chunk : self.pos]

    def close(self) -> None:
        pass


class RecordingSink:
    """Keeps every result it is given (the measurement's ground truth of what the pipeline published)."""

    name = "recorder"

    def __init__(self) -> None:
        self.results: list[dict[str, Any]] = []

    def publish(self, result: dict[str, Any]) -> None:
        self.results.append(result)

    def close(self) -> None:
        pass


class Disk:
    """``os.write`` with a switch: ``full`` makes writes fail with ENOSPC (after ``partial`` bytes once)."""

    def __init__(self) -> None:
        self.full, self.partial = False, 0

    def write(self, fd: int, data: bytes) -> int:
        if self.full:
            if self.partial:
                n, self.partial = os.write(fd, data[: self.partial]), 0
                return n
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(fd, data)


class Broker:
    """A Mosquitto process on a free loopback port; ``kill()`` (SIGKILL) and ``start()`` keep the port.
    Persistence with a 1 s autosave keeps a persistent subscriber's session across a SIGKILL."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        lines = [f"listener {self.port} 127.0.0.1", f"log_dest file {folder / 'mosquitto.log'}",
                 "allow_anonymous true", "persistence true", f"persistence_location {folder}/",
                 "autosave_interval 1", "max_queued_messages 100000"]
        if os.geteuid() == 0:  # as root mosquitto would switch to its own user
            lines.append("user root")
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> Broker:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

        def listening() -> bool:
            if self.proc is None or self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.log()[-500:]}")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        if not wait_until(listening, 10.0):
            raise RuntimeError("mosquitto did not listen within 10 s")
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        path = self.folder / "mosquitto.log"
        return path.read_text() if path.exists() else ""


class Subscriber:
    """A real paho client with a persistent session (QoS 1) collecting (receipt time, result ts) of
    ``<prefix>/result`` messages."""

    def __init__(self, port: int, prefix: str) -> None:
        import paho.mqtt.client as mqtt

        self.received: list[tuple[float, float]] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-sub-{port}",
                                  clean_session=False)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{prefix}/result", qos=1)
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.reconnect_delay_set(0.05, 0.2)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not self.subscribed.wait(10):
            raise RuntimeError("MQTT subscription not acknowledged")

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        self.received.append((time.time(), json.loads(msg.payload)["ts"]))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class SseClient:
    """An ``/events`` reader on a raw socket. ``mode``: ``read`` (keeps reading, records (receipt time,
    result ts)), ``stall`` (stops reading once told, with a small receive buffer) or ``hangup``
    (closes the socket once told)."""

    def __init__(self, host: str, port: int, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(5.0)
        self.sock.connect((host, port))
        self.sock.sendall(b"GET /events HTTP/1.1\r\nHost: bench\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            byte = self.sock.recv(1)
            if not byte:
                raise RuntimeError(f"/events closed before its headers: {head!r}")
            head += byte
        if not head.startswith(b"HTTP/1.0 200"):
            raise RuntimeError(f"/events answered {head.splitlines()[0]!r}")
        self.received: list[tuple[float, float]] = []
        self.closed_by_server: float | None = None
        self._stop, self._stall = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._read, name="bench-sse", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buf = b""
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            if self._stall.is_set():
                time.sleep(0.05)
                continue
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                self.closed_by_server = time.time()
                return
            buf += data
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                if event.startswith(b"data: "):
                    self.received.append((time.time(), json.loads(event[6:])["ts"]))

    def stall(self) -> None:
        """Stop reading (the socket stays open)."""
        self._stall.set()

    def hang_up(self) -> None:
        """Close the connection mid-stream."""
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
