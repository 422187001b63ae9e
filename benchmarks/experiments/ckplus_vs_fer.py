"""The shipped face model against ``fer``'s model on the CK+ subjects it never trained on.

    nice -n 10 .venv/bin/python benchmarks/experiments/ckplus_vs_fer.py [--model face]

The subjects are the ones the model's manifest lists as held out (``training.split.extra_train.
held_out_subjects``: ``train face --extra-train`` kept them out); with no such list (a model that
never saw CK+) every CK+48 face of the 7 canonical classes is scored. CK+48 faces are crops already,
so both models get the same 48x48 faces: edgeemo through its manifest's preprocessing, ``fer``
through its own (``fer_peer_model.py``). Writes ``ckplus_vs_fer.{md,json}`` to ``--out-dir``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from fer_peer_model import FerModel

from edgeemo.face import preprocess_faces
from edgeemo.face_datasets import load_faces
from edgeemo.labels import EMOTIONS
from edgeemo.manifest import sha256_of
from edgeemo.metrics import classification_report
from edgeemo.predict import open_face_model

ROOT = Path(__file__).resolve().parents[2]
CKPLUS = ROOT.parent / "shared" / "data" / "ckplus" / "CK+48"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="face", help="face model file or shipped name (default: face, int8)")
    parser.add_argument("--data", type=Path, default=CKPLUS)
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results" / "experiments")
    args = parser.parse_args()

    model = open_face_model(args.model)
    manifest = json.loads(model.path.with_name(model.path.name + ".json").read_text())
    held = (manifest.get("training", {}).get("split", {}).get("extra_train") or {}).get("held_out_subjects")
    faces = load_faces(args.data)
    keep = np.isin(faces.groups.astype(str), held) if held else np.ones(len(faces), bool)
    images = [faces.images[i] for i in np.flatnonzero(keep)]
    y = faces.labels[keep]
    ours = np.asarray(model.canonical_index)[model.predict(preprocess_faces(images, model.preprocessing)).argmax(1)]
    fer = FerModel().predict(images).argmax(1)
    reports = {name: classification_report(y, pred, EMOTIONS) for name, pred in
               ((model.path.name, ours), ("fer", fer))}
    subjects = sorted({str(g) for g in faces.groups[keep]})
    result = {"model": str(model.path), "models_sha256": {model.path.name: sha256_of(model.path)},
              "data": str(args.data), "faces": int(keep.sum()), "subjects": subjects,
              "subjects_from": "manifest held_out_subjects" if held else "all (the model never trained on CK+)",
              "reports": reports}
    lines = ["# CK+ subjects the model never trained on: edgeemo against fer", "",
             f"`benchmarks/experiments/ckplus_vs_fer.py --model {args.model}`: {int(keep.sum())} CK+48 faces of "
             f"{len(subjects)} subjects ({result['subjects_from']}); the same 48x48 crops for both models.", "",
             "| model | accuracy | macro-F1 | UAR | " + " | ".join(EMOTIONS) + " |",
             "|---|---|---|---|" + "---|" * len(EMOTIONS)]
    for name, r in reports.items():
        recall = [r["per_class"][e]["recall"] if r["per_class"][e]["support"] else float("nan") for e in EMOTIONS]
        lines.append(f"| {name} | {r['accuracy']:.2%} | {r['macro_f1']:.3f} | {r['uar']:.3f} | "
                     + " | ".join("–" if np.isnan(v) else f"{v:.0%}" for v in recall) + " |")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "ckplus_vs_fer.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out_dir / "ckplus_vs_fer.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
