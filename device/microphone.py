"""Microphone sources: pyaudio (PortAudio) capture at 16 kHz mono, and WAV/FLAC replay.

Like the camera sources: ``open()``, ``read()`` -> an int16 chunk (None at the end of a
replay), ``close()``; failures raise an EdgeemoError naming the device, and an input
overflow (PortAudio dropped audio because it was read too late) raises ``SourceOverflow``:
the pipeline counts it and restarts the voice window instead of reopening the device. pyaudio is
imported only when a live microphone is opened, so replay and tests need no PortAudio.
"""

from __future__ import annotations

import ctypes
import logging
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgeemo.audio import SAMPLE_RATE, float_to_pcm16, load_audio
from edgeemo.errors import EdgeemoError, MissingDependencyError, SourceOverflow

log = logging.getLogger("edgeemo.device")

PA_INPUT_OVERFLOWED = -9981  # PortAudio's paInputOverflowed, the errno of pyaudio's IOError
PA_INVALID_DEVICE = -9996  # paInvalidDevice: for the default device, pyaudio words it "no default output device"


class AudioSource(Protocol):
    """What the pipeline's microphone thread reads from: 16 kHz mono int16 chunks."""

    name: str

    def open(self) -> None: ...

    def read(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


_ALSA_HANDLER: Any = None


def _alsa_errors_to_debug_log() -> None:
    """Send ALSA's error messages (PortAudio probing every configured PCM prints dozens) to the debug log."""
    global _ALSA_HANDLER
    if _ALSA_HANDLER is not None:
        return
    try:
        asound = ctypes.cdll.LoadLibrary("libasound.so.2")
        kind = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p)
        _ALSA_HANDLER = kind(lambda file, line, fn, err, fmt: log.debug("ALSA %s: %s", (fn or b"").decode(), (
            fmt or b"").decode(errors="replace")))
        asound.snd_lib_error_set_handler(_ALSA_HANDLER)
    except (OSError, AttributeError):  # no ALSA (macOS, Windows): nothing to quieten
        _ALSA_HANDLER = False


def import_pyaudio() -> Any:
    try:
        import pyaudio
    except ImportError:
        raise MissingDependencyError(
            "pyaudio", "microphone", "the microphone (apt install portaudio19-dev first: PyAudio builds against it)"
        ) from None
    _alsa_errors_to_debug_log()
    return pyaudio


def input_devices(pa: Any) -> list[dict[str, Any]]:
    """PortAudio devices with input channels: [{index, name, channels, rate}]."""
    found = []
    for i in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(i)
        if int(info.get("maxInputChannels", 0)) > 0:
            found.append({"index": i, "name": str(info.get("name", "")), "channels": int(info["maxInputChannels"]),
                          "rate": float(info.get("defaultSampleRate", 0))})
    return found


def find_input_device(pa: Any, device: int | str | None) -> int | None:
    """An input device index from an index, a (case-insensitive) name substring, or None (the default)."""
    if device is None or device == "" or device == "default":
        return None
    devices = input_devices(pa)
    names = "; ".join(f"{d['index']}: {d['name']}" for d in devices) or "none"
    if isinstance(device, int) or str(device).isdigit():
        index = int(device)
        if not any(d["index"] == index for d in devices):
            raise EdgeemoError(f"microphone {index}: no input device with that index (inputs: {names})")
        return index
    matches = [d for d in devices if str(device).lower() in d["name"].lower()]
    if not matches:
        raise EdgeemoError(f"microphone {device!r}: no input device with that name (inputs: {names})")
    return int(matches[0]["index"])


class PyAudioMicrophone:
    """A live microphone through pyaudio: 16-bit mono at 16 kHz, ``chunk_s`` seconds per read.

    ``device``: an index, a name substring (e.g. "USB"), or None for the system default.
    ``pyaudio_module`` replaces the pyaudio import (tests).
    """

    def __init__(self, device: int | str | None = None, chunk_s: float = 0.1, rate: int = SAMPLE_RATE,
                 pyaudio_module: Any = None) -> None:
        self.device = device
        self.rate = rate
        self.chunk = max(1, int(round(chunk_s * rate)))
        self.name = f"microphone {device if device not in (None, '') else 'default'}"
        self._module = pyaudio_module
        self._pa: Any = None
        self._stream: Any = None

    def open(self) -> None:
        pyaudio = self._module or import_pyaudio()
        pa = pyaudio.PyAudio()
        try:
            index = find_input_device(pa, self.device)
            self._stream = pa.open(format=pyaudio.paInt16, channels=1, rate=self.rate, input=True,
                                   input_device_index=index, frames_per_buffer=self.chunk)
        except EdgeemoError:
            pa.terminate()
            raise
        except (OSError, ValueError) as exc:  # PortAudio: invalid device, unsupported rate, busy
            pa.terminate()
            if index is None and getattr(exc, "errno", None) == PA_INVALID_DEVICE:
                raise EdgeemoError(f"cannot open {self.name}: this machine has no default input device "
                                   "(list them with `edgeemo doctor`)") from None
            raise EdgeemoError(f"cannot open {self.name} at {self.rate} Hz mono 16-bit ({exc})") from None
        self._pa = pa

    def read(self) -> np.ndarray | None:
        if self._stream is None:
            raise EdgeemoError(f"{self.name} is not open")
        try:
            data = self._stream.read(self.chunk, exception_on_overflow=True)
        except OSError as exc:
            if exc.errno == PA_INPUT_OVERFLOWED:  # we read too late and PortAudio dropped audio: count, go on
                raise SourceOverflow(f"{self.name}: input overflowed (audio was lost)") from None
            raise EdgeemoError(f"{self.name} stopped delivering audio ({exc})") from None
        except ValueError as exc:
            raise EdgeemoError(f"{self.name} stopped delivering audio ({exc})") from None
        return np.frombuffer(data, dtype="<i2").copy()

    def close(self) -> None:
        try:
            if self._stream is not None:
                self._stream.stop_stream()
                self._stream.close()
        except OSError:
            pass
        finally:
            self._stream = None
            if self._pa is not None:
                self._pa.terminate()
                self._pa = None


class AudioReplay:
    """16 kHz int16 samples replayed in ``chunk_s`` chunks, in real time or (``realtime=False``) at once."""

    def __init__(self, pcm: np.ndarray, chunk_s: float = 0.1, realtime: bool = True, loop: bool = False,
                 name: str = "audio replay") -> None:
        pcm = np.asarray(pcm)
        if pcm.dtype != np.int16 or pcm.ndim != 1 or len(pcm) == 0:
            raise EdgeemoError(f"{name}: replay needs non-empty 1-D int16 PCM")
        self.pcm, self.realtime, self.loop, self.name = pcm, realtime, loop, name
        self.chunk = max(1, int(round(chunk_s * SAMPLE_RATE)))
        self._pos: int | None = None
        self._next_t = 0.0

    @classmethod
    def from_file(cls, path: str | Path, chunk_s: float = 0.1, realtime: bool = True,
                  loop: bool = False) -> AudioReplay:
        """A WAV/FLAC/AIFF file (any rate, channels averaged) replayed as 16 kHz mono."""
        samples, _ = load_audio(path)  # EdgeemoError naming the file when it is not audio
        return cls(float_to_pcm16(samples), chunk_s, realtime, loop, name=str(path))

    def open(self) -> None:
        self._pos = 0
        self._next_t = time.monotonic()

    def read(self) -> np.ndarray | None:
        if self._pos is None:
            raise EdgeemoError(f"{self.name} is not open")
        if self._pos >= len(self.pcm):
            if not self.loop:
                return None
            self._pos = 0
        chunk = self.pcm[self._pos : self._pos + self.chunk]
        self._pos += len(chunk)
        if self.realtime:
            delay = self._next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._next_t += len(chunk) / SAMPLE_RATE
        return chunk

    def close(self) -> None:
        self._pos = None


def open_microphone(spec: str | int | None, chunk_s: float = 0.1, loop: bool = False,
                    realtime: bool = True) -> AudioSource:
    """A microphone source from a config/CLI value: an audio file is replayed, anything else is a pyaudio device."""
    text = "" if spec is None else str(spec).strip()
    path = Path(text).expanduser()
    if text and (path.suffix.lower() in (".wav", ".flac", ".aif", ".aiff") or path.is_file()):
        return AudioReplay.from_file(path, chunk_s, realtime, loop)
    return PyAudioMicrophone(text or None, chunk_s)
