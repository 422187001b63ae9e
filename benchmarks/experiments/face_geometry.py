"""Does face geometry from a pretrained landmark model help the shipped face model transfer?

    nice -n 5 .venv/bin/python benchmarks/experiments/face_geometry.py --mesh FILE [--run runs/face-ck8]

``FILE`` is MediaPipe's ``face_landmark.tflite`` (468 points, Apache-2.0) from the ``mediapipe``
0.10.14 wheel on PyPI (``pip download --no-deps mediapipe==0.10.14``; it is at
``mediapipe/modules/face_landmark/``). Each face goes to gray, is resized to 144x144, edge-padded to
192x192 and fed as RGB in [0, 1]. The 468 (x, y) points are centred, scaled to unit RMS radius and
rotated so that the outer eye corners are level. A logistic regression and an MLP are fitted on the
run's training faces (its ``split.json``). Their probabilities are mixed with the run's CNN:
log p = (1 - w) log p_CNN + w log p_geometry. Everything is scored with the first session's
transfer score (``face_transfer_attempts.md``). A screen: the rule is in that file's seventh section.
Writes ``face_geometry.{md,json}`` to ``--out-dir``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

from edgeemo.camera_bench import camera_crops, load_photos
from edgeemo.face import FacePreprocessing, preprocess_faces, to_gray_uint8
from edgeemo.face_datasets import load_faces
from edgeemo.splits import group_split
from edgeemo.train.options import EXTRA_TEST_FRACTION

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
PAD = 24
EYES = (33, 263)  # outer eye corners in the mesh's numbering
WEIGHTS = (0.0, 0.2, 0.35, 0.5)


class Mesh:
    """MediaPipe's face mesh on one face crop: (468, 2) points in the 192x192 input."""

    def __init__(self, path: Path, threads: int = 2) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.inp = self.interpreter.get_input_details()[0]["index"]
        self.out = self.interpreter.get_output_details()[0]["index"]

    def __call__(self, face: np.ndarray) -> np.ndarray:
        g = cv2.resize(to_gray_uint8(face), (192 - 2 * PAD, 192 - 2 * PAD), interpolation=cv2.INTER_LINEAR)
        g = cv2.copyMakeBorder(g, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE)
        x = np.repeat(g[:, :, None], 3, axis=2).astype(np.float32)[None] / 255.0
        self.interpreter.set_tensor(self.inp, x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.out).reshape(468, 3)[:, :2].copy()


def geometry(points: np.ndarray) -> np.ndarray:
    """(n, 468, 2) points -> (n, 936): centred, unit RMS radius, eye line level."""
    p = points - points.mean(axis=1, keepdims=True)
    p = p / np.sqrt((p**2).sum(axis=2).mean(axis=1))[:, None, None]
    d = p[:, EYES[1]] - p[:, EYES[0]]
    angle = np.arctan2(d[:, 1], d[:, 0])
    c, s = np.cos(-angle), np.sin(-angle)
    rot = np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)  # (n, 2, 2)
    return np.einsum("nij,nkj->nki", rot, p).reshape(len(p), -1)


def landmarks(mesh: Mesh, faces: list[np.ndarray], name: str) -> np.ndarray:
    t0 = time.perf_counter()
    out = np.stack([mesh(f) for f in faces])
    ms = (time.perf_counter() - t0) / max(1, len(faces)) * 1e3
    print(f"{name}: {len(faces)} faces, {ms:.2f} ms each", flush=True)
    return out


def main() -> None:
    import keras
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    from edgeemo.train.ensemble import split_faces

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=Path, required=True, help="MediaPipe's face_landmark.tflite")
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "face-ck8")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/face_geometry.npz"))
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results" / "experiments")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    config = json.loads((args.run / "config.json").read_text())
    split = json.loads((args.run / "split.json").read_text())
    faces = split_faces(config, split, args.run, ("train", "val"))
    (train_images, train_y), (val_images, val_y) = faces["train"], faces["val"]
    ck = load_faces(DATA / "ckplus" / "CK+48")
    _, ck_held = group_split(ck.groups, EXTRA_TEST_FRACTION, 0)  # the CK+ subjects train face --extra-train holds out
    photos = load_photos(DATA / "taiwanese-faces")
    crops = camera_crops(photos.paths)
    found = crops.found
    tw_faces = [c for c in crops.crops if c is not None]
    ck_faces = [ck.images[i] for i in ck_held]  # indices of the held-out subjects' faces

    todo = {"train": train_images, "val": val_images, "ck": ck_faces, "tw": tw_faces}
    pts = dict(np.load(args.cache)) if args.cache.exists() else {}
    pts = {k: v for k, v in pts.items() if k in todo and len(v) == len(todo[k])}
    if len(pts) < len(todo):
        mesh = Mesh(args.mesh)
        pts.update({k: landmarks(mesh, v, k) for k, v in todo.items() if k not in pts})
        np.savez(args.cache, **pts)
    geo = {k: geometry(v) for k, v in pts.items()}

    pre = FacePreprocessing.from_dict(config["preprocessing"])
    cnn = keras.models.load_model(args.run / "best.keras", compile=False)

    def cnn_probs(images: list[np.ndarray]) -> np.ndarray:
        return cnn.predict(preprocess_faces(images, pre), batch_size=512, verbose=0)

    p_cnn = {"val": cnn_probs(val_images), "ck": cnn_probs(ck_faces), "tw": cnn_probs(tw_faces)}
    y = {"val": val_y, "ck": ck.labels[ck_held], "tw": photos.labels}
    scaler = StandardScaler().fit(geo["train"])
    classifiers = {"logreg": LogisticRegression(C=0.05, max_iter=2000),
                   "mlp": MLPClassifier((256,), alpha=1e-2, early_stopping=True, random_state=0, max_iter=200)}
    rows = []
    for name, clf in classifiers.items():
        t0 = time.perf_counter()
        clf.fit(scaler.transform(geo["train"]), train_y)
        print(f"{name} fitted in {time.perf_counter() - t0:.0f} s", flush=True)
        p_geo = {k: clf.predict_proba(scaler.transform(geo[k])) for k in ("val", "ck", "tw")}
        for w in WEIGHTS:
            acc = {}
            for k in ("val", "ck", "tw"):
                logp = (1 - w) * np.log(np.clip(p_cnn[k], 1e-9, 1)) + w * np.log(np.clip(p_geo[k], 1e-9, 1))
                pred = logp.argmax(1)
                if k == "tw":  # over all photos: no face is wrong
                    full = np.full(len(found), -1)
                    full[found] = pred
                    pred = full
                acc[k] = float((pred == y[k]).mean())
            row = {"classifier": name, "w": w, "fer_val": acc["val"], "ck_held_out": acc["ck"],
                   "taiwanese": acc["tw"], "score": float(np.mean(list(acc.values())))}
            rows.append(row)
            print(row, flush=True)
        geo_only = {k: float((p_geo[k].argmax(1) == (y[k] if k != "tw" else y[k][found])).mean()) for k in p_geo}
        rows.append({"classifier": name, "w": 1.0, "geometry_only_on_found": geo_only})
        print(name, "geometry alone (Taiwanese over found faces)", geo_only, flush=True)

    lines = ["# Face: geometry from a pretrained landmark model, mixed with the shipped CNN (issue 27, a screen)", "",
             f"`benchmarks/experiments/face_geometry.py --run {args.run.name}` (see its docstring; Keras float CNN). "
             "Score = mean of FER2013 validation, CK+ held-out subjects and the Taiwanese photos through the "
             "default camera path (no face counts as wrong).", "",
             "| classifier | w (geometry) | FER2013 val | CK+ held-out | Taiwanese | score |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if "score" in r:
            lines.append(f"| {r['classifier']} | {r['w']} | {r['fer_val']:.2%} | {r['ck_held_out']:.2%} | "
                         f"{r['taiwanese']:.2%} | **{100 * r['score']:.2f}** |")
        else:
            g = r["geometry_only_on_found"]
            lines.append(f"| {r['classifier']} | geometry alone | {g['val']:.2%} | {g['ck']:.2%} | "
                         f"{g['tw']:.2%} of faces found | |")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"models_sha256": {}, "note": f"classifiers fitted here, mixed with {args.run.name}'s Keras model",
           "rows": rows}
    (args.out_dir / "face_geometry.json").write_text(json.dumps(doc, indent=1) + "\n")
    (args.out_dir / "face_geometry.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
