"""``edgeemo demo``: the shipped face models on a photo, with no camera, microphone or dataset.

The default photo is the Grace Hopper portrait that matplotlib ships in its sample
data (``mpl-data/sample_data/grace_hopper.jpg``); any photo can be given instead.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeemo.errors import EdgeemoError
from edgeemo.face import FacePreprocessing, preprocess_face
from edgeemo.face_datasets import read_image_color
from edgeemo.face_detect import HaarFaceDetector, crop_face
from edgeemo.runtime import open_model
from edgeemo.shipped import resolve_model


def default_photo() -> Path:
    """The Grace Hopper portrait matplotlib ships, found without importing matplotlib (19 MiB)."""
    spec = importlib.util.find_spec("matplotlib")
    photo = Path(spec.origin).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg" if spec and spec.origin else None
    if photo is None or not photo.is_file():
        raise EdgeemoError(
            "the built-in demo photo comes with matplotlib: pip install 'edgeemo[plots]' or pass --image"
        )
    return photo


def run_demo(
    image: Path | None = None,
    models: tuple[str, ...] = ("face", "face-float"),
    threads: int | None = None,
    runs: int = 50,
) -> dict[str, Any]:
    """Detect the largest face in the photo and run each model on it; returns a JSON-ready result."""
    photo = image or default_photo()
    frame = read_image_color(photo)
    boxes = HaarFaceDetector().detect(frame)
    if not boxes:
        raise EdgeemoError("no face found in the photo", photo)
    box = boxes[0]
    crop = crop_face(frame, box)
    results = []
    for name in models:
        runner = open_model(resolve_model(name), threads=threads)
        manifest = runner.manifest
        pre = FacePreprocessing.from_dict(manifest.preprocessing) if manifest else FacePreprocessing()
        labels = manifest.labels if manifest else None
        x = preprocess_face(crop, pre)[None]
        runner.predict(x)  # warm-up
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            probs = runner.predict(x)[0]
            times.append((time.perf_counter() - t) * 1000)
        order = np.argsort(probs)[::-1]
        results.append(
            {
                "model": name,
                "file": runner.path.name,
                "backend": runner.backend,
                "quantization": manifest.quantization.get("mode") if manifest else None,
                "label": labels[order[0]] if labels else int(order[0]),
                "probs": {(labels[i] if labels else str(i)): round(float(probs[i]), 4) for i in range(len(probs))},
                "latency_ms_p50": round(float(np.median(times)), 3),
            }
        )
    return {
        "image": str(photo),
        "face_box": [box.x, box.y, box.w, box.h],
        "faces_found": len(boxes),
        "results": results,
    }
