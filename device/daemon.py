"""``edgeemo run``: build the pipeline from a DeviceConfig (models, sources, sinks) and run it.

Everything that can be wrong with the set-up (a model whose manifest does not match, a
camera or microphone that cannot be opened, a port in use, an unwritable output file) fails
here, before the loop starts, as one EdgeemoError.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
import sys
from typing import Any, TextIO

from edgeemo.device.config import DeviceConfig, http_token, mqtt_password
from edgeemo.device.microphone import AudioSource, open_microphone
from edgeemo.device.paths import FacePath, VoicePath, make_detector
from edgeemo.device.pipeline import Counters, Pipeline
from edgeemo.device.sinks import HttpSink, JsonLinesSink, MqttSink, RotatingFileSink, Sink
from edgeemo.device.sources import FrameSource, open_camera
from edgeemo.predict import open_face_model, open_voice_model

log = logging.getLogger("edgeemo.device")

NOTHING = {"absent": None, "stale": "stale", "waiting": "waiting"}


class TextSink:
    """A short human-readable line per result (``[output] stdout = "text"``, the demo's default)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.t0: float | None = None

    def publish(self, result: dict[str, Any]) -> None:
        self.t0 = result["ts"] if self.t0 is None else self.t0
        parts = [f"+{result['ts'] - self.t0:5.1f}s"]
        for name, absent in (("face", "no face"), ("voice", "no speech"), ("fused", "-")):
            r = result.get(name)
            if r is not None:
                parts.append(f"{name}: {r['label']:<8} {r['probs'][r['label']]:.2f}")
            else:
                status = result.get("status", {}).get(name, "absent")
                parts.append(f"{name}: {NOTHING.get(status) or absent:<13}")
        self.stream.write("  ".join(parts) + "\n")
        self.stream.flush()

    def close(self) -> None:
        pass


def setup_logging(level: str) -> None:
    """Log lines to stderr (results go to stdout)."""
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("edgeemo.device").setLevel(level.upper())


def build_sinks(cfg: DeviceConfig) -> list[Sink]:
    """The configured sinks; opened now so a bad path, port, broker or credential fails at start-up."""
    sinks: list[Sink] = []
    try:
        if cfg.output.stdout == "json":
            sinks.append(JsonLinesSink())
        elif cfg.output.stdout == "text":
            sinks.append(TextSink())
        if cfg.output.file:
            sinks.append(RotatingFileSink(cfg.output.file, cfg.output.file_max_bytes, cfg.output.file_backups))
        if cfg.http.enabled:
            h = cfg.http
            _warn_if_readable(h.token_file, "[http] token_file")
            http = HttpSink(h.host, h.port, token=http_token(cfg) or None, sse_queue=h.sse_queue,
                            max_clients=h.max_clients, client_timeout_s=h.client_timeout_s,
                            allow_remote=h.allow_remote)
            log.info("serving %s/latest, /events and /health%s", http.url,
                     " (bearer token required)" if http.health()["auth"] else "")
            sinks.append(http)
        if cfg.mqtt.enabled:
            m = cfg.mqtt
            _warn_if_readable(m.password_file, "[mqtt] password_file")
            p = cfg.pipeline
            sinks.append(MqttSink(m.host, m.port, m.topic_prefix or None, client_id=m.client_id or None,
                                  username=m.username or None, password=mqtt_password(cfg) or None, tls=m.tls,
                                  ca_file=m.ca_file or None, cert_file=m.cert_file or None,
                                  key_file=m.key_file or None, tls_insecure=m.tls_insecure, qos=m.qos,
                                  queue_size=m.queue_size, keepalive_s=m.keepalive_s,
                                  retry_initial_s=p.retry_initial_s, retry_max_s=p.retry_max_s,
                                  connect_timeout_s=m.connect_timeout_s))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks


def _warn_if_readable(path: str, key: str) -> None:
    """A secret file others can read is a leak waiting to happen: say so (it still works)."""
    if not path:
        return
    try:
        mode = os.stat(os.path.expanduser(path)).st_mode
    except OSError:
        return  # config.check already reported a file that cannot be read
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s %s can be read by other users: chmod 600 it", key, path)


def build_pipeline(cfg: DeviceConfig, camera: FrameSource | None = None, microphone: AudioSource | None = None,
                   sinks: list[Sink] | None = None) -> Pipeline:
    """Models, sources and sinks from the config; ``camera``/``microphone``/``sinks`` replace the configured ones."""
    threads = cfg.models.threads or None
    face = voice = None
    if cfg.camera.enabled or camera is not None:
        camera = camera or open_camera(cfg.camera.source, cfg.camera.width, cfg.camera.height, cfg.camera.fps,
                                       cfg.camera.loop)
        model = open_face_model(cfg.models.face, cfg.models.backend, threads)
        p = cfg.pipeline
        face = FacePath(model, make_detector(p), margin=p.face_margin, detect_width=p.detect_width,
                        detect_every=p.detect_every)
    if cfg.microphone.enabled or microphone is not None:
        microphone = microphone or open_microphone(cfg.microphone.source, cfg.microphone.chunk_s, cfg.microphone.loop)
        voice = VoicePath(open_voice_model(cfg.models.voice, cfg.models.backend, threads), cfg.pipeline.hop_s)
    return Pipeline(camera, microphone, face, voice, build_sinks(cfg) if sinks is None else sinks, cfg.fusion,
                    cfg.pipeline)


def demo_config(cfg: DeviceConfig, stdout: str | None = None) -> DeviceConfig:
    """The demo's settings: human lines, a result every 0.5 s, no HTTP/MQTT (flags applied after may turn them on)."""
    return dataclasses.replace(
        cfg,
        output=dataclasses.replace(cfg.output, stdout=stdout or "text"),
        pipeline=dataclasses.replace(cfg.pipeline, publish_interval_s=0.5),
        http=dataclasses.replace(cfg.http, enabled=False),
        mqtt=dataclasses.replace(cfg.mqtt, enabled=False),
    )


def run_daemon(cfg: DeviceConfig, demo: bool = False, duration_s: float | None = None,
               realtime: bool = True) -> Counters:
    """Build and run until a signal, ``duration_s``, or (replays) the end of the input."""
    camera = microphone = None
    if demo:
        from edgeemo.device.demo_clip import demo_sources

        camera, microphone = demo_sources(seconds=8.0, realtime=realtime, loop=cfg.camera.loop)
    pipeline = build_pipeline(cfg, camera, microphone)
    counters = pipeline.run(duration_s)
    log.info("stopped: %s", {k: v for k, v in vars(counters).items() if not isinstance(v, dict)})
    return counters
