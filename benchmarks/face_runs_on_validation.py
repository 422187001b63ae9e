"""Compare finished face runs on their validation split only (test is not computed).

    .venv/bin/python benchmarks/face_runs_on_validation.py RUN [RUN ...]

For each run folder (same split.json validation list required): accuracy, macro-F1 and
negative log-likelihood of ``best.keras`` on the validation faces, through THE core
preprocessing; with several runs, also their probability average. This is how a model is
chosen before its test numbers are looked at (results/face_accuracy_attempts.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from edgeemo.face import FacePreprocessing, preprocess_faces
from edgeemo.labels import EMOTIONS
from edgeemo.metrics import classification_report


def main(runs: list[Path]) -> None:
    import keras
    from edgeemo.train.ensemble import split_faces

    config = json.loads((runs[0] / "config.json").read_text())
    split = json.loads((runs[0] / "split.json").read_text())
    for run in runs[1:]:
        if json.loads((run / "split.json").read_text())["val"] != split["val"]:
            sys.exit(f"{run}: its validation faces differ from {runs[0]}'s")
    images, y = split_faces(config, split, runs[0], names=("val",))["val"]
    x = preprocess_faces(images, FacePreprocessing.from_dict(config["preprocessing"]))

    def report(name: str, p: np.ndarray) -> None:
        nll = float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0)).mean())
        rep = classification_report(y, p.argmax(1), EMOTIONS)
        print(f"{name:45s} val n {len(y)}  accuracy {rep['accuracy']:.4f}  "
              f"macro-F1 {rep['macro_f1']:.4f}  NLL {nll:.4f}")

    probs = []
    for run in runs:
        probs.append(keras.models.load_model(run / "best.keras", compile=False).predict(x, batch_size=512, verbose=0))
        report(str(run), probs[-1])
    if len(runs) > 1:
        report("mean of the runs' probabilities", np.mean(probs, axis=0))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main([Path(a) for a in sys.argv[1:]])
