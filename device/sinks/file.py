"""JSON lines to a stream (stdout) or to a rotating file that survives logrotate and a full disk."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from edgeemo.device.health import Component
from edgeemo.device.sinks.worker import to_json
from edgeemo.errors import EdgeemoError

log = logging.getLogger("edgeemo.device")


class JsonLinesSink:
    """One JSON object per line to a stream (default stdout)."""

    name = "stdout"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def publish(self, result: dict[str, Any]) -> None:
        self.stream.write(to_json(result) + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


class RotatingFileSink:
    """JSON lines to ``path``, rotated at ``max_bytes`` keeping ``backups`` old files (path.1, path.2, ...;
    with 0 backups the file is emptied when full).

    Run-time trouble never reaches the pipeline: a line that cannot be written (ENOSPC, EIO)
    is dropped and counted, the state goes ``down`` with the error, and writing resumes with
    the next line once it works again; a partly written line is cut off so the file stays
    whole JSON lines. A file that logrotate (or anyone) moved or deleted is noticed by its
    inode, like ``logging.handlers.WatchedFileHandler``, and a new one opened in its place.
    ``write`` replaces ``os.write`` (tests).
    """

    name = "file"

    def __init__(self, path: str | Path, max_bytes: int = 10_000_000, backups: int = 3,
                 write: Callable[[int, bytes], int] = os.write) -> None:
        self.path = Path(path)
        if max_bytes < 1 or backups < 0:
            raise EdgeemoError("output file max_bytes must be >= 1 and backups >= 0", self.path)
        self.max_bytes, self.backups, self._write = max_bytes, backups, write
        self.component = Component("file sink")
        self.written = self.dropped = self.reopened = self.rotations = 0
        self._fd: int | None = None
        self._id: tuple[int, int] = (0, 0)
        self._size = 0
        self._regular = True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._open()
        except OSError as exc:
            raise EdgeemoError(f"cannot write the output file ({exc.strerror or exc})", self.path) from None

    def _open(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        st = os.fstat(fd)
        self._fd, self._id, self._size = fd, (st.st_dev, st.st_ino), st.st_size
        self._regular = stat.S_ISREG(st.st_mode)  # /dev/stdout, /dev/full, a FIFO: never rotated

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _check_moved(self) -> None:
        """Reopen when the path no longer names the open file (rotated or deleted away)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if st is None or (st.st_dev, st.st_ino) != self._id:
            self._close_fd()
            self.reopened += 1
            log.info("%s was moved or deleted: writing a new one", self.path)
        else:
            self._size = st.st_size  # also right after a copytruncate

    def _rotate(self) -> None:
        self._close_fd()
        if self.backups == 0:
            os.truncate(self.path, 0)
        else:
            for i in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{i}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
        self.rotations += 1
        self._open()

    def _append(self, data: bytes) -> None:
        assert self._fd is not None
        start, done = self._size, 0
        try:
            while done < len(data):
                done += self._write(self._fd, data[done:])
        except OSError:
            if done and self._regular:  # a partial line: cut it off so the file stays whole lines
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, start)
            raise
        self._size += len(data)

    def publish(self, result: dict[str, Any]) -> None:
        data = (to_json(result) + "\n").encode()
        try:
            if self._fd is not None and self._regular:
                self._check_moved()
            if self._fd is None:
                self._open()
            if self._regular and self._size > 0 and self._size + len(data) > self.max_bytes:
                self._rotate()
            self._append(data)
        except OSError as exc:
            self.dropped += 1
            reason = errno.errorcode.get(exc.errno or 0, "") if exc.errno else ""
            self.component.down(f"{self.path}: lines are being dropped ({reason + ': ' if reason else ''}"
                                f"{exc.strerror or exc})")
            return
        self.written += 1
        self.component.ok()

    def health(self) -> dict[str, Any]:
        """State plus lines written and dropped, reopens (logrotate) and rotations."""
        return {**self.component.report(), "path": str(self.path), "written": self.written, "dropped": self.dropped,
                "reopened": self.reopened, "rotations": self.rotations}

    def close(self) -> None:
        self._close_fd()


