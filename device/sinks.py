"""Where results go: JSON lines (stdout or a rotating file), a localhost HTTP server
(``/latest``, ``/events`` Server-Sent Events, ``/health``) and MQTT (paho-mqtt, optional).

Each result is the dict ``Fusion.result`` builds (schema in the README's Device section):
labels, probabilities and timestamps only. No sink stores or sends frames or audio.

Every sink reports its own state through ``health()`` (merged into ``/health`` by the
pipeline) and handles run-time trouble itself: the file sink counts lines it could not
write (a full disk) and reopens a file that logrotate moved; the HTTP sink gives each SSE
client a bounded queue (oldest dropped, counted) and drops clients that stop reading; the
MQTT sink queues results in a bounded buffer while the broker is away (oldest dropped,
counted) and reconnects with backoff.

MQTT topic layout under ``topic_prefix`` (default ``edgeemo/<hostname>``):

- ``<prefix>/result``: every result as JSON (``qos``, default 1, not retained)
- ``<prefix>/fused``: the fused label alone, e.g. ``happy`` (retained; ``none`` without one;
  after an outage only the newest is sent)
- ``<prefix>/status``: ``online`` (retained, sent on every (re)connect); ``offline`` on
  shutdown or, as the broker's last will, when the device drops off
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hmac
import itertools
import json
import logging
import os
import socket
import stat
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO

from edgeemo.device.health import Component

from edgeemo.errors import EdgeemoError, MissingDependencyError

log = logging.getLogger("edgeemo.device")


def to_json(result: dict[str, Any]) -> str:
    """One compact JSON line."""
    return json.dumps(result, separators=(",", ":"), allow_nan=False)


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


class MqttSink:
    """Results to an MQTT broker through paho-mqtt (imported only here); see the module doc for topics.

    ``publish`` never blocks: results wait in a queue of ``queue_size`` (the oldest dropped
    and counted while the broker is away) and a sender thread hands them to paho when
    connected, at most ``inflight`` unacknowledged at a time (QoS 1 messages paho has taken
    are resent by paho after a reconnect). paho reconnects with backoff from
    ``retry_initial_s`` doubling to ``retry_max_s``; ``online`` is re-sent on every connect.
    At start-up the broker must answer (CONNACK) within ``connect_timeout_s`` and accept the
    credentials, or it is an EdgeemoError. ``tls`` (with ``ca_file``, else the system CAs;
    ``cert_file``/``key_file`` for a client certificate) verifies the broker's certificate
    and host name unless ``tls_insecure``.
    """

    name = "mqtt"

    def __init__(self, host: str = "localhost", port: int = 1883, topic_prefix: str | None = None,
                 client_id: str | None = None, username: str | None = None, password: str | None = None,
                 mqtt_module: Any = None, *, tls: bool = False, ca_file: str | None = None,
                 cert_file: str | None = None, key_file: str | None = None, tls_insecure: bool = False,
                 qos: int = 1, queue_size: int = 1000, inflight: int = 20, keepalive_s: int = 30,
                 retry_initial_s: float = 0.5, retry_max_s: float = 30.0, connect_timeout_s: float = 10.0) -> None:
        if mqtt_module is None:
            try:
                import paho.mqtt.client as mqtt_module
            except ImportError:
                raise MissingDependencyError("paho-mqtt", "device", "the MQTT output") from None
        if qos not in (0, 1, 2) or queue_size < 1 or inflight < 1:
            raise EdgeemoError(f"mqtt qos must be 0, 1 or 2 and queue_size, inflight >= 1 (got {qos}, {queue_size}, "
                               f"{inflight})")
        mqtt = self._mqtt = mqtt_module
        self.broker = f"{host}:{port}"
        self.prefix = (topic_prefix or f"edgeemo/{socket.gethostname()}").rstrip("/")
        self.qos, self.queue_size, self.inflight = qos, queue_size, inflight
        self.tls, self.auth = tls, bool(username)
        self.component = Component("mqtt sink", "starting")
        self.connected = False
        self.sent = self.dropped = self.reconnects = self.connects = 0
        self._pending: collections.deque = collections.deque()  # result payloads not yet given to paho
        self._outstanding: set[int] = set()  # mids paho has but the broker has not acknowledged
        self._acked_early: set[int] = set()
        self._fused: str | None = None
        self._fused_dirty = self._status_dirty = False
        self._closing = self._draining = False
        self._cond = threading.Condition()
        self._first = threading.Event()
        self._first_reason: Any = None
        cid = client_id or f"edgeemo-{socket.gethostname()}"
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid)
        if username:
            self.client.username_pw_set(username, password)
        if tls:
            try:
                self.client.tls_set(ca_certs=ca_file or None, certfile=cert_file or None, keyfile=key_file or None)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                raise EdgeemoError(f"MQTT TLS set-up failed: {exc} (check [mqtt] ca_file, cert_file, key_file)") \
                    from None
            if tls_insecure:
                self.client.tls_insecure_set(True)
                log.warning("MQTT TLS without checking the broker's host name (tls_insecure = true)")
        self.client.max_inflight_messages_set(inflight)
        self.client.reconnect_delay_set(min_delay=retry_initial_s, max_delay=retry_max_s)  # type: ignore[arg-type]
        self.client.will_set(f"{self.prefix}/status", "offline", qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        try:
            self.client.connect(host, port, keepalive=keepalive_s)
        except (OSError, ValueError) as exc:
            raise EdgeemoError(f"cannot connect to the MQTT broker {host}:{port} ({exc})") from None
        self.client.loop_start()
        answered = self._first.wait(connect_timeout_s)
        reason = self._first_reason
        if not answered or getattr(reason, "is_failure", False):
            self.client.loop_stop()
            with contextlib.suppress(Exception):
                self.client.disconnect()
            if not answered:
                raise EdgeemoError(f"the MQTT broker {host}:{port} did not answer within {connect_timeout_s:g} s "
                                   "(is it an MQTT broker? TLS to a plain port, or the reverse?)")
            hint = " (check [mqtt] username and password_file)" if "authori" in str(reason).lower() or \
                "password" in str(reason).lower() else ""
            raise EdgeemoError(f"the MQTT broker {host}:{port} refused the connection: {reason}{hint}")
        self._sender = threading.Thread(target=self._send_loop, name="mqtt-sender", daemon=True)
        self._sender.start()

    # paho's callbacks run in its network thread (some while holding paho's locks): they only
    # update state and wake the sender thread, never call client.publish themselves.

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            self.component.down(f"broker {self.broker} refused the connection: {reason}")
        else:
            with self._cond:
                self.connected = True
                self.connects += 1
                self.reconnects = self.connects - 1
                self._status_dirty = True
                self._fused_dirty = self._fused is not None
                self._cond.notify_all()
            self.component.ok()
        self._first_reason = reason
        self._first.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        with self._cond:
            self.connected = False
            closing = self._closing
        if not closing:
            self.component.down(f"lost the broker {self.broker} ({reason}); reconnecting with backoff")

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any = None, properties: Any = None) -> None:
        with self._cond:
            if mid in self._outstanding:
                self._outstanding.discard(mid)
                self.sent += 1
            else:
                self._acked_early.add(mid)
            self._cond.notify_all()

    # ------------------------------------------------------------------ sending

    def publish(self, result: dict[str, Any]) -> None:
        fused = result.get("fused")
        with self._cond:
            if len(self._pending) >= self.queue_size:  # bounded: the oldest goes first
                self._pending.popleft()
                self.dropped += 1
            self._pending.append(to_json(result))
            self._fused = fused["label"] if fused else "none"
            self._fused_dirty = True
            self._cond.notify_all()

    def _ready(self) -> bool:
        if self._closing:
            return True
        return self.connected and len(self._outstanding) < self.inflight and bool(
            self._status_dirty or self._pending or self._fused_dirty)

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(self._ready, timeout=1.0)
                if self._closing and not (self._draining and self.connected and self._pending):
                    return
                if not self._ready():
                    continue
                if self._status_dirty:
                    self._status_dirty = False
                    item, topic, retain, qos = None, "status", True, 1
                    payload = "online"
                elif self._pending:
                    payload = item = self._pending.popleft()
                    topic, retain, qos = "result", False, self.qos
                else:
                    self._fused_dirty = False
                    item, topic, retain, qos = None, "fused", True, self.qos
                    payload = self._fused or "none"
            info = self.client.publish(f"{self.prefix}/{topic}", payload, qos=qos, retain=retain)
            with self._cond:
                if info.rc == self._mqtt.MQTT_ERR_SUCCESS or (qos > 0 and info.rc == self._mqtt.MQTT_ERR_NO_CONN):
                    # QoS > 0: paho keeps it and resends it after reconnecting
                    if info.mid in self._acked_early:
                        self._acked_early.discard(info.mid)
                        self.sent += 1
                    else:
                        self._outstanding.add(info.mid)
                elif info.rc == self._mqtt.MQTT_ERR_NO_CONN:  # QoS 0 and the connection just went: keep it
                    self.connected = False
                    if item is not None:
                        self._pending.appendleft(item)
                    elif topic == "status":
                        self._status_dirty = True
                    else:
                        self._fused_dirty = True
                else:  # e.g. a payload over the broker's limit: counted, not retried forever
                    self.dropped += 1
                    self.component.error(f"publish to {topic} failed: {self._mqtt.error_string(info.rc)}")

    def health(self) -> dict[str, Any]:
        """State, the broker, and the queue: queued (waiting + unacknowledged), dropped, sent, reconnects."""
        with self._cond:
            return {**self.component.report(), "broker": self.broker, "tls": self.tls, "auth": self.auth,
                    "connected": self.connected, "queued": len(self._pending) + len(self._outstanding),
                    "waiting": len(self._pending), "inflight": len(self._outstanding), "capacity": self.queue_size,
                    "dropped": self.dropped, "sent": self.sent, "reconnects": self.reconnects}

    def close(self, timeout: float = 2.0) -> None:
        """Send what is queued (while connected, up to ``timeout``), then ``offline``, then disconnect."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._closing = self._draining = True
            self._cond.notify_all()
        self._sender.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._draining = False
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._outstanding or not self.connected,
                                max(0.0, deadline - time.monotonic()))
        self._sender.join(1.0)
        info = self.client.publish(f"{self.prefix}/status", "offline", qos=1, retain=True)
        with contextlib.suppress(RuntimeError, ValueError, TypeError):  # not connected: the last will says so
            info.wait_for_publish(timeout=max(0.2, deadline - time.monotonic()))
        self.client.disconnect()
        self.client.loop_stop()
