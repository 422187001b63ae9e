"""Voice: does a frame-level model beside the functionals help transfer? And how much of CREMA-D's gap is surprise?

    nice -n 10 .venv/bin/python benchmarks/experiments/voice_frame_ensemble.py

1. On each leave-one-corpus-out fold, the shipped recipe's seed ensemble (``vt-Qp2s-ens5-loco-<corpus>``,
   functionals MLP) and the frame-level conv1d of run A (``vt-A-loco-<corpus>``, 220k parameters, the
   frames of THE front end, the same channel augmentation and speaker adaptation) score the same
   test clips (matched by file); their softmax outputs are mixed with weight w on the conv1d.
2. A diagnostic, not the protocol: CREMA-D has no surprise, yet the model may answer it; the CREMA-D
   fold scored again with the decision restricted to the six classes CREMA-D has.

Reads the finished fold runs (each run folder's ``features.npz`` holds its own test inputs); writes
``voice_frame_ensemble.{json,md}`` under benchmarks/results/experiments. Needs TensorFlow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from voice_functionals import uar as uar_fraction
from voice_seeds import FOLDS, OUT, RUNS, run_folder  # the fold runs' layout (this folder is on sys.path)

from edgeemo.labels import EMOTIONS

WEIGHTS = (0.0, 0.1, 0.2, 0.33, 0.5, 1.0)


def uar(y: np.ndarray, pred: np.ndarray) -> float:
    return 100 * uar_fraction(y, pred)


def test_probs(model_run: Path, features_run: Path) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    import keras

    f = np.load(features_run / "features.npz")
    model = keras.models.load_model(model_run / "best.keras", compile=False)
    paths = json.loads((features_run / "split.json").read_text())["test"]
    probs = model.predict(f["inputs_test"].astype(np.float32), batch_size=256, verbose=0)
    return dict(zip(paths, probs, strict=True)), dict(zip(paths, f["y_test"].tolist(), strict=True))


def main() -> None:
    result: dict = {"models_sha256": {}, "note": "measures training runs' fold models, no shipped model",
                    "weights_on_conv1d": list(WEIGHTS), "folds": {}}
    for fold in FOLDS:
        func, y_of = test_probs(RUNS / f"vt-Qp2s-ens5-loco-{fold}", run_folder("Qp2s", 0, fold))
        conv, _ = test_probs(run_folder("A", 0, fold), run_folder("A", 0, fold))
        common = [p for p in func if p in conv]
        y = np.array([y_of[p] for p in common])
        pf, pc = np.array([func[p] for p in common]), np.array([conv[p] for p in common])
        r = {"clips": len(common), "uar": {str(w): uar(y, ((1 - w) * pf + w * pc).argmax(1)) for w in WEIGHTS}}
        if fold == "cremad":
            masked = pf.copy()
            masked[:, EMOTIONS.index("surprise")] = 0.0
            pred = pf.argmax(1)
            r["surprise_answers"] = float((pred == EMOTIONS.index("surprise")).mean())
            r["six_classes"] = {"accuracy": float(100 * (masked.argmax(1) == y).mean()),
                                "uar": uar(y, masked.argmax(1)),
                                "accuracy_seven": float(100 * (pred == y).mean()),
                                "majority": float(100 * np.bincount(y).max() / len(y))}
        result["folds"][fold] = r
    result["score"] = {str(w): float(np.mean([result["folds"][f]["uar"][str(w)] for f in FOLDS])) for w in WEIGHTS}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "voice_frame_ensemble.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = ["# Voice: a frame-level conv1d beside the functionals (leave-one-corpus-out UAR, %)", "",
             "`nice -n 10 .venv/bin/python benchmarks/experiments/voice_frame_ensemble.py`: the shipped recipe's "
             "seed ensemble (Qp2s, functionals MLP) mixed with run A's conv1d on frames, weight w on the conv1d, "
             "same test clips.", "",
             "| w | " + " | ".join(FOLDS) + " | score |", "|---|" + "---|" * (len(FOLDS) + 1)]
    for w in WEIGHTS:
        lines.append(f"| {w:g} | " + " | ".join(f"{result['folds'][f]['uar'][str(w)]:.1f}" for f in FOLDS)
                     + f" | **{result['score'][str(w)]:.2f}** |")
    six = result["folds"]["cremad"]["six_classes"]
    surprise = result["folds"]["cremad"]["surprise_answers"]
    lines += ["", f"Diagnostic (not the protocol): on the CREMA-D fold {surprise:.0%} "
              f"of the answers are surprise, a class CREMA-D does not have. With the decision restricted to its six "
              f"classes: accuracy {six['accuracy']:.1f}% (UAR {six['uar']:.1f}) against {six['accuracy_seven']:.1f}% "
              f"with all seven; majority {six['majority']:.1f}%.", ""]
    (OUT / "voice_frame_ensemble.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
