"""``edgeemo bench MODEL --data DIR --detect``: face models scored through the camera path.

Full-frame labelled photos go through the daemon's own detection and crop
(``edgeemo.face_detect.find_face``, with the detector settings the daemon would use), then
through each model's own preprocessing. A photo where no face is found counts as wrong in
``accuracy`` and in each class's recall, and is counted in ``no_face``.

``DIR`` holds class sub-folders (``DIR/<label>/*.jpg``) or a ``labels.csv`` with ``path`` and
``label`` columns (paths relative to ``DIR``; other columns are ignored).
"""

from __future__ import annotations

import csv
import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeemo.bench import (
    BenchReport,
    _measured,
    _percentiles,
    _status_mb,
    add_agreement,
    available_cores,
    model_labels,
    reset_peak_rss,
    time_preprocess,
)
from edgeemo.errors import EdgeemoError
from edgeemo.face import FacePreprocessing, preprocess_faces
from edgeemo.face_datasets import read_image_color
from edgeemo.face_detect import Box, DetectorSettings, FaceDetector, find_face, make_detector
from edgeemo.face_index import IMAGE_SUFFIXES, LABELS_CSV
from edgeemo.labels import EMOTIONS, UnknownLabelError, index_of, to_canonical
from edgeemo.metrics import classification_report
from edgeemo.predict import open_emotion_model


@dataclass
class Photos:
    """Labelled full-frame photos: file paths and EMOTIONS indices."""

    root: Path
    paths: list[Path]
    labels: np.ndarray
    excluded: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(EMOTIONS))
        return {name: int(c) for name, c in zip(EMOTIONS, counts, strict=True)}


def _canonical(dataset: str, raw: str, where: str, source: Path) -> int | None:
    try:
        name = to_canonical(dataset, raw)
    except (UnknownLabelError, KeyError):
        raise EdgeemoError(f"{where}: unknown label {raw!r} (labels: {', '.join(EMOTIONS)})", source) from None
    return None if name is None else index_of(name)


def load_photos(root: str | Path, dataset: str = "fer2013", limit_per_class: int | None = None) -> Photos:
    """Read ``root/labels.csv`` (``path``, ``label``) if it exists, else ``root/<label>/*.<img>``.

    ``dataset`` names the label map (``fer2013``: the canonical names; ``ckplus``: CK+ folder names).
    A row naming a missing file or an unknown label is an error naming the row; images are
    decoded later, one at a time.
    """
    root = Path(root)
    if not root.is_dir():
        raise EdgeemoError("not a folder (expected <label>/ sub-folders or a labels.csv)", root)
    paths: list[Path] = []
    labels: list[int] = []
    excluded: dict[str, int] = {}
    table = root / LABELS_CSV
    if table.is_file():
        try:
            with table.open(newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                columns = [c.strip() for c in reader.fieldnames or []]
                if "path" not in columns or "label" not in columns:
                    raise EdgeemoError(f"expected 'path' and 'label' columns, got {columns}", table)
                for line_no, row in enumerate(reader, start=2):
                    row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
                    if not row["path"] and not row["label"]:
                        continue
                    path = root / row["path"]
                    if not row["path"] or not path.is_file():
                        raise EdgeemoError(f"line {line_no}: no such image file {row['path']!r}", table)
                    label = _canonical(dataset, row["label"], f"line {line_no}", table)
                    if label is None:
                        excluded[row["label"]] = excluded.get(row["label"], 0) + 1
                        continue
                    paths.append(path)
                    labels.append(label)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise EdgeemoError(f"cannot read CSV ({exc})", table) from None
    else:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not folders:
            raise EdgeemoError(f"no {LABELS_CSV} and no label folders inside (labels: {', '.join(EMOTIONS)})", root)
        for folder in folders:
            label = _canonical(dataset, folder.name, "label folder", folder)
            files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if label is None:
                excluded[folder.name] = len(files)
                continue
            paths += files
            labels += [label] * len(files)
    y = np.array(labels, np.int64)
    if limit_per_class is not None:
        keep = np.concatenate([np.flatnonzero(y == c)[:limit_per_class] for c in range(len(EMOTIONS))])
        keep.sort()
        paths, y = [paths[i] for i in keep], y[keep]
    if not paths:
        raise EdgeemoError("no labelled images found", root)
    return Photos(root, paths, y, excluded)


@dataclass
class Crops:
    """What the camera path found in each photo: the first face's box and crop, or None."""

    boxes: list[Box | None]
    crops: list[np.ndarray | None]
    faces_found: list[int]  # how many faces the detector returned per photo
    detect_ms: np.ndarray  # detection + crop time per photo (decoding not included)

    @property
    def found(self) -> np.ndarray:
        return np.array([c is not None for c in self.crops], bool)


def camera_crops(images: Sequence[str | Path | np.ndarray], settings: DetectorSettings | None = None,
                 detector: FaceDetector | None = None) -> Crops:
    """Run THE detect -> crop (``find_face``) on each photo (a file path or a decoded image)."""
    s = settings or DetectorSettings()
    det = detector or make_detector(s)
    boxes: list[Box | None] = []
    crops: list[np.ndarray | None] = []
    counts: list[int] = []
    ms: list[float] = []
    for item in images:
        frame = read_image_color(item) if isinstance(item, str | Path) else item
        t0 = time.perf_counter()
        found, crop = find_face(frame, det, s)
        ms.append((time.perf_counter() - t0) * 1e3)
        counts.append(len(found))
        boxes.append(found[0] if crop is not None else None)
        crops.append(crop)
    return Crops(boxes, crops, counts, np.array(ms))


def score_through_camera(probs: np.ndarray, found: np.ndarray, y: np.ndarray, canonical: np.ndarray) -> dict:
    """Accuracy, macro-F1, UAR, per-class figures and a 7x7 confusion matrix over ALL photos:
    a photo without a face counts as wrong (``no_face`` per class says how many)."""
    no_face = len(EMOTIONS)
    y_pred = np.full(len(y), no_face, np.int64)
    y_pred[found] = canonical[probs.argmax(axis=1)]
    report = classification_report(y, y_pred, [*EMOTIONS, "no_face"])
    cm = np.array(report["confusion_matrix"])
    report["per_class"] = {k: v for k, v in report["per_class"].items() if k != "no_face"}
    for i, name in enumerate(EMOTIONS):
        report["per_class"][name]["no_face"] = int(cm[i, no_face])
    report["confusion_matrix"] = cm[: len(EMOTIONS), : len(EMOTIONS)].tolist()
    report["y_pred"] = y_pred
    return report


def run_detect_bench(
    models: Sequence[str | Path],
    data: str | Path,
    settings: DetectorSettings | None = None,
    dataset: str = "fer2013",
    runs: int = 200,
    warmup: int = 20,
    threads: int | None = None,
    limit_per_class: int | None = None,
    backend: str = "auto",
    batch_size: int = 64,
    progress: Callable[[str], None] | None = None,
) -> BenchReport:
    """Benchmark face models on full-frame labelled photos through the daemon's detect -> crop path."""
    if not models:
        raise EdgeemoError("no models given")
    if runs < 1 or warmup < 0 or batch_size < 1:
        raise EdgeemoError("--runs and --batch-size must be >= 1 and --warmup >= 0")
    say = progress or (lambda _msg: None)
    s = settings or DetectorSettings()
    threads = threads or available_cores()
    opened = [open_emotion_model(m, backend=backend, threads=threads, task="face") for m in models]
    labels = model_labels(opened)
    specs = [m.preprocessing for m in opened]
    for m in opened:
        for note in m.notes:
            say(f"note: {note}")
    del opened
    gc.collect()

    photos = load_photos(data, dataset=dataset, limit_per_class=limit_per_class)
    say(f"{photos.root}: {len(photos)} photos; detecting faces ({s.detector}) ...")
    found_crops = camera_crops(photos.paths, s)
    found = found_crops.found
    crops = [c for c in found_crops.crops if c is not None]
    say(f"faces found in {int(found.sum())} of {len(photos)} photos")
    if not crops:
        raise EdgeemoError(f"the {s.detector} detector found no face in any photo", Path(data))
    inputs: dict[FacePreprocessing, tuple[np.ndarray, float]] = {}
    results = []
    for spec_in, label, spec in zip(models, labels, specs, strict=True):
        assert isinstance(spec, FacePreprocessing)
        if spec not in inputs:
            inputs[spec] = (preprocess_faces(crops, spec), time_preprocess(crops[0], spec))
        x, pre_ms = inputs[spec]
        gc.collect()
        scope = "model" if reset_peak_rss() else "process"
        baseline = _status_mb("VmRSS")
        say(f"benchmarking {label} ...")
        model = open_emotion_model(spec_in, backend=backend, threads=threads)
        result = _measured(model, label, x, photos.labels[found], threads, runs, warmup, batch_size, pre_ms, scope,
                           baseline)
        probs = model.predict(x, batch_size=batch_size)
        report = score_through_camera(probs, found, photos.labels, model.canonical_index)
        result.n, result.accuracy, result.macro_f1, result.uar = (report["n"], report["accuracy"],
                                                                   report["macro_f1"], report["uar"])
        result.per_class, result.confusion_matrix = report["per_class"], report["confusion_matrix"]
        result.predictions = report["y_pred"]
        results.append(result)
        del model
    add_agreement(results)
    no_face = int((~found).sum())
    data_info = {
        "path": str(data),
        "dataset": "photos through the camera path (detect -> crop -> model)",
        "split": "labels.csv" if (Path(data) / LABELS_CSV).is_file() else "label folders",
        "n": len(photos),
        "no_face": no_face,
        "class_counts": photos.class_counts(),
        "excluded": photos.excluded,
        "limit_per_class": limit_per_class,
        "detector": {**vars(s), "detect_ms": _percentiles(found_crops.detect_ms),
                     "what": "detection on the frame shrunk to detect_width, then the crop (decoding excluded)"},
    }
    return BenchReport(data=data_info, models=results)
