"""``device.toml``: the daemon's configuration, validated strictly.

Every key has a default (so an empty file is a working config) and is documented in the
commented example ``device/device.toml``. An unknown table or key, or a value of the wrong
type, is an EdgeemoError naming the file and the key; CLI flags override the file through
``override``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeemo.device.pipeline import PipelineSettings

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
    host: str = "127.0.0.1"  # localhost only by default; 0.0.0.0 exposes it to the network
    port: int = 8765


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = False
    host: str = "localhost"
    port: int = 1883
    topic_prefix: str = ""  # "" = edgeemo/<hostname>
    username: str = ""
    password: str = ""


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
           ("models", "backend"): ("auto", "litert", "tflite-runtime", "onnxruntime")}


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
        raise EdgeemoError(f"unknown key [{table}] {unknown[0]} (known: {', '.join(fields)})", where)
    kwargs = {}
    for key, value in values.items():
        hint = str(fields[key].type)
        try:
            kwargs[key] = _coerce(value, hint)
            if isinstance(kwargs[key], dict):  # [fusion.weights] face = 2 keeps voice's default
                kwargs[key] = {**fields[key].default_factory(), **kwargs[key]}  # type: ignore[misc]
        except TypeError:
            raise EdgeemoError(f"[{table}] {key} must be {_type_name(hint)}, got {value!r}", where) from None
        choices = CHOICES.get((table, key))
        if choices and kwargs[key] not in choices:
            raise EdgeemoError(f"[{table}] {key} must be one of {', '.join(choices)}, got {value!r}", where)
    try:
        return cls(**kwargs)
    except EdgeemoError as exc:  # the section's own check ("fusion weights.face must be ...")
        message = str(exc) if str(exc).startswith(table) else f"[{table}] {exc}"
        raise EdgeemoError(message, where) from None


def from_dict(data: dict[str, Any], where: Path | None = None) -> DeviceConfig:
    """A DeviceConfig from parsed TOML tables; ``where`` names the file in errors."""
    unknown = sorted(set(data) - set(TABLES))
    if unknown:
        raise EdgeemoError(f"unknown table [{unknown[0]}] (known: {', '.join(TABLES)})", where)
    parts = {}
    for table, cls in TABLES.items():
        values = data.get(table, {})
        if not isinstance(values, dict):
            raise EdgeemoError(f"{table} must be a table ([{table}]), got {values!r}", where)
        parts[table] = _build(table, cls, values, where)
    return DeviceConfig(**parts)


def load_config(path: str | Path | None) -> DeviceConfig:
    """Read and validate a device.toml; None gives the defaults."""
    if path is None:
        return DeviceConfig()
    path = Path(path)
    if tomllib is None:
        raise MissingDependencyError("tomli", "device", "reading device.toml on Python 3.10")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EdgeemoError("config file not found", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgeemoError(f"cannot read the config file ({exc})", path) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EdgeemoError(f"not valid TOML: {exc}", path) from None
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
    parts = {}
    for table, kv in changes.items():
        current = dataclasses.asdict(getattr(config, table))
        parts[table] = _build(table, TABLES[table], {**current, **kv}, None)
    return dataclasses.replace(config, **parts)
