"""Camera sources: OpenCV ``VideoCapture`` (USB/V4L2 index or path, GStreamer pipeline),
picamera2 (Raspberry Pi CSI) and replay sources (video file, image folder, frames in memory).

Every source has the same three methods: ``open()``, ``read()`` -> a BGR uint8 frame, or
None at the end of a replay, and ``close()``. ``open`` and ``read`` raise an EdgeemoError
naming the device when it cannot be opened or stops delivering frames; the pipeline
retries such a source with backoff while the other modality keeps working. ``read`` raises
``SourceOverflow`` when data was lost but the device is still open (counted, not reopened).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from edgeemo.errors import EdgeemoError, MissingDependencyError
from edgeemo.face_datasets import read_image_color
from edgeemo.face_index import IMAGE_SUFFIXES


class FrameSource(Protocol):
    """What the pipeline's camera thread reads from."""

    name: str

    def open(self) -> None: ...

    def read(self) -> np.ndarray | None: ...

    def close(self) -> None: ...


def _bgr(frame: np.ndarray) -> np.ndarray:
    """Gray or BGRA to 3-channel BGR uint8 (what the face path expects)."""
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


class OpenCVCamera:
    """A live camera through ``cv2.VideoCapture``: an index (0 = /dev/video0), a device path,
    or a GStreamer pipeline string (anything containing ``!``, e.g. a Jetson CSI ``nvarguscamerasrc``)."""

    def __init__(self, device: int | str, width: int | None = None, height: int | None = None,
                 fps: float | None = None) -> None:
        self.device = device
        self.size = (width, height)
        self.fps = fps
        self.name = f"camera {device}"
        self._cap: Any = None

    def open(self) -> None:
        if isinstance(self.device, str) and "!" in self.device:
            cap = cv2.VideoCapture(self.device, cv2.CAP_GSTREAMER)
        else:
            cap = cv2.VideoCapture(self.device)
        if not cap.isOpened():
            cap.release()
            raise EdgeemoError(f"cannot open {self.name} (no such device, busy, or no permission)")
        width, height = self.size
        if width and height:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if self.fps:
            cap.set(cv2.CAP_PROP_FPS, self.fps)
        self._cap = cap

    def read(self) -> np.ndarray | None:
        if self._cap is None:
            raise EdgeemoError(f"{self.name} is not open")
        ok, frame = self._cap.read()
        if not ok or frame is None:
            raise EdgeemoError(f"{self.name} stopped delivering frames (unplugged?)")
        return _bgr(frame)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class PacedReplay:
    """Frames from ``_frames()`` at ``fps`` (0 = as fast as possible), optionally looping."""

    def __init__(self, name: str, fps: float, loop: bool) -> None:
        if fps < 0:
            raise EdgeemoError(f"{name}: fps must be >= 0, got {fps}")
        self.name, self.fps, self.loop = name, float(fps), loop
        self._it: Any = None
        self._next_t = 0.0

    def _frames(self) -> Any:  # an iterator of frames, restarted for each loop
        raise NotImplementedError

    def open(self) -> None:
        self._it = self._frames()
        self._next_t = time.monotonic()

    def read(self) -> np.ndarray | None:
        if self._it is None:
            raise EdgeemoError(f"{self.name} is not open")
        frame = next(self._it, None)
        if frame is None and self.loop:
            self._it = self._frames()
            frame = next(self._it, None)
        if frame is None:
            return None
        if self.fps > 0:
            delay = self._next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._next_t = max(self._next_t + 1.0 / self.fps, time.monotonic() - 1.0 / self.fps)
        return _bgr(frame)

    def close(self) -> None:
        self._it = None


class FrameReplay(PacedReplay):
    """Frames held in memory (e.g. the built-in demo clip)."""

    def __init__(self, frames: Sequence[np.ndarray], fps: float = 30.0, loop: bool = False,
                 name: str = "replay") -> None:
        if len(frames) == 0:
            raise EdgeemoError(f"{name}: no frames to replay")
        super().__init__(name, fps, loop)
        self.frames = frames

    def _frames(self) -> Any:
        return iter(self.frames)


class VideoFileReplay(PacedReplay):
    """A video file decoded by OpenCV, paced at ``fps`` (default: the file's own rate; 0 = unpaced)."""

    def __init__(self, path: str | Path, fps: float | None = None, loop: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise EdgeemoError("video file not found", self.path)
        cap = cv2.VideoCapture(str(self.path))
        ok = cap.isOpened() and cap.read()[0]
        native = cap.get(cv2.CAP_PROP_FPS) if ok else 0.0
        cap.release()
        if not ok:
            raise EdgeemoError("not a readable video (unsupported codec or corrupt)", self.path)
        super().__init__(str(self.path), native if fps is None and native > 0 else (fps or 0.0), loop)

    def _frames(self) -> Any:
        cap = cv2.VideoCapture(str(self.path))
        try:
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                yield frame
        finally:
            cap.release()


class ImageFolderReplay(PacedReplay):
    """The images of a folder in name order, paced at ``fps``."""

    def __init__(self, folder: str | Path, fps: float = 5.0, loop: bool = False) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise EdgeemoError("image folder not found", self.folder)
        self.files = sorted(p for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise EdgeemoError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in the folder", self.folder)
        super().__init__(str(self.folder), fps, loop)

    def _frames(self) -> Any:
        return (read_image_color(p) for p in self.files)


class PiCamera:
    """Raspberry Pi CSI camera through picamera2 (imported when opened; not on x86).

    ``factory`` builds the camera object (default ``picamera2.Picamera2``); tests pass a
    stand-in with the same methods: create_video_configuration, configure, start,
    capture_array, stop, close. picamera2's "RGB888" format is B, G, R bytes in memory,
    i.e. what OpenCV calls BGR.
    """

    def __init__(self, width: int = 640, height: int = 480, fps: float | None = None,
                 factory: Callable[[], Any] | None = None) -> None:
        self.size = (width, height)
        self.fps = fps
        self.factory = factory
        self.name = "picamera2"
        self._cam: Any = None

    def open(self) -> None:
        factory = self.factory
        if factory is None:
            try:
                from picamera2 import Picamera2
            except ImportError:
                raise MissingDependencyError(
                    "picamera2", "device", "the Raspberry Pi camera (apt install python3-picamera2)"
                ) from None
            factory = Picamera2
        try:
            cam = factory()
            controls = {"FrameRate": float(self.fps)} if self.fps else {}
            config = cam.create_video_configuration(main={"size": self.size, "format": "RGB888"}, controls=controls)
            cam.configure(config)
            cam.start()
        except EdgeemoError:
            raise
        except Exception as exc:  # picamera2 raises RuntimeError/IndexError when no camera is attached
            raise EdgeemoError(f"cannot open {self.name} ({exc})") from None
        self._cam = cam

    def read(self) -> np.ndarray | None:
        if self._cam is None:
            raise EdgeemoError(f"{self.name} is not open")
        try:
            frame = self._cam.capture_array("main")
        except Exception as exc:
            raise EdgeemoError(f"{self.name} stopped delivering frames ({exc})") from None
        return _bgr(np.asarray(frame))

    def close(self) -> None:
        if self._cam is not None:
            try:
                self._cam.stop()
                self._cam.close()
            finally:
                self._cam = None


def open_camera(spec: str | int, width: int | None = None, height: int | None = None, fps: float | None = None,
                loop: bool = False) -> FrameSource:
    """A camera source from a config/CLI value (not opened yet).

    ``picamera2``: the Pi CSI camera; an integer: a V4L2/USB index; a string with ``!``: a
    GStreamer pipeline; ``/dev/...``: a device path; an image folder or a video file: a
    replay paced at ``fps`` (a video's own rate when fps is 0 or None), looping with ``loop``.
    """
    text = str(spec).strip()
    if text in ("picamera2", "picamera", "csi"):
        return PiCamera(width or 640, height or 480, fps)
    if text.lstrip("-").isdigit():
        return OpenCVCamera(int(text), width, height, fps)
    if "!" in text or text.startswith("/dev/"):
        return OpenCVCamera(text, width, height, fps)
    path = Path(text).expanduser()
    if path.is_dir():
        return ImageFolderReplay(path, fps if fps is not None else 5.0, loop)
    if path.is_file():
        return VideoFileReplay(path, fps or None, loop)  # fps 0: the video's own rate
    raise EdgeemoError(
        "camera not found: expected a camera index (0), /dev/videoN, picamera2, a GStreamer pipeline, "
        "a video file or an image folder", text
    )
