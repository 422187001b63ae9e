"""The MQTT sink against a real Mosquitto broker (started per test on a free loopback port):
round trips read by a real paho subscriber, the broker going away and coming back (queued
results delivered, drops counted), username/password, and TLS with a CA made here."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edgeemo.device.config import from_dict
from edgeemo.device.daemon import build_sinks
from edgeemo.device.sinks import MqttSink
from edgeemo.device.standins import MosquittoBroker as Broker
from edgeemo.errors import EdgeemoError

MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
FAST = {"retry_initial_s": 0.05, "retry_max_s": 0.2, "connect_timeout_s": 5.0}


def wait_until(predicate, timeout: float = 10.0, what: str = "condition", detail=None):
    """Poll ``predicate`` until it is true; on timeout fail with ``detail()`` (what was seen)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f": {detail()}" if detail else ""))


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path).start()
    yield b
    b.stop()


class Subscriber:
    """A real paho client collecting (topic, payload, retained) under a prefix."""

    def __init__(self, port: int, topic: str, client_id: str | None = None, persistent: bool = False,
                 **tls) -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self.subscribed = threading.Event()
        kwargs = {"client_id": client_id or "", "clean_session": not persistent} if persistent else {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, **kwargs)
        if tls:
            self.client.tls_set(**tls)
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload.decode(), m.retain))
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.reconnect_delay_set(0.05, 0.2)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(5), "subscription not acknowledged"

    def payloads(self, suffix: str) -> list[str]:
        return [p for t, p, _ in list(self.messages) if t.endswith(suffix)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def result(ts: float, label: str | None = "happy") -> dict:
    fused = None if label is None else {"label": label, "probs": {label: 1.0}}
    return {"ts": ts, "face": None, "voice": None, "fused": fused, "status": {"face": "absent", "voice": "absent"}}


def test_round_trip_topic_layout_retained_status_and_fused(broker):
    sub = Subscriber(broker.port, "t/dev/#")
    sink = MqttSink("127.0.0.1", broker.port, topic_prefix="t/dev/", **FAST)
    try:
        sink.publish(result(1.0, "sad"))
        sink.publish(result(2.0, None))
        wait_until(lambda: len(sub.payloads("/result")) == 2, what="two results")
        assert [json.loads(p)["ts"] for p in sub.payloads("/result")] == [1.0, 2.0]
        wait_until(lambda: sub.payloads("/fused")[-1:] == ["none"], what="fused label")
        assert sub.payloads("/status") == ["online"]
        health = sink.health()
        assert health["state"] == "ok" and health["connected"] and health["dropped"] == 0
        wait_until(lambda: sink.health()["queued"] == 0, what="acknowledgements")
        assert sink.health()["sent"] >= 3  # online, two results (the fused label may be coalesced)
    finally:
        sink.close()
    wait_until(lambda: sub.payloads("/status")[-1:] == ["offline"], what="offline on close")
    sub.close()
    late = Subscriber(broker.port, "t/dev/#")  # a client that connects later gets the retained state
    wait_until(lambda: len(late.messages) >= 2, what="retained messages")
    assert {(t, p) for t, p, retained in late.messages if retained} == {("t/dev/status", "offline"),
                                                                      ("t/dev/fused", "none")}
    late.close()


def test_broker_down_and_back_delivers_the_queue_and_counts_drops(tmp_path):
    broker = Broker(tmp_path, persistence=True).start()  # the subscriber's session survives the restart
    sub = Subscriber(broker.port, "q/#", client_id="edgeemo-test-sub", persistent=True)
    sink = MqttSink("127.0.0.1", broker.port, topic_prefix="q", queue_size=5, **FAST)
    try:
        sink.publish(result(0.0))
        wait_until(lambda: sub.payloads("/result") == [json.dumps(result(0.0), separators=(",", ":"))])
        broker.stop()  # the broker goes away
        wait_until(lambda: not sink.health()["connected"], what="the sink to notice")
        for i in range(1, 9):  # 8 results while it is away: the queue keeps the 5 newest
            sink.publish(result(float(i)))
        wait_until(lambda: sink.health()["waiting"] == 5, what="5 queued results")
        down = sink.health()
        assert down["state"] == "down" and "lost the broker" in down["last_error"]
        assert down["queued"] == 5 and down["dropped"] == 3 and down["capacity"] == 5
        broker.start()  # back on the same port: both clients reconnect by themselves
        seen = lambda: [json.loads(p)["ts"] for p in sub.payloads("/result")]  # noqa: E731
        wait_until(lambda: {4.0, 5.0, 6.0, 7.0, 8.0} <= set(seen()), 15.0, "the queued results",
                   lambda: (sink.health(), sub.messages))
        # QoS 1 is at least once (a message in flight at the restart may come twice); the 3 oldest were dropped
        assert set(seen()) == {0.0, 4.0, 5.0, 6.0, 7.0, 8.0}
        assert list(dict.fromkeys(t for t in seen() if t)) == [4.0, 5.0, 6.0, 7.0, 8.0]  # in order
        # mosquitto sent the device's last will ("offline") as it shut down: the sink says "online" again
        live_status = lambda: [p for t, p, retained in list(sub.messages) if t == "q/status" and not retained]  # noqa: E731
        wait_until(lambda: live_status()[-1:] == ["online"] and live_status().count("online") >= 2,
                   what="online sent again after the reconnect", detail=live_status)
        up = sink.health()
        assert up["state"] == "ok" and up["connected"] and up["reconnects"] == 1 and up["dropped"] == 3
        wait_until(lambda: sink.health()["queued"] == 0, what="acknowledgements")
    finally:
        sink.close()
        sub.close()
        broker.stop()


def test_a_broker_killed_outright_is_reconnected_too(broker):
    sink = MqttSink("127.0.0.1", broker.port, topic_prefix="k", **FAST)
    try:
        broker.stop(signal.SIGKILL)
        wait_until(lambda: sink.health()["state"] == "down", what="down")
        sink.publish(result(1.0))
        broker.start()
        sub = Subscriber(broker.port, "k/#")
        wait_until(lambda: sink.health()["connected"], what="reconnect")
        sink.publish(result(2.0))
        wait_until(lambda: 2.0 in [json.loads(p)["ts"] for p in sub.payloads("/result")], what="a fresh result")
        sub.close()
    finally:
        sink.close()


@pytest.fixture
def auth_broker(tmp_path):
    passwords = tmp_path / "passwd"
    subprocess.run([MOSQUITTO_PASSWD, "-b", "-c", str(passwords), "edgeemo", "s3cret-pass"], check=True,
                   capture_output=True)
    b = Broker(tmp_path, f"allow_anonymous false\npassword_file {passwords}\n").start()
    yield b
    b.stop()


def test_username_and_password_file_from_the_config(auth_broker, tmp_path):
    secret = tmp_path / "mqtt.pass"
    secret.write_text("s3cret-pass\n")
    secret.chmod(0o600)
    cfg = from_dict({"output": {"stdout": "off"}, "http": {"enabled": False},
                     "mqtt": {"enabled": True, "host": "127.0.0.1", "port": auth_broker.port, "topic_prefix": "a",
                              "username": "edgeemo", "password_file": str(secret)}})
    assert "s3cret" not in repr(cfg)  # secrets stay out of reprs (and so out of logs)
    (sink,) = build_sinks(cfg)
    try:
        assert sink.health()["auth"] and sink.health()["connected"]
    finally:
        sink.close()
    with pytest.raises(EdgeemoError, match=r"refused the connection: Not authorized.*username and password_file"):
        MqttSink("127.0.0.1", auth_broker.port, username="edgeemo", password="wrong", **FAST)
    with pytest.raises(EdgeemoError, match="refused the connection"):
        MqttSink("127.0.0.1", auth_broker.port, **FAST)  # anonymous


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all signed by the CA."""
    d = tmp_path_factory.mktemp("certs")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=edgeemo test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    for name, ext in (("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
                      ("client", "extendedKeyUsage=clientAuth")):
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=edgeemo {name}", cwd=d)
        (d / f"{name}.ext").write_text(ext + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    return d


def test_tls_with_a_private_ca_and_a_client_certificate(tmp_path, certs):
    extra = (f"cafile {certs / 'ca.crt'}\ncertfile {certs / 'server.crt'}\nkeyfile {certs / 'server.key'}\n"
             "require_certificate true\n")
    broker = Broker(tmp_path, extra).start()
    tls = {"ca_file": str(certs / "ca.crt"), "cert_file": str(certs / "client.crt"),
           "key_file": str(certs / "client.key")}
    try:
        sub = Subscriber(broker.port, "s/#", ca_certs=tls["ca_file"], certfile=tls["cert_file"],
                         keyfile=tls["key_file"])
        sink = MqttSink("127.0.0.1", broker.port, topic_prefix="s", tls=True, **tls, **FAST)
        try:
            sink.publish(result(7.0))
            wait_until(lambda: sub.payloads("/result"), what="a result over TLS")
            assert json.loads(sub.payloads("/result")[0])["ts"] == 7.0 and sink.health()["tls"]
        finally:
            sink.close()
            sub.close()
        # the system CAs do not know this CA: the broker's certificate is refused
        with pytest.raises(EdgeemoError, match=f"cannot connect to the MQTT broker 127.0.0.1:{broker.port}.*"
                                               "certificate verify failed"):
            MqttSink("127.0.0.1", broker.port, tls=True, cert_file=tls["cert_file"], key_file=tls["key_file"], **FAST)
        with pytest.raises(EdgeemoError, match="MQTT TLS set-up failed.*ca_file"):
            MqttSink("127.0.0.1", broker.port, tls=True, ca_file=str(tmp_path / "missing.crt"), **FAST)
    finally:
        broker.stop()
