"""The localhost HTTP server: ``/latest``, ``/events`` (Server-Sent Events) and ``/health``."""

from __future__ import annotations

import collections
import hmac
import itertools
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from edgeemo.device.health import Component
from edgeemo.device.sinks.worker import to_json
from edgeemo.errors import EdgeemoError

log = logging.getLogger("edgeemo.device")


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip()).is_loopback
    except ValueError:
        return False


class _SseClient:
    """One /events connection: a bounded queue of results waiting to be written to it."""

    def __init__(self, cid: int, peer: str, capacity: int) -> None:
        self.id, self.peer, self.connected = cid, peer, time.time()
        self.items: collections.deque = collections.deque()
        self.capacity = capacity
        self.sent = self.dropped = 0

    def report(self) -> dict[str, Any]:
        return {"id": self.id, "peer": self.peer, "connected_s": round(time.time() - self.connected, 3),
                "sent": self.sent, "dropped": self.dropped, "queued": len(self.items)}


class HttpSink:
    """A small HTTP server in a thread: ``GET /latest`` (last result, 204 before the first),
    ``GET /events`` (Server-Sent Events, one ``data:`` line per result), ``GET /health``.

    With a ``token`` every endpoint wants ``Authorization: Bearer <token>`` (compared with
    ``hmac.compare_digest``; 401 otherwise). Each SSE client has a queue of ``sse_queue``
    results (the oldest dropped and counted when it reads too slowly); a client that does
    not take a write for ``client_timeout_s`` is disconnected; at most ``max_clients`` SSE
    streams at once (503 beyond). ``publish`` only appends to queues: it never blocks.
    """

    name = "http"

    def __init__(self, host: str = "127.0.0.1", port: int = 8765, token: str | None = None, sse_queue: int = 32,
                 max_clients: int = 8, client_timeout_s: float = 10.0, keepalive_s: float = 15.0,
                 allow_remote: bool = False) -> None:
        if sse_queue < 1 or max_clients < 1 or not client_timeout_s > 0 or not keepalive_s > 0:
            raise EdgeemoError("http sse_queue and max_clients must be >= 1, client_timeout_s and keepalive_s > 0")
        if not is_loopback(host) and not (allow_remote and token):
            raise EdgeemoError(f"refusing to serve HTTP on {host!r} (beyond this machine) without allow_remote and "
                               "a bearer token")
        self._latest: dict[str, Any] | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._token = token.encode() if token else None
        self._health: Callable[[], dict[str, Any]] = lambda: {"status": "ok"}
        self.sse_queue, self.max_clients, self.keepalive_s = sse_queue, max_clients, keepalive_s
        self.clients: dict[int, _SseClient] = {}
        self._ids = itertools.count(1)
        self.stats = {"requests": 0, "unauthorized": 0, "clients_total": 0, "clients_rejected": 0,
                      "sse_dropped": 0, "sse_sent": 0, "clients_timed_out": 0, "clients_disconnected": 0}
        self.component = Component("http sink")
        sink = self

        class Handler(BaseHTTPRequestHandler):
            timeout = client_timeout_s  # a socket timeout: slow readers and half-sent requests are cut off
            server_version = "edgeemo"
            sys_version = ""  # no Python version in the Server header

            def log_message(self, format: str, *args: Any) -> None:  # keep stderr for the daemon's own log
                log.debug("http: " + format, *args)

            def _send_json(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
                data = (to_json(body) + "\n").encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if sink._token is None:
                    return True
                scheme, _, credential = self.headers.get("Authorization", "").partition(" ")
                given = credential.strip().encode("utf-8", "replace")
                # compare_digest on equal-length digests: the time taken says nothing about the token
                return scheme.lower() == "bearer" and hmac.compare_digest(given, sink._token)

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                with sink._cond:
                    sink.stats["requests"] += 1
                if not self._authorized():
                    with sink._cond:
                        sink.stats["unauthorized"] += 1
                    self._send_json(401, {"error": "unauthorized: send Authorization: Bearer <token>"},
                                    {"WWW-Authenticate": 'Bearer realm="edgeemo"'})
                    return
                path = self.path.split("?")[0]
                if path == "/latest":
                    latest = sink._latest
                    if latest is None:
                        self.send_response(204)
                        self.end_headers()
                    else:
                        self._send_json(200, latest)
                elif path == "/health":
                    try:
                        report = sink._health()
                    except Exception as exc:  # a bug in a report must not kill the endpoint
                        log.warning("/health failed: %s: %s", type(exc).__name__, exc)
                        self._send_json(500, {"status": "unknown", "error": f"{type(exc).__name__}: {exc}"})
                        return
                    self._send_json(200, report)
                elif path == "/events":
                    sink._stream(self)
                else:
                    self._send_json(404, {"error": "no such endpoint; try /latest, /events, /health"})

        try:
            self.server = ThreadingHTTPServer((host, port), Handler)
        except (OSError, OverflowError) as exc:
            raise EdgeemoError(f"cannot serve HTTP on {host}:{port} ({getattr(exc, 'strerror', None) or exc})") \
                from None
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
            for client in self.clients.values():
                if len(client.items) >= client.capacity:  # a slow reader: drop its oldest, never block
                    client.items.popleft()
                    client.dropped += 1
                    self.stats["sse_dropped"] += 1
                client.items.append(result)
            self._cond.notify_all()

    def _stream(self, handler: BaseHTTPRequestHandler) -> None:
        with self._cond:
            if len(self.clients) >= self.max_clients:
                self.stats["clients_rejected"] += 1
                full = True
            else:
                full = False
                # registered before the headers: a result published once the client has them is never missed
                client = _SseClient(next(self._ids), handler.client_address[0], self.sse_queue)
                self.clients[client.id] = client
                self.stats["clients_total"] += 1
        if full:
            handler._send_json(503, {"error": f"too many event streams (max_clients = {self.max_clients})"})  # type: ignore[attr-defined]
            return
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/event-stream")
            handler.send_header("Cache-Control", "no-cache")
            handler.end_headers()
            handler.wfile.flush()
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: client.items or self._closed, timeout=self.keepalive_s)
                    if self._closed:
                        return
                    items = list(client.items)
                    client.items.clear()
                data = b"".join(f"data: {to_json(r)}\n\n".encode() for r in items) or b": keep-alive\n\n"
                handler.wfile.write(data)
                handler.wfile.flush()
                with self._cond:
                    client.sent += len(items)
                    self.stats["sse_sent"] += len(items)
        except TimeoutError:  # the client stopped reading: its socket buffer filled up
            with self._cond:
                self.stats["clients_timed_out"] += 1
            log.info("SSE client %s stopped reading: disconnected", client.peer)
        except OSError:  # BrokenPipe, ConnectionReset: the client went away
            with self._cond:
                self.stats["clients_disconnected"] += 1
        finally:
            with self._cond:
                self.clients.pop(client.id, None)

    def health(self) -> dict[str, Any]:
        """State plus the SSE clients (each with its queue and drop count) and request counters."""
        with self._cond:
            return {**self.component.report(), "url": self.url, "auth": self._token is not None,
                    "clients": [c.report() for c in self.clients.values()], **self.stats}

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.server.shutdown()
        self.server.server_close()


