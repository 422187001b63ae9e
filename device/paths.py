"""One input to probabilities: ``FacePath`` (frame -> detect, crop, preprocess, model) and
``VoicePath`` (PCM chunks -> a window every hop -> model), and ``make_detector``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from edgeemo.audio import SAMPLE_RATE, PcmStream
from edgeemo.errors import EdgeemoError
from edgeemo.face import FacePreprocessing, preprocess_face
from edgeemo.face_detect import DEFAULT_FACE_MARGIN, Box, FaceDetector, crop_face, detect_faces
from edgeemo.face_detect import make_detector as make_face_detector
from edgeemo.predict import EmotionModel
from edgeemo.voice import VoicePreprocessing, preprocess_clip

if TYPE_CHECKING:
    from edgeemo.device.pipeline import PipelineSettings

def make_detector(settings: PipelineSettings, threads: int | None = 1) -> FaceDetector:
    """The face detector the ``[pipeline]`` settings name (see ``edgeemo.face_detect``)."""
    return make_face_detector(settings.detection(), threads=threads)


class FacePath:
    """Frame -> probabilities of the first face the detector returns (BlazeFace: the most confident;
    Haar: the largest), in model label order, or None when there is no face.

    ``boxes`` brings your own detections (full-frame pixel boxes, the first is used); otherwise
    the detector (default: BlazeFace) runs on a copy shrunk to ``detect_width``, on every
    ``detect_every``-th frame, and the frames in between reuse its boxes (a face moves little in
    1/15 s). Detection and crop are ``edgeemo.face_detect``'s, the ones ``edgeemo bench --detect`` scores.
    """

    def __init__(self, model: EmotionModel, detector: FaceDetector | None = None, margin: float = DEFAULT_FACE_MARGIN,
                 detect_width: int = 320, detect_every: int = 1) -> None:
        if not isinstance(model.preprocessing, FacePreprocessing):
            raise EdgeemoError(f"{model.spec}: is a {model.task} model; the camera needs a face model", model.path)
        self.model = model
        self.detector = detector or make_face_detector()
        self.margin, self.detect_width, self.detect_every = margin, detect_width, max(1, detect_every)
        self._frame = 0
        self._boxes: list[Box] = []

    def reset(self) -> None:
        """After a gap in the frames (camera reopened): detect again on the next frame."""
        self._frame = 0
        self._boxes = []

    def detect(self, frame: np.ndarray) -> list[Box]:
        """Face boxes in full-frame pixels, in the detector's order (the face to use first)."""
        return detect_faces(frame, self.detector, self.detect_width)

    def __call__(self, frame: np.ndarray, boxes: Sequence[Box] | None = None) -> np.ndarray | None:
        if boxes is None:
            if self._frame % self.detect_every == 0:
                self._boxes = self.detect(frame)
            self._frame += 1
            found = self._boxes
        else:
            found = list(boxes)
        if not found:
            return None
        crop = crop_face(frame, found[0], self.margin)
        if crop.size == 0:
            return None
        x = preprocess_face(crop, self.model.preprocessing)
        return self.model.predict(x[None])[0]


class VoicePath:
    """PCM chunks in; every ``hop_s`` seconds of audio, the latest window's probabilities (model
    label order) or None when the window has no speech (VAD), never a guess.

    A model that adapts to its speaker (manifest ``adaptation``) keeps running statistics of
    the speech heard: each window counts as ``hop_s / window_s`` of a clip (windows overlap),
    and after ``reset_after_silence_s`` seconds without speech (the manifest's, or ``adapt_reset_s``)
    the statistics start again from the training ones, for whoever speaks next. ``adapt=False``
    standardises every window alone."""

    def __init__(self, model: EmotionModel, hop_s: float = 0.5, adapt: bool = True,
                 adapt_reset_s: float | None = None) -> None:
        if not isinstance(model.preprocessing, VoicePreprocessing):
            raise EdgeemoError(f"{model.spec}: is a {model.task} model; the microphone needs a voice model",
                               model.path)
        self.model = model
        self.pre: VoicePreprocessing = model.preprocessing
        self.stream = PcmStream(self.pre.features)
        self.hop = max(1, round(hop_s * SAMPLE_RATE))
        self._since = 0
        self.speaker = self.pre.new_speaker() if adapt else None
        self.adapt_reset_s = adapt_reset_s if adapt_reset_s is not None else (
            self.pre.adaptation.reset_after_silence_s if self.pre.adaptation else 0.0)
        self._weight = min(1.0, self.hop / self.pre.features.window_samples)
        self._silent_samples = 0

    def reset(self) -> None:
        """After a gap in the audio (overflow, microphone reopened): the next window holds only new audio.
        The speaker statistics stay: the same people are still in the room."""
        self.stream.reset()
        self._since = 0

    def push(self, chunk: np.ndarray) -> list[np.ndarray | None]:
        """Add audio; returns one entry per window that became due (usually zero or one)."""
        due = []
        pos = 0
        while pos < len(chunk):  # split at hop boundaries: windows every hop samples whatever the chunk size
            take = min(len(chunk) - pos, self.hop - self._since)
            self.stream.push(chunk[pos : pos + take])
            pos += take
            self._since += take
            if self._since == self.hop:
                self._since = 0
                if self.stream.total_samples >= self.pre.features.window_samples:
                    due.append(self.window())
        return due

    def window(self) -> np.ndarray | None:
        """The model's probabilities for the latest window (``preprocess_clip``, as for a file), None for no speech."""
        samples = self.stream.window()
        x = None if samples is None else preprocess_clip(samples, self.pre, self.speaker, self._weight)
        if self.speaker is not None:
            self._silent_samples = self._silent_samples + self.hop if x is None else 0
            if self._silent_samples >= self.adapt_reset_s * SAMPLE_RATE > 0:
                self.speaker.reset()  # a long silence: whoever speaks next starts from the training statistics
                self._silent_samples = 0
        return None if x is None else self.model.predict(x[None])[0]


