"""Open a face or voice model together with its preprocessing, and classify face images
or audio clips with it.

Shared by ``edgeemo predict``, ``edgeemo bench`` and the device: the model is opened
through ``open_model`` (manifest and sha256 checked) and its preprocessing is rebuilt
from the manifest, so every caller feeds the model exactly what it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeemo.errors import EdgeemoError
from edgeemo.face import DEFAULT_FACE, FacePreprocessing, preprocess_faces
from edgeemo.face_datasets import read_image, read_image_color
from edgeemo.face_detect import DetectorSettings, crop_face, detect_faces, make_detector
from edgeemo.labels import EMOTIONS
from edgeemo.runtime import Runner, open_model
from edgeemo.shipped import resolve_model
from edgeemo.voice import VoicePreprocessing, preprocess_file

if TYPE_CHECKING:
    from rich.table import Table

TASKS = ("face", "voice")


@dataclass
class EmotionModel:
    """An opened model: runner, task, preprocessing, labels, and notes for the user."""

    spec: str  # what the user typed (path or shipped name)
    runner: Runner
    preprocessing: FacePreprocessing | VoicePreprocessing
    labels: list[str]  # output index i means labels[i]
    notes: list[str] = field(default_factory=list)
    task: str = "face"

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one preprocessed input (no batch axis)."""
        return self.preprocessing.input_shape

    @property
    def path(self) -> Path:
        return self.runner.path

    @property
    def format(self) -> str:
        return self.runner.path.suffix.lower().lstrip(".")

    @property
    def quantization(self) -> str:
        """The manifest's quantisation mode, else a guess from the input dtype."""
        manifest = self.runner.manifest
        if manifest is not None and manifest.quantization.get("mode"):
            return str(manifest.quantization["mode"])
        if self.format == "keras":
            return "none"
        dtype = self.runner.input.dtype
        return dtype if dtype in ("int8", "uint8") else "unknown (no manifest)"

    @property
    def canonical_index(self) -> np.ndarray:
        """Model output index -> index in EMOTIONS (for scoring against dataset labels)."""
        return np.array([EMOTIONS.index(label) for label in self.labels], np.int64)

    def predict(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Probabilities of preprocessed inputs, in batches the model takes (pads a fixed batch)."""
        fixed = self.runner.input.shape[0]
        step = fixed if fixed is not None else max(1, batch_size)
        out = []
        for start in range(0, len(x), step):
            chunk = x[start : start + step]
            n = len(chunk)
            if n < step and len(x) > step:  # pad the last batch: no re-allocation for it
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], step - n, axis=0)])
            elif fixed is not None and n < fixed:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], fixed - n, axis=0)])
            out.append(self.runner.predict(chunk)[:n])
        if not out:
            return np.zeros((0, len(self.labels)), np.float32)
        return np.concatenate(out).astype(np.float32, copy=False)


def open_face_model(spec: str | Path, backend: str = "auto", threads: int | None = None) -> EmotionModel:
    """Open a face model (see ``open_emotion_model``); any other task is an error."""
    return open_emotion_model(spec, backend, threads, task="face")


def open_voice_model(spec: str | Path, backend: str = "auto", threads: int | None = None) -> EmotionModel:
    """Open a voice model (see ``open_emotion_model``); any other task is an error."""
    return open_emotion_model(spec, backend, threads, task="voice")


def open_emotion_model(
    spec: str | Path, backend: str = "auto", threads: int | None = None, task: str | None = None
) -> EmotionModel:
    """Open a model by path or shipped name, with the preprocessing from its manifest.

    ``task`` (face/voice) insists on one kind. A model without a manifest is accepted only
    as a face model whose input is the default (48, 48, 1): the default FacePreprocessing
    and the canonical labels are then assumed (and noted). A voice model always needs its
    manifest (it holds the standardisation statistics).
    """
    path = resolve_model(spec)
    runner = open_model(path, backend=backend, threads=threads)
    per_sample = tuple(runner.input.shape[1:])
    notes: list[str] = []
    manifest = runner.manifest
    if manifest is None:
        default_shape = DEFAULT_FACE.input_shape
        if task == "voice":
            raise EdgeemoError(
                f"voice model has no manifest ({path.name}.json): its MFCC front end and statistics are unknown",
                path,
            )
        if per_sample != default_shape:
            raise EdgeemoError(
                f"model has no manifest ({path.name}.json) and its input {per_sample} is not the "
                f"default face input {default_shape}: cannot tell how to preprocess; "
                "export it with `edgeemo export` to write a manifest",
                path,
            )
        preprocessing: FacePreprocessing | VoicePreprocessing = DEFAULT_FACE
        labels = list(EMOTIONS)
        model_task = "face"
        notes.append(f"{path}: no manifest; assuming the default 48x48 gray face preprocessing and labels")
    else:
        model_task = manifest.task
        if model_task not in TASKS:
            raise EdgeemoError(f"manifest task {model_task!r} is not face or voice", path)
        if task is not None and model_task != task:
            raise EdgeemoError(f"is a {model_task!r} model; this command takes {task} models", path)
        try:
            if model_task == "face":
                preprocessing = FacePreprocessing.from_dict(manifest.preprocessing)
            else:
                preprocessing = VoicePreprocessing.from_dict(manifest.preprocessing)
            expected: tuple[int, ...] = preprocessing.input_shape
        except (EdgeemoError, TypeError) as exc:
            raise EdgeemoError(f"manifest preprocessing is invalid ({exc})", path) from None
        labels = list(manifest.labels)
        if per_sample != expected:
            raise EdgeemoError(
                f"unexpected input shape {per_sample}: its manifest preprocessing makes {expected}",
                path,
            )
    unknown = [label for label in labels if label not in EMOTIONS]
    if unknown:
        raise EdgeemoError(f"labels {unknown} are not canonical emotions {list(EMOTIONS)}", path)
    classes = runner.output.shape[-1] if runner.output.shape else None
    if classes is not None and classes != len(labels):
        raise EdgeemoError(f"model has {classes} outputs but {len(labels)} labels", path)
    return EmotionModel(str(spec), runner, preprocessing, labels, notes, model_task)


def _result(probs: np.ndarray, labels: list[str], top: int) -> dict[str, Any]:
    order = np.argsort(-probs)
    return {
        "label": labels[int(order[0])],
        "score": float(probs[order[0]]),
        "top": [(labels[int(i)], float(probs[i])) for i in order[: max(1, top)]],
        "probs": {label: float(v) for label, v in zip(labels, probs, strict=True)},
    }


def predict_clips(model: EmotionModel, clips: Sequence[str | Path], top: int = 3) -> list[dict[str, Any]]:
    """Classify audio files with a voice model; every file is decoded first.

    A clip without speech gets ``label`` "no speech", ``score`` 0 and empty ``probs``:
    silence is reported, never guessed.
    """
    pre = model.preprocessing
    assert isinstance(pre, VoicePreprocessing)
    inputs = [preprocess_file(Path(p), pre) for p in clips]
    speech = [x for x in inputs if x is not None]
    probs = iter(model.predict(np.stack(speech)) if speech else [])
    results = []
    for path, x in zip(clips, inputs, strict=True):
        if x is None:
            results.append({"clip": str(path), "label": "no speech", "score": 0.0, "top": [], "probs": {}})
        else:
            results.append({"clip": str(path), **_result(next(probs), model.labels, top)})
    return results


def predict_images(model: EmotionModel, images: Sequence[str | Path], top: int = 3) -> list[dict[str, Any]]:
    """Classify face image files; every file is decoded first, so a bad one fails before any output.

    Returns one dict per image: image, label, score, top [(label, p)...], probs {label: p}.
    """
    faces = [read_image(Path(p)) for p in images]
    probs = model.predict(preprocess_faces(faces, model.preprocessing))
    return [{"image": str(path), **_result(p, model.labels, top)} for path, p in zip(images, probs, strict=True)]


def predict_photos(model: EmotionModel, images: Sequence[str | Path], settings: DetectorSettings | None = None,
                   top: int = 3) -> list[dict[str, Any]]:
    """Find the faces in whole photos with the daemon's detector and crop (``edgeemo.face_detect``),
    and classify each face; every file is decoded first, so a bad one fails before any output.

    Returns one dict per image: image, faces (the number found), label and score of the first face
    (the one the daemon would use; "no face" and 0 when there is none) and ``detections``: one
    {box [x, y, w, h], detector_score, label, score, top, probs} per face, in the detector's order.
    """
    s = settings or DetectorSettings()
    frames = [read_image_color(Path(p)) for p in images]
    detector = make_detector(s)
    results = []
    for path, frame in zip(images, frames, strict=True):
        boxes = detect_faces(frame, detector, s.detect_width)
        crops = [crop_face(frame, b, s.face_margin) for b in boxes]
        kept = [(b, c) for b, c in zip(boxes, crops, strict=True) if c.size]
        probs = model.predict(preprocess_faces([c for _, c in kept], model.preprocessing)) if kept else []
        detections = [{"box": [b.x, b.y, b.w, b.h], "detector_score": round(b.score, 4),
                       **_result(p, model.labels, top)} for (b, _), p in zip(kept, probs, strict=True)]
        first = detections[0] if detections else {"label": "no face", "score": 0.0, "top": [], "probs": {}}
        results.append({"image": str(path), "faces": len(detections), "label": first["label"],
                        "score": first["score"], "top": first["top"], "probs": first["probs"],
                        "detections": detections})
    return results


def predictions_table(model: EmotionModel, results: list[dict[str, Any]], top: int = 3) -> Table:
    """``predict_images`` / ``predict_clips`` results as the table ``edgeemo predict`` prints."""
    from rich.table import Table

    key = "image" if model.task == "face" else "clip"
    table = Table(title=f"{model.spec} ({model.quantization}, {model.runner.backend})")
    for col in (key, "emotion", "p", f"top {top}"):
        table.add_column(col)
    for r in results:
        table.add_row(r[key], r["label"], f"{r['score']:.2f}", ", ".join(f"{k} {v:.2f}" for k, v in r["top"]))
    return table
