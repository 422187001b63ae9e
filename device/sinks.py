"""Where results go: JSON lines (stdout or a rotating file), a localhost HTTP server
(``/latest``, ``/events`` Server-Sent Events, ``/health``) and MQTT (paho-mqtt, optional).

Each result is the dict ``Fusion.result`` builds (schema in the README's Device section):
labels, probabilities and timestamps only. No sink stores or sends frames or audio.

MQTT topic layout under ``topic_prefix`` (default ``edgeemo/<hostname>``):

- ``<prefix>/result``: every result as JSON (QoS 0, not retained)
- ``<prefix>/fused``: the fused label alone, e.g. ``happy`` (retained; ``none`` without one)
- ``<prefix>/status``: ``online`` (retained); ``offline`` on shutdown or, as the broker's
  last will, when the device drops off
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any, TextIO

from edgeemo.errors import EdgeemoError, MissingDependencyError

log = logging.getLogger("edgeemo.device")


def to_json(result: dict[str, Any]) -> str:
    """One compact JSON line."""
    return json.dumps(result, separators=(",", ":"), allow_nan=False)


class JsonLinesSink:
    """One JSON object per line to a stream (default stdout)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def publish(self, result: dict[str, Any]) -> None:
        self.stream.write(to_json(result) + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


class RotatingFileSink:
    """JSON lines to ``path``, rotated at ``max_bytes`` keeping ``backups`` old files (path.1, path.2, ...)."""

    def __init__(self, path: str | Path, max_bytes: int = 10_000_000, backups: int = 3) -> None:
        self.path = Path(path)
        if max_bytes < 1 or backups < 0:
            raise EdgeemoError("output file max_bytes must be >= 1 and backups >= 0", self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handler = RotatingFileHandler(self.path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        except OSError as exc:
            raise EdgeemoError(f"cannot write the output file ({exc.strerror or exc})", self.path) from None
        self._handler.setFormatter(logging.Formatter("%(message)s"))

    def publish(self, result: dict[str, Any]) -> None:
        record = logging.LogRecord("edgeemo.results", logging.INFO, "", 0, to_json(result), None, None)
        self._handler.handle(record)

    def close(self) -> None:
        self._handler.close()


class HttpSink:
    """A small HTTP server in a thread: ``GET /latest`` (last result, 204 before the first),
    ``GET /events`` (Server-Sent Events, one ``data:`` line per result), ``GET /health``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8765) -> None:
        self._latest: dict[str, Any] | None = None
        self._seq = 0
        self._cond = threading.Condition()
        self._closed = False
        self._health: Callable[[], dict[str, Any]] = lambda: {"status": "ok"}
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # keep stderr for the daemon's own log
                log.debug("http: " + format, *args)

            def _send_json(self, code: int, body: Any) -> None:
                data = (to_json(body) + "\n").encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.split("?")[0]
                if path == "/latest":
                    latest = sink._latest
                    if latest is None:
                        self.send_response(204)
                        self.end_headers()
                    else:
                        self._send_json(200, latest)
                elif path == "/health":
                    self._send_json(200, sink._health())
                elif path == "/events":
                    sink._stream(self)
                else:
                    self._send_json(404, {"error": f"no such endpoint {path}; try /latest, /events, /health"})

        try:
            self.server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise EdgeemoError(f"cannot serve HTTP on {host}:{port} ({exc.strerror or exc})") from None
        self.server.daemon_threads = True
        self.host, self.port = host, self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="http", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def bind(self, health: Callable[[], dict[str, Any]]) -> None:
        """Called by the pipeline: where /health gets its report."""
        self._health = health

    def publish(self, result: dict[str, Any]) -> None:
        with self._cond:
            self._latest = result
            self._seq += 1
            self._cond.notify_all()

    def _stream(self, handler: BaseHTTPRequestHandler) -> None:
        with self._cond:
            seen = self._seq  # before the headers: a result published once the client has them is never missed
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.end_headers()
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda last=seen: self._seq != last or self._closed, timeout=15.0)
                    if self._closed:
                        return
                    fresh, seen, latest = self._seq != seen, self._seq, self._latest
                # only the newest result is sent: a slow client skips results, never queues them
                handler.wfile.write(f"data: {to_json(latest)}\n\n".encode() if fresh else b": keep-alive\n\n")
                handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return  # the client went away

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.server.shutdown()
        self.server.server_close()


class MqttSink:
    """Results to an MQTT broker through paho-mqtt (imported only here); see the module doc for topics."""

    def __init__(self, host: str = "localhost", port: int = 1883, topic_prefix: str | None = None,
                 client_id: str | None = None, username: str | None = None, password: str | None = None,
                 mqtt_module: Any = None) -> None:
        if mqtt_module is None:
            try:
                import paho.mqtt.client as mqtt_module
            except ImportError:
                raise MissingDependencyError("paho-mqtt", "device", "the MQTT output") from None
        mqtt = mqtt_module
        self.prefix = (topic_prefix or f"edgeemo/{socket.gethostname()}").rstrip("/")
        cid = client_id or f"edgeemo-{socket.gethostname()}"
        if hasattr(mqtt, "CallbackAPIVersion"):  # paho-mqtt 2.x
            self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid)
        else:
            self.client = mqtt.Client(client_id=cid)
        if username:
            self.client.username_pw_set(username, password)
        self.client.will_set(f"{self.prefix}/status", "offline", qos=1, retain=True)
        try:
            self.client.connect(host, port, keepalive=30)
        except (OSError, ValueError) as exc:
            raise EdgeemoError(f"cannot connect to the MQTT broker {host}:{port} ({exc})") from None
        self.client.loop_start()  # paho reconnects by itself when the broker goes away
        self.client.publish(f"{self.prefix}/status", "online", qos=1, retain=True)

    def publish(self, result: dict[str, Any]) -> None:
        self.client.publish(f"{self.prefix}/result", to_json(result), qos=0)
        fused = result.get("fused")
        self.client.publish(f"{self.prefix}/fused", fused["label"] if fused else "none", qos=0, retain=True)

    def close(self) -> None:
        info = self.client.publish(f"{self.prefix}/status", "offline", qos=1, retain=True)
        with contextlib.suppress(RuntimeError, ValueError, TypeError):  # not connected: the last will says so
            info.wait_for_publish(timeout=2.0)
        self.client.loop_stop()
        self.client.disconnect()
