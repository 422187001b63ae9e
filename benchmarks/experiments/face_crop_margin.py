"""Which crop margin the camera path should use: a face model on the Taiwanese development photos,
cropped around the detector's box with each margin, and each crop also shifted up and down.

    nice -n 10 .venv/bin/python benchmarks/experiments/face_crop_margin.py [--model face] \\
        [--detectors blazeface haar] [--margins -0.05 0 0.05 0.1 0.15 0.2]

The detection is the daemon's (``detect_faces`` at its default width); only the crop's margin
(``crop_face``) and a vertical shift of the box (a fraction of its height: -0.05 .. +0.05, to show
how much of a difference is noise) change. A photo without a face counts as wrong. The development
set chooses; it is never trained on. Writes ``face_crop_margin.{md,json}`` to ``--out-dir``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgeemo.camera_bench import load_photos, read_image_color
from edgeemo.face import preprocess_faces
from edgeemo.face_detect import (
    DEFAULT_FACE_MARGIN,
    DETECTORS,
    Box,
    DetectorSettings,
    crop_face,
    detect_faces,
    make_detector,
)
from edgeemo.labels import EMOTIONS
from edgeemo.manifest import sha256_of
from edgeemo.predict import open_face_model

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "taiwanese-faces"
SHIFTS = (-0.05, -0.025, 0.0, 0.025, 0.05)


def score(model, frames: list[np.ndarray], boxes: list[Box | None], y: np.ndarray, margin: float,
          shift: float) -> tuple[float, dict[str, float]]:
    """Accuracy over all photos (no face = wrong) and recall per class for one margin and shift."""
    found = np.array([b is not None for b in boxes])
    crops = [crop_face(f, Box(b.x, b.y + round(shift * b.h), b.w, b.h), margin)
             for f, b in zip(frames, boxes, strict=True) if b is not None]
    pred = np.full(len(y), -1)
    probs = model.predict(preprocess_faces(crops, model.preprocessing))
    pred[found] = np.asarray(model.canonical_index)[probs.argmax(axis=1)]
    recall = {EMOTIONS[c]: float((pred[y == c] == c).mean()) for c in range(len(EMOTIONS)) if (y == c).any()}
    return float((pred == y).mean()), recall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="face", help="face model file or shipped name (default: face, int8)")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--detectors", nargs="+", default=list(DETECTORS), choices=DETECTORS)
    parser.add_argument("--margins", nargs="+", type=float, default=[-0.05, 0.0, 0.05, 0.1, 0.15, 0.2])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results" / "experiments")
    args = parser.parse_args()

    photos = load_photos(args.data)
    frames = [read_image_color(p) for p in photos.paths]
    model = open_face_model(args.model)
    result: dict = {"model": str(model.path), "models_sha256": {model.path.name: sha256_of(model.path)},
                    "data": str(args.data), "photos": len(photos), "shifts": list(SHIFTS),
                    "default_margin": DEFAULT_FACE_MARGIN, "detectors": {}}
    lines = ["# Crop margin on the Taiwanese development photos (camera path)", "",
             f"Model `{model.path.name}`; {len(photos)} photos; a photo without a face counts as wrong. "
             "Each cell: accuracy with the box shifted by "
             + ", ".join(f"{s:+.3f}" for s in SHIFTS) + " of its height; the mean of the five decides "
             "(one shift alone moves accuracy by a few points: 368 photos). "
             f"Default now: margin {DEFAULT_FACE_MARGIN}.", "",
             "Regenerate: `nice -n 10 .venv/bin/python benchmarks/experiments/face_crop_margin.py`", ""]
    for name in args.detectors:
        detector = make_detector(DetectorSettings(detector=name))
        boxes = [(found[0] if (found := detect_faces(f, detector, DetectorSettings().detect_width)) else None)
                 for f in frames]
        rows = {}
        lines += [f"## {name}", "", "| margin | " + " | ".join(f"{s:+.3f}" for s in SHIFTS)
                  + " | mean | recall per class (no shift) |", "|" + "---|" * (len(SHIFTS) + 3)]
        for margin in args.margins:
            accs, recall = [], {}
            for shift in SHIFTS:
                acc, rec = score(model, frames, boxes, photos.labels, margin, shift)
                accs.append(acc)
                recall = rec if shift == 0.0 else recall
            rows[str(margin)] = {"accuracy": accs, "mean": float(np.mean(accs)), "recall": recall}
            lines.append(f"| {margin:g} | " + " | ".join(f"{a:.1%}" for a in accs) + f" | **{np.mean(accs):.1%}** | "
                         + ", ".join(f"{k} {v:.0%}" for k, v in recall.items()) + " |")
        result["detectors"][name] = {"no_face": int(sum(b is None for b in boxes)), "margins": rows}
        lines += ["", f"No face found: {result['detectors'][name]['no_face']} photos.", ""]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "face_crop_margin.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out_dir / "face_crop_margin.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
