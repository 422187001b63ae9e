"""Per-component health for ``/health``: state (ok / degraded / down, plus off / ended),
the last error, since when, and error counts.

Every part of the daemon that can fail at run time (camera, microphone, the face and voice
workers, each sink) owns a ``Component``. A change of state is logged once (not once per
failed frame or line), so a full disk or an unplugged camera does not flood the journal.
Error texts are short messages, never media: nothing here holds frames or audio.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("edgeemo.device")

OK, DEGRADED, DOWN, OFF, ENDED = "ok", "degraded", "down", "off", "ended"
STATES = (OK, DEGRADED, DOWN, OFF, ENDED)
MAX_ERROR_CHARS = 300  # an error text in /health and the log is cut to this length


class Component:
    """The state of one part of the daemon; thread-safe, cheap to update on every frame."""

    def __init__(self, name: str, state: str = OK, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.clock = clock
        self._lock = threading.Lock()
        self.state = state
        self.since = clock()
        self.last_error: str | None = None
        self.last_error_ts: float | None = None
        self.errors = 0

    def _set(self, state: str, error: str | None, count: bool = True) -> None:
        with self._lock:
            now = self.clock()
            if error is not None:
                self.errors += count
                self.last_error = error[:MAX_ERROR_CHARS]
                self.last_error_ts = now
            if state == self.state:
                return
            previous, self.state, self.since = self.state, state, now
        if state in (DEGRADED, DOWN):
            log.warning("%s is %s: %s", self.name, state, self.last_error)
        elif previous in (DEGRADED, DOWN) and state == OK:
            log.info("%s is ok again (after %d errors in all)", self.name, self.errors)

    def ok(self) -> None:
        """Working (again)."""
        if self.state != OK:  # the common case costs one comparison
            self._set(OK, None)

    def degraded(self, error: str, count: bool = True) -> None:
        """Working, but losing data (a full queue, a failing write) or retrying; ``count`` adds to ``errors``."""
        self._set(DEGRADED, error, count)

    def down(self, error: str, count: bool = True) -> None:
        """Not working (a camera gone, a broker unreachable); being retried."""
        self._set(DOWN, error, count)

    def error(self, error: str) -> None:
        """Count an error without changing the state (a single bad frame)."""
        self._set(self.state, error)

    def set(self, state: str) -> None:
        """``off`` or ``ended`` (or any state) without an error."""
        self._set(state, None)

    def report(self) -> dict[str, Any]:
        """The JSON-ready state: state, since, last_error, last_error_ts, errors."""
        with self._lock:
            return {"state": self.state, "since": round(self.since, 3), "last_error": self.last_error,
                    "last_error_ts": None if self.last_error_ts is None else round(self.last_error_ts, 3),
                    "errors": self.errors}

