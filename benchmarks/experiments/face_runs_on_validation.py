"""Compare finished face runs on their validation split only (test is not computed).

    .venv/bin/python benchmarks/experiments/face_runs_on_validation.py RUN [RUN ...]

For each run folder: accuracy, macro-F1 and negative log-likelihood of ``best.keras`` on the
validation faces, through THE core preprocessing; with several runs (which must share the
front end and the validation and test samples, as for ``edgeemo train ensemble``), also their
probability average. This is how a model is chosen before its test numbers are looked at
(results/experiments/face_accuracy_attempts.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edgeemo.errors import EdgeemoError
from edgeemo.labels import EMOTIONS
from edgeemo.metrics import classification_report


def main(runs: list[Path]) -> None:
    from edgeemo.train.ensemble import Member, load_members

    if len(runs) > 1:
        members = load_members(runs)  # checks they share preprocessing and samples; reads the inputs once
    else:
        members = [Member(runs[0])]
        members[0].read_inputs()
    y = members[0].y["val"]

    def report(name: str, p: np.ndarray) -> None:
        nll = float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0)).mean())
        rep = classification_report(y, p.argmax(1), EMOTIONS)
        print(f"{name:45s} val n {len(y)}  accuracy {rep['accuracy']:.4f}  "
              f"macro-F1 {rep['macro_f1']:.4f}  NLL {nll:.4f}")

    for m in members:
        report(str(m.run), m.probs("val"))
    if len(members) > 1:
        report("mean of the runs' probabilities", np.mean([m.probs("val") for m in members], axis=0))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    try:
        main([Path(a) for a in sys.argv[1:]])
    except EdgeemoError as exc:
        sys.exit(f"error: {exc}")
