"""``device.toml``: the daemon's configuration, validated strictly.

Every key has a default (so an empty file is a working config) and is documented in the
commented example ``device/device.toml``. An unknown table or key, a value of the wrong
type or out of range, invalid TOML or bytes that are not UTF-8 are an EdgeemoError naming
the file and the key, never a traceback; CLI flags override the file through ``override``
and are checked the same way.

Secrets stay out of the file if you like: the HTTP token and the MQTT password can come
from a file (``token_file``, ``password_file``, e.g. a systemd credential) or from the
environment (``EDGEEMO_HTTP_TOKEN``, ``EDGEEMO_MQTT_PASSWORD``); ``http_token`` and
``mqtt_password`` resolve them. Serving HTTP beyond this machine needs ``[http]
allow_remote = true`` and a token.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeemo.device.pipeline import PipelineSettings
from edgeemo.device.sinks import is_loopback
from edgeemo.errors import EdgeemoError, MissingDependencyError
from edgeemo.fusion import FusionConfig

try:
    import tomllib
except ImportError:  # Python 3.10
    try:
        import tomli as tomllib
    except ImportError:
        tomllib = None  # type: ignore[assignment]

LOG_LEVELS = ("debug", "info", "warning", "error")
STDOUT_MODES = ("json", "text", "off")
HTTP_TOKEN_ENV = "EDGEEMO_HTTP_TOKEN"
MQTT_PASSWORD_ENV = "EDGEEMO_MQTT_PASSWORD"
MIN_TOKEN_CHARS = 16
MAX_CONFIG_BYTES = 1_000_000  # a device.toml is a few kB; anything this big is a mistake


@dataclass(frozen=True)
class CameraConfig:
    enabled: bool = True
    source: str = "0"  # index, /dev/videoN, picamera2, GStreamer pipeline (with "!"), video file, image folder
    width: int = 640
    height: int = 480
    fps: float = 30.0  # requested from a camera; the pace of a replay
    loop: bool = False  # replays start again at the end


@dataclass(frozen=True)
class MicrophoneConfig:
    enabled: bool = True
    source: str = "default"  # pyaudio device index or name substring, "default", or a WAV/FLAC file to replay
    chunk_s: float = 0.1
    loop: bool = False


@dataclass(frozen=True)
class ModelsConfig:
    face: str = "face"  # shipped name or model file (.tflite/.onnx with its .json manifest)
    voice: str = "voice"
    backend: str = "auto"  # auto, litert, tflite-runtime, onnxruntime
    threads: int = 1  # interpreter threads per model (0 = the runtime's choice)


@dataclass(frozen=True)
class OutputConfig:
    stdout: str = "json"  # json (one line per result), text (a short human line), off
    file: str = ""  # JSON lines to this file, rotated; "" = no file
    file_max_bytes: int = 10_000_000
    file_backups: int = 3


@dataclass(frozen=True)
class HttpConfig:
    enabled: bool = True
    host: str = "127.0.0.1"  # localhost only by default; another address needs allow_remote and a token
    port: int = 8765
    allow_remote: bool = False  # must be true to serve a non-loopback address (and a token must be set)
    token: str = field(default="", repr=False)  # bearer token; better token_file or EDGEEMO_HTTP_TOKEN
    token_file: str = ""  # a file holding the token (first line)
    sse_queue: int = 32  # results waiting per /events client; the oldest is dropped (and counted)
    max_clients: int = 8  # /events streams at once (503 beyond)
    client_timeout_s: float = 10.0  # a client whose connection takes no data (or no request) this long is dropped


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = False
    host: str = "localhost"
    port: int = 1883
    topic_prefix: str = ""  # "" = edgeemo/<hostname>
    client_id: str = ""  # "" = edgeemo-<hostname>
    username: str = ""
    password: str = field(default="", repr=False)  # better password_file or EDGEEMO_MQTT_PASSWORD
    password_file: str = ""
    tls: bool = False
    ca_file: str = ""  # "" = the system's CA certificates
    cert_file: str = ""  # client certificate (with key_file), if the broker wants one
    key_file: str = ""
    tls_insecure: bool = False  # true skips the broker host name check: never in production
    qos: int = 1  # of results and the fused label (0, 1 or 2); status is always 1
    queue_size: int = 1000  # results kept while the broker is away; the oldest is dropped (and counted)
    keepalive_s: int = 30
    connect_timeout_s: float = 10.0  # at start-up the broker must answer within this


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"  # debug, info, warning, error (to stderr)


@dataclass(frozen=True)
class DeviceConfig:
    camera: CameraConfig = field(default_factory=CameraConfig)
    microphone: MicrophoneConfig = field(default_factory=MicrophoneConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    log: LogConfig = field(default_factory=LogConfig)


TABLES: dict[str, type] = {f.name: f.default_factory().__class__ for f in dataclasses.fields(DeviceConfig)}  # type: ignore[misc]
CHOICES = {("output", "stdout"): STDOUT_MODES, ("log", "level"): LOG_LEVELS,
           ("models", "backend"): ("auto", "litert", "tflite-runtime", "onnxruntime"), ("mqtt", "qos"): (0, 1, 2)}
# (table, key): (lowest, highest) allowed; None = no bound on that side
RANGES: dict[tuple[str, str], tuple[float | None, float | None]] = {
    ("camera", "width"): (0, 16384), ("camera", "height"): (0, 16384), ("camera", "fps"): (0, 1000),
    ("microphone", "chunk_s"): (0.001, 10.0), ("models", "threads"): (0, 256),
    ("output", "file_max_bytes"): (1, None), ("output", "file_backups"): (0, 100),
    ("http", "port"): (0, 65535), ("http", "sse_queue"): (1, 10_000), ("http", "max_clients"): (1, 1000),
    ("http", "client_timeout_s"): (0.01, 3600), ("mqtt", "port"): (1, 65535), ("mqtt", "queue_size"): (1, 1_000_000),
    ("mqtt", "keepalive_s"): (1, 65535), ("mqtt", "connect_timeout_s"): (0.01, 600),
}


def _name(key: Any) -> str:
    """A table or key name as TOML writes it: bare when it can be, else quoted (no newline or escape leaks out)."""
    text = str(key)
    return text if text and all(c.isascii() and (c.isalnum() or c in "_-") for c in text) else json.dumps(text)


def _show(value: Any, limit: int = 80) -> str:
    """A value for an error message: its repr, on one line, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(hint: str) -> str:
    return {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string",
            "dict[str, float]": "a table of numbers"}.get(hint, hint)


def _coerce(value: Any, hint: str) -> Any:
    """The value as the field's type, or raise TypeError. TOML ints are accepted for floats and for strings."""
    if hint == "bool":
        if isinstance(value, bool):
            return value
    elif hint == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint == "float":
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif hint == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, int) and not isinstance(value, bool):  # camera source = 0
            return str(value)
    elif hint == "dict[str, float]" and isinstance(value, dict):
        return {k: _coerce(v, "float") for k, v in value.items()}
    raise TypeError


def _build(table: str, cls: type, values: dict[str, Any], where: Path | None) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise EdgeemoError(f"unknown key [{table}] {_name(unknown[0])} (known: {', '.join(fields)})", where)
    kwargs = {}
    for key, value in values.items():
        hint = str(fields[key].type)
        try:
            kwargs[key] = _coerce(value, hint)
            if isinstance(kwargs[key], dict):  # [fusion.weights] face = 2 keeps voice's default
                kwargs[key] = {**fields[key].default_factory(), **kwargs[key]}  # type: ignore[misc]
        except TypeError:
            raise EdgeemoError(f"[{table}] {key} must be {_type_name(hint)}, got {_show(value)}", where) from None
        choices = CHOICES.get((table, key))
        if choices and kwargs[key] not in choices:
            raise EdgeemoError(f"[{table}] {key} must be one of {', '.join(map(str, choices))}, got {_show(value)}",
                               where)
        low, high = RANGES.get((table, key), (None, None))
        if low is not None and kwargs[key] < low or high is not None and kwargs[key] > high:
            bounds = f"between {low} and {high}" if low is not None and high is not None else (
                f">= {low}" if low is not None else f"<= {high}")
            raise EdgeemoError(f"[{table}] {key} must be {bounds}, got {_show(value)}", where)
        if hint == "str" and "\x00" in kwargs[key]:
            raise EdgeemoError(f"[{table}] {key} must not contain a NUL character", where)
    try:
        return cls(**kwargs)
    except EdgeemoError as exc:  # the section's own check ("fusion weights.face must be ...")
        message = str(exc) if str(exc).startswith(table) else f"[{table}] {exc}"
        raise EdgeemoError(message, where) from None


def from_dict(data: dict[str, Any], where: Path | None = None) -> DeviceConfig:
    """A DeviceConfig from parsed TOML tables; ``where`` names the file in errors."""
    if not isinstance(data, dict):
        raise EdgeemoError(f"a config must be a set of tables, got {type(data).__name__}", where)
    unknown = sorted(map(str, set(data) - set(TABLES)))
    if unknown:
        raise EdgeemoError(f"unknown table [{_name(unknown[0])}] (known: {', '.join(TABLES)})", where)
    parts = {}
    for table, cls in TABLES.items():
        values = data.get(table, {})
        if not isinstance(values, dict):
            raise EdgeemoError(f"{table} must be a table ([{table}]), got {_show(values)}", where)
        parts[table] = _build(table, cls, values, where)
    cfg = DeviceConfig(**parts)
    check(cfg, where)
    return _remember(cfg, where)


def _remember(cfg: DeviceConfig, where: Path | None) -> DeviceConfig:
    object.__setattr__(cfg, "_source", where)  # not a field: equality and the tables stay as they were
    return cfg


def config_file(cfg: DeviceConfig) -> Path | None:
    """The file a config was read from (None for defaults / a dict)."""
    return getattr(cfg, "_source", None)


def _read_secret_file(path_text: str, table: str, key: str, where: Path | None) -> str:
    path = Path(path_text).expanduser()
    try:
        with path.open("rb") as f:
            data = f.read(4097)
    except OSError as exc:
        raise EdgeemoError(f"[{table}] {key} = {path_text!r}: cannot read it ({exc.strerror or exc})", where) from None
    if len(data) > 4096:
        raise EdgeemoError(f"[{table}] {key} = {path_text!r}: longer than 4096 bytes, not a secret", where)
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise EdgeemoError(f"[{table}] {key} = {path_text!r}: not UTF-8 text", where) from None
    secret = lines[0].strip() if lines else ""
    if not secret:
        raise EdgeemoError(f"[{table}] {key} = {path_text!r}: the file is empty", where)
    return secret


def _secret(table: str, value: str, file_key: str, file_value: str, env: str, where: Path | None) -> str:
    key = "token" if table == "http" else "password"
    if value and file_value:
        raise EdgeemoError(f"[{table}] {key} and {file_key} are both set: keep one", where)
    if file_value:
        return _read_secret_file(file_value, table, file_key, where)
    return value or os.environ.get(env, "").strip()


def http_token(cfg: DeviceConfig) -> str:
    """The bearer token from [http] token, token_file or $EDGEEMO_HTTP_TOKEN ("" = none)."""
    h = cfg.http
    return _secret("http", h.token, "token_file", h.token_file, HTTP_TOKEN_ENV, config_file(cfg))


def mqtt_password(cfg: DeviceConfig) -> str:
    """The MQTT password from [mqtt] password, password_file or $EDGEEMO_MQTT_PASSWORD ("" = none)."""
    m = cfg.mqtt
    return _secret("mqtt", m.password, "password_file", m.password_file, MQTT_PASSWORD_ENV, config_file(cfg))


def check(cfg: DeviceConfig, where: Path | None = None) -> None:
    """Rules across keys: remote HTTP needs allow_remote and a token; secrets readable; TLS files consistent."""
    h, m = cfg.http, cfg.mqtt
    if h.enabled:
        token = _secret("http", h.token, "token_file", h.token_file, HTTP_TOKEN_ENV, where)
        if token and len(token) < MIN_TOKEN_CHARS:
            raise EdgeemoError(f"[http] token must be at least {MIN_TOKEN_CHARS} characters (e.g. the output of "
                               "`openssl rand -hex 32`)", where)
        if not is_loopback(h.host):
            if not h.allow_remote:
                raise EdgeemoError(f"[http] host = {h.host!r} serves the network, not only this machine: set [http] "
                                   "allow_remote = true and a token ([http] token_file or the "
                                   f"{HTTP_TOKEN_ENV} environment variable), or use host = \"127.0.0.1\"", where)
            if not token:
                raise EdgeemoError(f"[http] host = {h.host!r} with allow_remote = true needs a bearer token: set "
                                   f"[http] token_file (or token, or the {HTTP_TOKEN_ENV} environment variable)", where)
    if m.enabled:
        _secret("mqtt", m.password, "password_file", m.password_file, MQTT_PASSWORD_ENV, where)
        if (m.password or m.password_file) and not m.username:
            raise EdgeemoError("[mqtt] a password is set but username is empty", where)
    tls_files = [k for k in ("ca_file", "cert_file", "key_file") if getattr(m, k)]
    if tls_files and not m.tls:
        raise EdgeemoError(f"[mqtt] {tls_files[0]} is set but tls = false: set tls = true", where)
    if m.key_file and not m.cert_file:
        raise EdgeemoError("[mqtt] key_file is set without cert_file", where)
    if m.tls_insecure and not m.tls:
        raise EdgeemoError("[mqtt] tls_insecure = true but tls = false", where)
    if m.enabled:
        for key in tls_files:
            path = Path(getattr(m, key)).expanduser()
            if not path.is_file():
                raise EdgeemoError(f"[mqtt] {key} = {getattr(m, key)!r}: no such file", where)


def load_config(path: str | Path | None) -> DeviceConfig:
    """Read and validate a device.toml; None gives the defaults."""
    if path is None:
        return from_dict({})  # the defaults, checked (the token may come from the environment)
    path = Path(path)
    if tomllib is None:
        raise MissingDependencyError("tomli", "device", "reading device.toml on Python 3.10")
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise EdgeemoError("config file not found", path) from None
    except OSError as exc:
        raise EdgeemoError(f"cannot read the config file ({exc.strerror or exc})", path) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise EdgeemoError(f"the config file is over {MAX_CONFIG_BYTES} bytes; is it the right file?", path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise EdgeemoError(f"not UTF-8 text (byte {raw[exc.start]:#04x} on line {line})", path) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EdgeemoError(f"not valid TOML: {exc}", path) from None
    except RecursionError:  # tomllib recurses per nesting level
        raise EdgeemoError("not valid TOML: arrays or tables nested too deeply", path) from None
    return from_dict(data, path)


def override(config: DeviceConfig, **values: Any) -> DeviceConfig:
    """Replace keys given as ``table__key=value`` (None = keep the file's value), validated like the file."""
    changes: dict[str, dict[str, Any]] = {}
    for name, value in values.items():
        if value is None:
            continue
        table, key = name.split("__", 1)
        changes.setdefault(table, {})[key] = value
    if not changes:
        return config
    where = config_file(config)
    parts = {}
    for table, kv in changes.items():
        current = dataclasses.asdict(getattr(config, table))
        try:
            parts[table] = _build(table, TABLES[table], {**current, **kv}, None)
        except EdgeemoError as exc:  # a flag's value: say so, and which file it overrides
            raise EdgeemoError(f"{exc} (from the command line{f', over {where}' if where else ''})") from None
    new = dataclasses.replace(config, **parts)
    check(new, where)
    return _remember(new, where)
