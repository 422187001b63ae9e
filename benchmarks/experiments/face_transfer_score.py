"""The transfer score that chose the shipped face model (issue 27): a face run, before export.

    .venv/bin/python benchmarks/experiments/face_transfer_score.py RUN [EPOCH_WEIGHTS.npz]

Keras float, each set through THE preprocessing of the run's own config:

- FER2013 validation: the run's `val` faces (split.json, cut from train/);
- CK+48: all faces, and the 30% of subjects that `train face --extra-train` holds out (the subject
  split of seed 0), the set every candidate is compared on once one of them trains on CK+;
- the Taiwanese development photos through the daemon's detect -> crop (`edgeemo.camera_bench`,
  default detector and default crop margin ``DEFAULT_FACE_MARGIN``, 0 since the margin sweep; the
  first scores were taken at 0.1); a photo with no face counts as wrong.

Score = mean of the three accuracies (CK+ on the held-out subjects). Also printed: the same with
``tau * log(FER2013 class prior)`` subtracted from the log-probabilities (class rebalancing), for
tau in 0, 0.25, 0.5, 0.75, 1. Nothing is written; the figures are copied into
benchmarks/results/experiments/face_transfer_attempts.md. Needs TensorFlow.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from edgeemo.camera_bench import camera_crops, load_photos
from edgeemo.face import FacePreprocessing, preprocess_faces
from edgeemo.face_datasets import load_faces
from edgeemo.face_detect import DetectorSettings
from edgeemo.splits import group_split
from edgeemo.train.options import EXTRA_TEST_FRACTION

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"


def main(run: Path, weights: Path | None = None) -> None:
    import keras

    from edgeemo.train.ensemble import split_faces
    from edgeemo.train.run import load_weights_npz

    config = json.loads((run / "config.json").read_text())
    pre = FacePreprocessing.from_dict(config["preprocessing"])
    model = keras.models.load_model(run / "best.keras", compile=False)
    if weights is not None:
        load_weights_npz(model, weights)

    def probs(images: list[np.ndarray]) -> np.ndarray:
        return model.predict(preprocess_faces(images, pre), batch_size=512, verbose=0)

    ((val_images, val_y),) = split_faces(config, json.loads((run / "split.json").read_text()), run, ("val",)).values()
    ck = load_faces(DATA / "ckplus" / "CK+48")
    _, ck_held = group_split(ck.groups, EXTRA_TEST_FRACTION, 0)  # the CK+ subjects train face --extra-train holds out
    photos = load_photos(DATA / "taiwanese-faces")
    crops = camera_crops(photos.paths)
    found = crops.found
    sets = {"FER2013 val": (probs(val_images), val_y)}
    ck_p = probs(ck.images)
    sets["CK+ all"] = (ck_p, ck.labels)
    sets["CK+ held-out subjects"] = (ck_p[ck_held], ck.labels[ck_held])
    tw = np.full((len(photos), ck_p.shape[1]), 1.0 / ck_p.shape[1])
    tw[found] = probs([c for c in crops.crops if c is not None])
    sets["Taiwanese"] = (tw, photos.labels)
    prior = np.bincount(load_faces(DATA / "fer2013", split="train").labels, minlength=ck_p.shape[1])
    log_prior = np.log(prior / prior.sum())
    print(f"{run}{' ' + str(weights) if weights else ''}: {int((~found).sum())} Taiwanese photos without a face "
          f"(detector {DetectorSettings().detector}, crop margin {DetectorSettings().face_margin})")
    for tau in (0.0, 0.25, 0.5, 0.75, 1.0):
        acc = {}
        for name, (p, y) in sets.items():
            pred = (np.log(np.clip(p, 1e-9, 1.0)) - tau * log_prior).argmax(1)
            if name == "Taiwanese":
                pred = np.where(found, pred, -1)  # no face: wrong
            acc[name] = float((pred == y).mean())
        score = (acc["FER2013 val"] + acc["CK+ held-out subjects"] + acc["Taiwanese"]) / 3
        print(f"  tau {tau:4.2f}: " + "  ".join(f"{k} {v:.4f}" for k, v in acc.items()) + f"  score {score:.4f}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) == 3 else None)
