"""Release step: rebuild the training run folder of the shipped face model from its float ONNX.

Run folders are not committed. When the run that produced the shipped face model
(``runs/fer-custom-cnn-cos120-bn``, see ``train_face_models.sh``; before 2026-12-02
``runs/fer-custom-cnn-bf16-ft-bn``) is gone, its ``best.keras`` is still needed to build on it
(``train ensemble --mirror``, ``train face --teacher`` / ``--init-from``). The shipped float
ONNX holds every weight of it, with each BatchNorm folded into the layer before it. This
script puts the weights back into the custom CNN and writes a run folder that the train and
export stages read like any other:

    best.keras   the custom CNN with the shipped weights
    config.json  the run's own config (benchmarks/results/release/training/fer-custom-cnn-cos120-bn-config.json)
    split.json   its train / val / test faces, re-cut by the same seeded split
    metrics.json best.keras on the test split, through the training code's report

BatchNorm cannot be unfolded exactly (only the products of its parameters survive), so each
one is re-estimated: its moving mean and variance are set to the statistics of the layer
before it on training faces, and gamma/beta are solved so that inference computes exactly
the folded layer. Training mode then normalises with batch statistics close to these, so the
model can be fine-tuned. The script refuses to write anything unless the rebuilt model's
outputs match the shipped float ONNX on every test face (max |diff| < 1e-4).

    .venv/bin/python benchmarks/release/recover_face_parent.py --out runs/fer-custom-cnn-cos120-bn

An earlier shipped model from git, with its committed config:

    git show 79c747e^:edgeemo/models/face/face-float.onnx > runs/prev-face-float.onnx
    .venv/bin/python benchmarks/release/recover_face_parent.py --out runs/fer-custom-cnn-bf16-ft-bn
        --onnx runs/prev-face-float.onnx
        --config benchmarks/results/release/training/fer-custom-cnn-bf16-ft-bn-config.json
    (one command line)

The shipped model's statistics were set the same way (``edgeemo train recalibrate``: inference-
mode statistics of 8,192 training faces), so the rebuilt BatchNorm layers match them closely.
"""

from __future__ import annotations

import argparse
import json
import sys
from hashlib import sha256
from pathlib import Path

import numpy as np

from edgeemo.train.recover import cut_seed, onnx_weights, rebuild

ROOT = Path(__file__).resolve().parents[2]
ONNX_FILE = ROOT / "edgeemo" / "models" / "face" / "face-float.onnx"
CONFIG = ROOT / "benchmarks" / "results" / "release" / "training" / "fer-custom-cnn-cos120-bn-config.json"
STATS_FACES = 8192  # training faces used to re-estimate the BatchNorm statistics


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("runs/fer-custom-cnn-cos120-bn"))
    ap.add_argument("--config", type=Path, default=CONFIG,
                    help="the run's config.json as committed (default: the shipped model's)")
    ap.add_argument("--onnx", type=Path, default=ONNX_FILE,
                    help="the run's float ONNX export (default: the shipped one)")
    ap.add_argument("--data", type=Path, default=None, help="FER2013 root (default: the run's own data folder)")
    args = ap.parse_args()

    import onnxruntime as ort

    from edgeemo.face import FacePreprocessing, preprocess_faces
    from edgeemo.labels import EMOTIONS
    from edgeemo.metrics import classification_report
    from edgeemo.train.face import resolve_splits

    config = json.loads(args.config.read_text())
    data = args.data or Path(config["data"])
    if args.data is not None:
        config["data"] = str(args.data)
    pre = FacePreprocessing.from_dict(config["preprocessing"])
    train, val, test, split_desc = resolve_splits(
        data, "auto", None, "subject", 0.1, 0.2, cut_seed(config), config["limit_per_class"]
    )
    if split_desc["train"] != config["split"]["train"] or split_desc["val"]["n"] != config["split"]["val"]["n"]:
        print(f"error: {data}: the re-cut split differs from the run's ({split_desc['train']['n']} training faces)")
        return 1
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(train), size=min(STATS_FACES, len(train)), replace=False))
    model = rebuild(config, onnx_weights(args.onnx), preprocess_faces([train.images[i] for i in idx], pre))

    x_test = preprocess_faces(test.images, pre)
    probs = model.predict(x_test, batch_size=512, verbose=0)
    session = ort.InferenceSession(str(args.onnx), providers=["CPUExecutionProvider"])
    reference = session.run(None, {session.get_inputs()[0].name: x_test})[0]
    gap = float(np.abs(probs - reference).max())
    print(f"rebuilt model vs {args.onnx} on {len(test)} test faces: max |diff| {gap:.2e}, "
          f"top-1 agreement {(probs.argmax(1) == reference.argmax(1)).mean():.4f}")
    if gap >= 1e-4:
        print("error: the rebuilt model does not match the shipped float ONNX; nothing written")
        return 1

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "best.keras")
    config["recovered_from"] = {"file": str(args.onnx), "sha256": sha256(args.onnx.read_bytes()).hexdigest(),
                                "max_abs_prob_diff": gap,
                                "batchnorm": f"re-estimated on {len(idx)} training faces"}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "split.json").write_text(json.dumps({"train": train.sources, "val": val.sources, "test": test.sources}))
    (out / "finished.json").write_text(json.dumps({"epochs": config["settings"]["epochs"], "recovered": True}))
    report = classification_report(test.labels, probs.argmax(1), EMOTIONS)
    report.update({"split": "test", "source": split_desc["test"]["source"], "params": int(model.count_params())})
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {out}: test accuracy {report['accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
