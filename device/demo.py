"""``edgeemo demo``: the shipped face models on a photo, with no camera, microphone or dataset.

The default photo is the public-domain portrait of Grace Hopper in matplotlib's sample data
(``edgeemo[plots]``, which ``make demo`` installs); any photo can be given instead.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from edgeemo.errors import EdgeemoError
from edgeemo.face import FacePreprocessing, preprocess_face
from edgeemo.face_datasets import read_image_color
from edgeemo.face_detect import HaarFaceDetector, crop_face
from edgeemo.runtime import open_model
from edgeemo.shipped import resolve_model


def default_photo() -> Path:
    """The public-domain portrait of Grace Hopper that matplotlib installs with its sample data, found
    without importing matplotlib (the daemon keeps it out of memory)."""
    spec = importlib.util.find_spec("matplotlib")
    folders = spec.submodule_search_locations if spec is not None else None
    photo = Path(folders[0]) / "mpl-data" / "sample_data" / "grace_hopper.jpg" if folders else None
    if photo is None or not photo.is_file():
        raise EdgeemoError("the demo photo comes with matplotlib's sample data: pip install 'edgeemo[plots]' "
                           "(make demo does) or pass --image", photo)
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


def demo_table(result: dict[str, Any]) -> Table:
    """``run_demo``'s result as the table ``edgeemo demo`` prints."""
    table = Table(title=f"{result['image']}  (face at {result['face_box']}, {result['faces_found']} found)")
    for col in ("model", "backend", "quant", "label", "top-3", "p50 ms"):
        table.add_column(col)
    for r in result["results"]:
        top = sorted(r["probs"].items(), key=lambda kv: -kv[1])[:3]
        table.add_row(r["model"], r["backend"], str(r["quantization"]), r["label"],
                      ", ".join(f"{k} {v:.2f}" for k, v in top), f"{r['latency_ms_p50']:.2f}")
    return table
