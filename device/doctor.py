"""``edgeemo doctor``: what this device has and whether the configured parts work.

Each check is ``{"check", "status", "detail"}`` with status ``ok``, ``missing`` (an
optional package that is not installed), ``off`` (disabled in the config) or ``fail``
(something the config needs is broken: the CLI then exits 1).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from typing import Any

import numpy as np
from rich.markup import escape
from rich.table import Table

from edgeemo.device.config import DeviceConfig
from edgeemo.device.microphone import PyAudioMicrophone, import_pyaudio, input_devices, open_microphone
from edgeemo.device.sources import open_camera
from edgeemo.errors import EdgeemoError
from edgeemo.predict import open_emotion_model

PACKAGES = (  # (check name, import name, distribution, why)
    ("runtime litert", "ai_edge_litert", "ai-edge-litert", "TFLite models"),
    ("runtime tflite-runtime", "tflite_runtime", "tflite-runtime", "TFLite models on old Pi images"),
    ("runtime onnxruntime", "onnxruntime", "onnxruntime", "ONNX models"),
    ("camera picamera2", "picamera2", "picamera2", "the Raspberry Pi CSI camera"),
    ("microphone pyaudio", "pyaudio", "PyAudio", "live microphones"),
    ("output paho-mqtt", "paho.mqtt", "paho-mqtt", "the MQTT output"),
)


def _check(name: str, status: str, detail: str) -> dict[str, str]:
    return {"check": name, "status": status, "detail": detail}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing
        return False


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "installed"


def package_checks() -> list[dict[str, str]]:
    """Runtimes and optional packages, found without importing them (TensorFlow is never loaded)."""
    checks = []
    for name, module, dist, why in PACKAGES:
        if _installed(module):
            checks.append(_check(name, "ok", f"{dist} {_version(dist)}"))
        else:
            checks.append(_check(name, "missing", f"not installed (needed for {why})"))
    if not any(_installed(m) for m in ("ai_edge_litert", "tflite_runtime", "onnxruntime")):
        checks.append(_check("runtimes", "fail", "no model runtime: pip install 'edgeemo[device]'"))
    return checks


def model_check(task: str, spec: str, cfg: DeviceConfig) -> dict[str, str]:
    try:
        m = open_emotion_model(spec, cfg.models.backend, cfg.models.threads or None, task=task)
    except EdgeemoError as exc:
        return _check(f"model {task}", "fail", str(exc))
    sha = "sha256 verified" if m.runner.manifest is not None else "no manifest"
    return _check(f"model {task}", "ok", f"{spec}: {m.path.name}, {m.runner.backend}, {m.quantization}, {sha}")


def camera_check(cfg: DeviceConfig) -> dict[str, str]:
    c = cfg.camera
    if not c.enabled:
        return _check("camera", "off", "disabled in the config")
    try:
        source = open_camera(c.source, c.width, c.height, c.fps)
        source.open()
        try:
            frame = source.read()
        finally:
            source.close()
    except EdgeemoError as exc:
        return _check("camera", "fail", str(exc))
    if frame is None:
        return _check("camera", "fail", f"{c.source}: no frame")
    return _check("camera", "ok", f"{source.name}: {frame.shape[1]}x{frame.shape[0]} frame read")


def microphone_check(cfg: DeviceConfig) -> list[dict[str, str]]:
    m = cfg.microphone
    if not m.enabled:
        return [_check("microphone", "off", "disabled in the config")]
    checks = []
    try:
        source: Any = open_microphone(m.source, m.chunk_s, realtime=False)
        if isinstance(source, PyAudioMicrophone):
            pa = import_pyaudio().PyAudio()
            try:
                names = ", ".join(f"{d['index']}: {d['name']}" for d in input_devices(pa))
            finally:
                pa.terminate()
            checks.append(_check("microphone inputs", "ok", names) if names else
                          _check("microphone inputs", "missing", "no input device found"))
        source.open()
        try:
            chunk = source.read()
        finally:
            source.close()
    except EdgeemoError as exc:
        return [*checks, _check("microphone", "fail", str(exc))]
    if chunk is None or len(chunk) == 0:
        return [*checks, _check("microphone", "fail", f"{m.source}: no audio")]
    rms = float(np.sqrt(np.mean((chunk.astype(np.float64) / 32768) ** 2)))
    level = f"{20 * np.log10(max(rms, 1e-10)):.0f} dBFS"
    return [*checks, _check("microphone", "ok", f"{source.name}: {len(chunk)} samples at 16 kHz read, {level}")]


def run_checks(cfg: DeviceConfig) -> list[dict[str, str]]:
    """Every check, in a stable order."""
    checks = package_checks()
    try:
        from edgeemo.device.paths import make_detector

        detector = make_detector(cfg.pipeline)
        what = (f"BlazeFace short-range on {detector.backend} ({detector.path.name})"
                if cfg.pipeline.detector == "blazeface" else "OpenCV Haar cascade (frontal face)")
        checks.append(_check("face detector", "ok", what))
    except EdgeemoError as exc:
        checks.append(_check("face detector", "fail", str(exc)))
    if cfg.camera.enabled:
        checks.append(model_check("face", cfg.models.face, cfg))
    if cfg.microphone.enabled:
        checks.append(model_check("voice", cfg.models.voice, cfg))
    checks.append(camera_check(cfg))
    checks.extend(microphone_check(cfg))
    if cfg.mqtt.enabled and not _installed("paho.mqtt"):
        checks.append(_check("mqtt", "fail", "[mqtt] is enabled but paho-mqtt is not installed"))
    return checks


def checks_table(checks: list[dict[str, str]]) -> Table:
    """``run_checks``' result as the table ``edgeemo doctor`` prints, status coloured."""
    table = Table(title="edgeemo doctor")
    for col in ("check", "status", "detail"):
        table.add_column(col)
    colors = {"ok": "green", "missing": "yellow", "off": "dim", "fail": "red"}
    for c in checks:
        status = c["status"]
        table.add_row(c["check"], f"[{colors.get(status, 'white')}]{status}[/]", escape(c["detail"]))
    return table
