"""The ``Sink`` interface and ``SinkWorker``: each sink behind its own bounded queue and thread."""

from __future__ import annotations

import collections
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from edgeemo.device.health import DEGRADED, DOWN, OK, Component

log = logging.getLogger("edgeemo.device")


def to_json(result: dict[str, Any]) -> str:
    """One compact JSON line."""
    return json.dumps(result, separators=(",", ":"), allow_nan=False)


class Sink(Protocol):
    """Where results go: ``publish`` gets each JSON-ready result; ``close`` at shutdown."""

    def publish(self, result: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


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

