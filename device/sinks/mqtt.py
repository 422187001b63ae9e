"""MQTT output (paho-mqtt, optional): a bounded buffer while the broker is away, reconnects with backoff.

Topic layout under ``topic_prefix`` (default ``edgeemo/<hostname>``):

- ``<prefix>/result``: every result as JSON (``qos``, default 1, not retained)
- ``<prefix>/fused``: the fused label alone, e.g. ``happy`` (retained; ``none`` without one;
  after an outage only the newest is sent)
- ``<prefix>/status``: ``online`` (retained, sent on every (re)connect); ``offline`` on
  shutdown or, as the broker's last will, when the device drops off
"""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import threading
import time
from typing import Any

from edgeemo.device.health import Component
from edgeemo.device.sinks.worker import to_json
from edgeemo.errors import EdgeemoError, MissingDependencyError

log = logging.getLogger("edgeemo.device")


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
