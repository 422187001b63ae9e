"""Camera and microphone sources: replays, the picamera2 and pyaudio adapters at their API
boundary (stand-ins, no hardware), and the errors a user sees for a missing device."""

from __future__ import annotations

import types

import cv2
import numpy as np
import pytest
import soundfile as sf

from edgeemo.device.microphone import AudioReplay, PyAudioMicrophone, open_microphone
from edgeemo.device.sources import (
    FrameReplay,
    ImageFolderReplay,
    OpenCVCamera,
    PiCamera,
    VideoFileReplay,
    open_camera,
)
from edgeemo.errors import EdgeemoError, MissingDependencyError


def frames(n: int, h: int = 48, w: int = 64) -> list[np.ndarray]:
    return [np.full((h, w, 3), i, np.uint8) for i in range(n)]


def read_all(source, limit: int = 100) -> list:
    out = []
    source.open()
    for _ in range(limit):
        item = source.read()
        if item is None:
            break
        out.append(item)
    source.close()
    return out


def test_frame_replay_ends_or_loops():
    assert [int(f[0, 0, 0]) for f in read_all(FrameReplay(frames(3), fps=0))] == [0, 1, 2]
    looped = read_all(FrameReplay(frames(3), fps=0, loop=True), limit=7)
    assert [int(f[0, 0, 0]) for f in looped] == [0, 1, 2, 0, 1, 2, 0]


def test_gray_frames_become_bgr():
    out = read_all(FrameReplay([np.zeros((10, 12), np.uint8)], fps=0))
    assert out[0].shape == (10, 12, 3)


def test_video_file_replay_reads_every_frame(tmp_path):
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (64, 48))
    for f in frames(5):
        writer.write(f)
    writer.release()
    replay = VideoFileReplay(path, fps=0)
    assert len(read_all(replay)) == 5
    assert VideoFileReplay(path).fps == pytest.approx(30.0)  # paced at the file's own rate by default


def test_image_folder_replay_in_name_order(tmp_path):
    for i in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((8, 8, 3), i * 10, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    out = read_all(ImageFolderReplay(tmp_path, fps=0))
    assert [int(f[0, 0, 0]) for f in out] == [0, 10, 20]


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: VideoFileReplay(p / "missing.mp4"), "video file not found"),
        (lambda p: ImageFolderReplay(p), "no images"),
        (lambda p: open_camera(str(p / "nope")), "camera not found"),
    ],
)
def test_bad_replay_sources_name_the_path(tmp_path, make, match):
    with pytest.raises(EdgeemoError, match=match) as exc:
        make(tmp_path)
    assert str(tmp_path) in str(exc.value)


def test_a_video_file_that_is_not_a_video_is_a_clear_error(tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"not a video at all")
    with pytest.raises(EdgeemoError, match="not a readable video"):
        VideoFileReplay(bad)


def test_missing_opencv_camera_names_the_device():
    cam = open_camera("97")
    assert isinstance(cam, OpenCVCamera)
    with pytest.raises(EdgeemoError, match="camera 97"):
        cam.open()


def test_open_camera_dispatch(tmp_path):
    assert isinstance(open_camera("picamera2"), PiCamera)
    assert open_camera("/dev/video3").device == "/dev/video3"
    gst = "nvarguscamerasrc ! video/x-raw(memory:NVMM) ! nvvidconv ! appsink"
    assert open_camera(gst).device == gst
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    assert isinstance(open_camera(str(tmp_path), fps=2), ImageFolderReplay)


class FakePicamera2:
    """Stand-in for picamera2.Picamera2 with the methods PiCamera uses."""

    def __init__(self, fail_at: str | None = None):
        self.calls: list[str] = []
        self.fail_at = fail_at

    def create_video_configuration(self, main, controls):
        self.calls.append("config")
        return {"main": main, "controls": controls}

    def configure(self, config):
        self.config = config

    def start(self):
        if self.fail_at == "start":
            raise RuntimeError("Camera __init__ sequence did not complete")
        self.calls.append("start")

    def capture_array(self, stream):
        if self.fail_at == "capture":
            raise RuntimeError("camera timed out")
        w, h = self.config["main"]["size"]
        return np.zeros((h, w, 3), np.uint8)

    def stop(self):
        self.calls.append("stop")

    def close(self):
        self.calls.append("close")


def test_picamera_adapter_configures_bgr_video_and_closes():
    fake = FakePicamera2()
    cam = PiCamera(320, 240, fps=15, factory=lambda: fake)
    cam.open()
    assert fake.config == {"main": {"size": (320, 240), "format": "RGB888"}, "controls": {"FrameRate": 15.0}}
    assert cam.read().shape == (240, 320, 3)
    cam.close()
    assert fake.calls == ["config", "start", "stop", "close"]


@pytest.mark.parametrize("where", ["start", "capture"])
def test_picamera_failures_are_clear_errors(where):
    cam = PiCamera(factory=lambda: FakePicamera2(fail_at=where))
    with pytest.raises(EdgeemoError, match="picamera2"):
        cam.open()
        cam.read()


def test_picamera_without_the_package_says_what_to_install():
    with pytest.raises(MissingDependencyError, match="picamera2"):
        PiCamera().open()  # picamera2 cannot be installed on x86


# ----------------------------------------------------------------------------- microphone


def test_audio_replay_from_file_resamples_to_16k_and_chunks(tmp_path):
    path = tmp_path / "tone.wav"
    t = np.arange(8000) / 8000
    sf.write(path, 0.5 * np.sin(2 * np.pi * 220 * t), 8000, subtype="PCM_16")  # 1 s at 8 kHz
    replay = open_microphone(str(path), chunk_s=0.25, realtime=False)
    chunks = read_all(replay)
    assert [len(c) for c in chunks] == [4000] * 4 and chunks[0].dtype == np.int16


def test_audio_replay_loops():
    replay = AudioReplay(np.arange(10, dtype=np.int16), chunk_s=4 / 16000, realtime=False, loop=True)
    got = np.concatenate(read_all(replay, limit=4))
    assert got.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3]


def test_audio_file_that_is_not_audio_names_the_file(tmp_path):
    bad = tmp_path / "speech.wav"
    bad.write_bytes(b"RIFF....garbage")
    with pytest.raises(EdgeemoError, match="speech.wav"):
        open_microphone(str(bad))


class FakeStream:
    def __init__(self, chunks):
        self.chunks = list(chunks)
        self.closed = False

    def read(self, n, exception_on_overflow=True):
        if not self.chunks:
            raise OSError(-9999, "Unanticipated host error")  # what PortAudio says when the device is unplugged
        return self.chunks.pop(0)

    def stop_stream(self):
        pass

    def close(self):
        self.closed = True


def fake_pyaudio(devices, open_error=None, chunks=()):
    """A stand-in for the pyaudio module: PyAudio() with device listing and open()."""
    state = types.SimpleNamespace(opened=None, terminated=0, stream=FakeStream(chunks))

    class PyAudio:
        def get_device_count(self):
            return len(devices)

        def get_device_info_by_index(self, i):
            return devices[i]

        def open(self, **kwargs):
            if open_error:
                raise OSError(-9997, open_error)
            state.opened = kwargs
            return state.stream

        def terminate(self):
            state.terminated += 1

    return types.SimpleNamespace(PyAudio=PyAudio, paInt16=8), state


DEVICES = [
    {"name": "HDMI output", "maxInputChannels": 0, "defaultSampleRate": 48000.0},
    {"name": "USB PnP Sound Device: Audio (hw:1,0)", "maxInputChannels": 1, "defaultSampleRate": 44100.0},
]


def test_pyaudio_microphone_by_name_opens_16k_mono_int16():
    module, state = fake_pyaudio(DEVICES, chunks=[np.arange(1600, dtype="<i2").tobytes()])
    mic = PyAudioMicrophone("usb pnp", chunk_s=0.1, pyaudio_module=module)
    mic.open()
    assert state.opened == {"format": 8, "channels": 1, "rate": 16000, "input": True,
                            "input_device_index": 1, "frames_per_buffer": 1600}
    chunk = mic.read()
    assert chunk.dtype == np.int16 and chunk[:3].tolist() == [0, 1, 2]
    with pytest.raises(EdgeemoError, match="stopped delivering audio"):
        mic.read()  # the fake device is gone
    mic.close()
    assert state.stream.closed and state.terminated == 1


@pytest.mark.parametrize("device, match", [(0, "no input device with that index"), ("webcam", "no input device")])
def test_pyaudio_unknown_device_lists_the_inputs(device, match):
    module, state = fake_pyaudio(DEVICES)
    with pytest.raises(EdgeemoError, match=match) as exc:
        PyAudioMicrophone(device, pyaudio_module=module).open()
    assert "1: USB PnP Sound Device" in str(exc.value) and state.terminated == 1


def test_pyaudio_open_failure_names_the_microphone():
    module, _ = fake_pyaudio(DEVICES, open_error="Invalid sample rate")
    with pytest.raises(EdgeemoError, match="microphone 1.*16000 Hz.*Invalid sample rate"):
        PyAudioMicrophone(1, pyaudio_module=module).open()
