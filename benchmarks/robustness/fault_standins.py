"""What the fault-injection benchmark (``fault_injection.py``) needs beyond the package's stand-ins
(``edgeemo.device.standins``: camera, microphone, disk, Mosquitto broker, shared with the tests): a paho
subscriber, an SSE reader, and a sink that records every result.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any


def wait_until(predicate: Any, timeout: float, step: float = 0.01) -> Any:
    """Poll ``predicate`` until it is truthy (returns its value) or ``timeout`` passes (returns None)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return None


class RecordingSink:
    """Keeps every result it is given (the measurement's ground truth of what the pipeline published)."""

    name = "recorder"

    def __init__(self) -> None:
        self.results: list[dict[str, Any]] = []

    def publish(self, result: dict[str, Any]) -> None:
        self.results.append(result)

    def close(self) -> None:
        pass


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
