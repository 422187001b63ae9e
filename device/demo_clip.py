"""The built-in clip ``edgeemo run --demo`` replays: no camera, microphone, dataset or ../shared.

Video: the Grace Hopper portrait of matplotlib's sample data (``default_photo``), panned and
zoomed into 640x480 frames made on the fly (nothing is held in memory but the photo); for
the last ``no_face_s`` seconds the photo is turned on its side, so the frontal-face
detector finds no face and the face modality reports "no face".

Audio: a vowel-like signal the project synthesises (a glottal buzz with a wandering pitch
through formant resonators, syllable by syllable), with silence around it, so the voice
modality hears "speech" and then reports "no speech". It is not a recording of anyone.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from edgeemo.audio import SAMPLE_RATE, float_to_pcm16
from edgeemo.device.demo import default_photo
from edgeemo.device.microphone import AudioReplay
from edgeemo.device.sources import PacedReplay
from edgeemo.face_datasets import read_image_color

# (F1, F2, F3) in Hz of a few vowels: a, i, u, e, o
VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480), (570, 840, 2410))


class DemoCamera(PacedReplay):
    """``seconds`` of 640x480 frames at ``fps`` from the shipped portrait (made on the fly)."""

    def __init__(self, seconds: float = 8.0, fps: float = 15.0, no_face_s: float = 2.0, realtime: bool = True,
                 size: tuple[int, int] = (640, 480), loop: bool = False) -> None:
        super().__init__("demo camera (grace_hopper.jpg)", fps if realtime else 0.0, loop=loop)
        self.photo = read_image_color(default_photo())
        self.n = max(1, round(seconds * fps))
        self.n_face = max(0, self.n - round(no_face_s * fps))
        self.size = size
        self.clip_fps = fps

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i``: a zoom (1.0-1.2x) and slow pan around the face; on its side after n_face frames."""
        img = self.photo
        h, w = img.shape[:2]
        t = i / self.clip_fps
        zoom = 1.1 + 0.1 * math.sin(2 * math.pi * t / 4.0)
        out_w, out_h = self.size
        cw = min(w, h * out_w / out_h) / zoom
        ch = cw * out_h / out_w
        cx = w / 2 + 0.05 * w * math.sin(2 * math.pi * t / 3.0)
        cy = 0.36 * h + 0.03 * h * math.cos(2 * math.pi * t / 5.0)  # the face sits in the upper half
        x0 = int(np.clip(cx - cw / 2, 0, w - cw))
        y0 = int(np.clip(cy - ch / 2, 0, h - ch))
        crop = img[y0 : y0 + int(ch), x0 : x0 + int(cw)]
        frame = cv2.resize(crop, self.size, interpolation=cv2.INTER_LINEAR)
        if i >= self.n_face:
            frame = cv2.resize(cv2.rotate(frame, cv2.ROTATE_90_CLOCKWISE), self.size)
        return frame

    def _frames(self) -> Any:
        return (self.frame(i) for i in range(self.n))


def sawtooth(phase: np.ndarray, width: float) -> np.ndarray:
    """Periodic ramp in [-1, 1]: up for ``width`` of each 2*pi period, then down (scipy.signal.sawtooth)."""
    x = np.mod(phase, 2 * np.pi) / (2 * np.pi)
    return np.where(x < width, -1 + 2 * x / width, 1 - 2 * (x - width) / (1 - width))


def resonator(x: np.ndarray, freq: float, bandwidth: float) -> np.ndarray:
    """Two-pole resonator ``(1 - r) / (1 - 2 r cos(w) z^-1 + r^2 z^-2)`` from rest over ``x``: its
    impulse response convolved with ``x``, the same numbers as scipy.signal.lfilter up to rounding
    (numpy only: importing scipy.signal adds 76 MiB to the daemon's memory)."""
    r, w = math.exp(-math.pi * bandwidth / SAMPLE_RATE), 2 * math.pi * freq / SAMPLE_RATE
    k = np.arange(len(x))
    impulse = (1 - r) * r**k * np.sin((k + 1) * w) / math.sin(w)
    return np.convolve(x, impulse)[: len(x)]


def synthetic_voice(seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """Float32 samples at 16 kHz of vowel-like syllables (about 4 per second)."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    f0 = 160 + 40 * np.sin(2 * np.pi * 0.6 * t) + 15 * np.sin(2 * np.pi * 3.1 * t)
    buzz = sawtooth(2 * np.pi * np.cumsum(f0) / SAMPLE_RATE, width=0.8) + 0.05 * rng.standard_normal(n)
    out = np.zeros(n)
    syllable = round(0.25 * SAMPLE_RATE)
    for k, start in enumerate(range(0, n, syllable)):
        seg = buzz[start : start + syllable]
        for f, bw in zip(VOWELS[k % len(VOWELS)], (80, 100, 120), strict=True):  # cascade of formant resonators
            seg = resonator(seg, f, bw)
        out[start : start + len(seg)] = seg * np.hanning(len(seg)) ** 0.5
    return (0.5 * out / np.max(np.abs(out))).astype(np.float32)


def demo_audio(lead_s: float = 0.5, speech_s: float = 4.0, tail_s: float = 3.5) -> np.ndarray:
    """int16 PCM: silence, synthetic speech, silence (long enough for a window with no speech)."""
    silence = np.zeros(round(lead_s * SAMPLE_RATE), np.float32)
    tail = np.zeros(round(tail_s * SAMPLE_RATE), np.float32)
    return float_to_pcm16(np.concatenate([silence, synthetic_voice(speech_s), tail]))


def demo_sources(seconds: float = 8.0, realtime: bool = True, loop: bool = False) -> tuple[DemoCamera, AudioReplay]:
    """The demo's camera and microphone, both ``seconds`` long (``loop``: replayed until stopped)."""
    speech_s = max(0.5, seconds - 4.0)
    pcm = demo_audio(0.5, speech_s, max(0.0, seconds - 0.5 - speech_s))
    return (DemoCamera(seconds, realtime=realtime, loop=loop),
            AudioReplay(pcm, chunk_s=0.1, realtime=realtime, loop=loop, name="demo microphone (synthetic voice)"))
