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

from edgeemo.device.sinks.file import JsonLinesSink, RotatingFileSink
from edgeemo.device.sinks.http import HttpSink, is_loopback
from edgeemo.device.sinks.mqtt import MqttSink
from edgeemo.device.sinks.worker import Sink, SinkWorker, sink_name, to_json

__all__ = ["HttpSink", "JsonLinesSink", "MqttSink", "RotatingFileSink", "Sink", "SinkWorker", "is_loopback",
           "sink_name", "to_json"]
