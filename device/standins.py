"""Stand-ins for what the daemon talks to, for the tests and the robustness benchmarks (one copy for both):
a camera and a microphone that break on command, a disk that fills up on command, and a Mosquitto broker
on a free loopback port that can be killed and started again on the same port.

Nothing here is used by the daemon itself.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

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


def demo_frames(n: int = 30, fps: float = 15.0) -> list[np.ndarray]:
    """``n`` frames of the demo portrait, moving, always with a face."""
    clip = DemoCamera(seconds=n / fps, fps=fps, no_face_s=0.0, realtime=False)
    return [clip.frame(i) for i in range(clip.n)]


class StandInCamera:
    """``frames`` (default: the demo portrait) in a loop at ``fps``, paced on the clock. ``unplug()``: read
    and open raise (a camera pulled out), ``plug()``; ``stall()``: read blocks (a camera that stops
    delivering), ``resume()``. ``opens`` counts the opening attempts."""

    name = "camera stand-in"

    def __init__(self, frames: Sequence[np.ndarray] | None = None, fps: float = 15.0) -> None:
        self.frames = list(frames) if frames is not None else demo_frames(fps=fps)
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


class MosquittoBroker:
    """A Mosquitto process with its own config in ``folder``, on a free loopback port; ``stop()`` (SIGTERM)
    or ``kill()`` (SIGKILL) and ``start()`` again keep the port. ``extra``: more config lines;
    ``persistence``: keep sessions on disk (across a kill, with a short ``autosave_interval`` in ``extra``)."""

    def __init__(self, folder: Path, extra: str = "", persistence: bool = False) -> None:
        self.folder, self.port = Path(folder), free_port()
        self.conf = self.folder / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", f"log_dest file {self.folder / 'mosquitto.log'}"]
        if os.geteuid() == 0:  # as root mosquitto would switch to its own user, who cannot read a tmp folder
            lines.append("user root")
        if "password_file" not in extra:
            lines.append("allow_anonymous true")
        if persistence:
            lines += ["persistence true", f"persistence_location {self.folder}/"]
        self.conf.write_text("\n".join(lines) + "\n" + extra)
        self.proc: subprocess.Popen | None = None

    def start(self) -> MosquittoBroker:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode()}{self.log()[-500:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.01)
        raise RuntimeError("mosquitto did not listen within 10 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)
        self.proc = None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.stop(sig)

    def log(self) -> str:
        path = self.folder / "mosquitto.log"
        return path.read_text() if path.exists() else ""
