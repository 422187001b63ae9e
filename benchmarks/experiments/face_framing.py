"""Frame the camera crop like the training faces: each detector's box mapped onto the FER2013 framing.

    nice -n 10 .venv/bin/python benchmarks/experiments/face_framing.py [--model face] [--fit 3000]

Fit (FER2013 train faces only): each face upscaled x3 into a 320x240 mid-gray frame, detected
with the daemon's ``detect_faces``; for every face found, the side of the true 48x48 frame over
the box side (scale) and the offset of the true centre from the box centre (dx, dy, in box
sides). The medians are the detector's framing. Scored (issue 27's rule, face_transfer_attempts.md,
sixth section) on the Taiwanese development photos through each detector, default crop against the
framed crop, and on FER2013 PublicTest and the CK+ held-out subjects re-detected on the same
canvas. A photo without a face counts as wrong. Writes ``face_framing.{md,json}`` to ``--out-dir``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from edgeemo.camera_bench import load_photos, read_image_color
from edgeemo.face import preprocess_faces
from edgeemo.face_datasets import load_faces
from edgeemo.face_detect import (
    DETECTORS,
    FRAME_PAD,
    FRAMED_SIDE,
    Box,
    DetectorSettings,
    crop_face,
    detect_faces,
    face_in_frame,
    make_detector,
)
from edgeemo.labels import EMOTIONS
from edgeemo.manifest import sha256_of
from edgeemo.predict import open_face_model
from edgeemo.splits import group_split
from edgeemo.train.options import EXTRA_TEST_FRACTION

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
TRUE = (FRAME_PAD[2], FRAME_PAD[0], FRAMED_SIDE)  # x0, y0, side of the face on the canvas


def on_canvas(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(face_in_frame(image), cv2.COLOR_GRAY2BGR)


def framed_crop(image: np.ndarray, box: Box, framing: tuple[float, float, float]) -> np.ndarray:
    """Square crop of side ``scale * max(w, h)`` centred ``(dx, dy)`` box sides from the box centre."""
    scale, dx, dy = framing
    s = max(box.w, box.h)
    side = max(int(round(scale * s)), 1)
    cx, cy = box.x + box.w / 2 + dx * s, box.y + box.h / 2 + dy * s
    x0, y0 = max(int(round(cx - side / 2)), 0), max(int(round(cy - side / 2)), 0)
    return image[y0:min(y0 + side, image.shape[0]), x0:min(x0 + side, image.shape[1])]


def fit_framing(images: list[np.ndarray], detector, width: int) -> dict:
    x0, y0, side = TRUE
    rows = []
    for im in images:
        boxes = detect_faces(on_canvas(im), detector, width)
        if boxes:
            b = boxes[0]
            s = max(b.w, b.h)
            rows.append((side / s, (x0 + side / 2 - (b.x + b.w / 2)) / s, (y0 + side / 2 - (b.y + b.h / 2)) / s,
                         b.w / b.h))
    a = np.array(rows)
    med = np.median(a, axis=0)
    q = np.percentile(a, [25, 75], axis=0)
    return {"found": len(rows), "of": len(images), "scale": float(med[0]), "dx": float(med[1]), "dy": float(med[2]),
            "box_aspect_w_over_h": float(med[3]), "iqr": {k: [float(q[0, i]), float(q[1, i])]
                                                         for i, k in enumerate(("scale", "dx", "dy", "aspect"))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="face", help="face model file or shipped name (default: face, int8)")
    parser.add_argument("--fit", type=int, default=3000, help="FER2013 train faces the framing is fitted on")
    parser.add_argument("--detectors", nargs="+", default=list(DETECTORS), choices=DETECTORS)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results" / "experiments")
    args = parser.parse_args()

    model = open_face_model(args.model)
    canon = np.asarray(model.canonical_index)
    settings = DetectorSettings()

    def predict(crops: list[np.ndarray]) -> np.ndarray:
        return canon[model.predict(preprocess_faces(crops, model.preprocessing)).argmax(axis=1)]

    train = load_faces(DATA / "fer2013", split="train")
    pick = np.random.default_rng(0).choice(len(train.labels), size=min(args.fit, len(train.labels)), replace=False)
    fit_images = [train.images[i] for i in pick]
    test = load_faces(DATA / "fer2013", split="publictest")
    ck = load_faces(DATA / "ckplus" / "CK+48")
    _, ck_held = group_split(ck.groups, EXTRA_TEST_FRACTION, 0)  # the CK+ subjects train face --extra-train holds out
    canvas_sets = {"fer2013_publictest": (test.images, test.labels),
                   "ckplus_held_out": ([ck.images[i] for i in ck_held], ck.labels[ck_held])}
    photos = load_photos(DATA / "taiwanese-faces")
    frames = [read_image_color(p) for p in photos.paths]

    result: dict = {"model": str(model.path), "models_sha256": {model.path.name: sha256_of(model.path)},
                    "fit_faces": len(fit_images), "default_margin": settings.face_margin, "detectors": {}}
    for name in args.detectors:
        detector = make_detector(DetectorSettings(detector=name))
        t0 = time.perf_counter()
        framing = fit_framing(fit_images, detector, settings.detect_width)
        fit_s = time.perf_counter() - t0
        f = (framing["scale"], framing["dx"], framing["dy"])
        r: dict = {"framing": framing, "fit_seconds": round(fit_s, 1)}
        print(name, json.dumps(framing))

        boxes = [(b[0] if (b := detect_faces(fr, detector, settings.detect_width)) else None) for fr in frames]
        found = np.array([b is not None for b in boxes])
        crops = {"default": lambda fr, b: crop_face(fr, b, settings.face_margin),
                 "framed": lambda fr, b, f=f: framed_crop(fr, b, f)}
        for key, crop in crops.items():
            pred = np.full(len(frames), -1)
            pred[found] = predict([crop(fr, b) for fr, b in zip(frames, boxes, strict=True) if b is not None])
            y = photos.labels
            r[f"taiwanese_{key}"] = {
                "accuracy": float((pred == y).mean()),
                "recall": {EMOTIONS[c]: float((pred[y == c] == c).mean())
                           for c in range(len(EMOTIONS)) if (y == c).any()},
                "no_face": int((~found).sum())}
            r[f"taiwanese_{key}_pred"] = pred.tolist()
        for set_name, (images, labels) in canvas_sets.items():
            ok, plain, framed = [], [], []
            for im in images:
                fr = on_canvas(im)
                bx = detect_faces(fr, detector, settings.detect_width)
                ok.append(bool(bx))
                if bx:
                    plain.append(crop_face(fr, bx[0], settings.face_margin))
                    framed.append(framed_crop(fr, bx[0], f))
            ok_a = np.array(ok)
            yk = np.asarray(labels)[ok_a]
            r[set_name] = {"faces": len(images), "found": int(ok_a.sum()),
                           "native_48px": float((predict(list(images)) == np.asarray(labels)).mean()),
                           "default": float((predict(plain) == yk).mean()),
                           "framed": float((predict(framed) == yk).mean())}
            print(name, set_name, json.dumps(r[set_name]))
        a, b = np.array(r["taiwanese_default_pred"]), np.array(r["taiwanese_framed_pred"])
        y = photos.labels
        r["taiwanese_paired"] = {"fixed": int(((a != y) & (b == y)).sum()), "broken": int(((a == y) & (b != y)).sum())}
        print(name, "taiwanese", r["taiwanese_default"]["accuracy"], "->", r["taiwanese_framed"]["accuracy"],
              r["taiwanese_paired"], json.dumps(r["taiwanese_framed"]["recall"]))
        result["detectors"][name] = r

    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "face_framing.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
