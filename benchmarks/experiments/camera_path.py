"""A face model through the daemon's camera path on whole labelled photos, per detector, with ``fer``'s
model on the same crops.

    nice -n 10 .venv/bin/python benchmarks/experiments/camera_path.py [--model face] \\
        [--data ../shared/data/taiwanese-faces] [--detectors blazeface haar] [--no-fer] [--name NAME]

For each detector: every photo goes through ``edgeemo.camera_bench.camera_crops`` (THE detect -> crop of
``edgeemo.face_detect``, the daemon's default settings), then the model (its manifest's preprocessing);
a photo without a face counts as wrong (``edgeemo.camera_bench.score_through_camera``, as
``edgeemo bench --detect`` does). ``fer``'s model (``fer_peer_model.py``) classifies the same crops.
``--model`` is any face model file or shipped name, so a new model is measured the same way.

Writes ``<name>.{md,json}`` to ``--out-dir`` (default ``benchmarks/results/experiments``; name default
``camera_path_<data folder>``).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeemo.bench import machine_info
from edgeemo.camera_bench import camera_crops, load_photos, score_through_camera
from edgeemo.face import preprocess_faces
from edgeemo.face_detect import DETECTORS, DetectorSettings
from edgeemo.labels import EMOTIONS
from edgeemo.predict import open_face_model

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
IDENTITY = np.arange(len(EMOTIONS))


def summary(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "accuracy": report["accuracy"],
        "macro_f1": report["macro_f1"],
        "uar": report["uar"],
        "recall": {k: v["recall"] for k, v in report["per_class"].items()},
        "confusion_matrix": report["confusion_matrix"],
    }


def subjects_of(data: Path, paths: list[Path]) -> np.ndarray | None:
    """Each photo's subject from a ``performer`` or ``subject`` column of ``labels.csv`` (None without one)."""
    table = data / "labels.csv"
    if not table.is_file():
        return None
    with table.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    column = next((c for c in ("performer", "subject") if rows and c in rows[0]), None)
    if column is None:
        return None
    by_path = {(data / r["path"]).resolve(): r[column] for r in rows}
    return np.array([by_path.get(p.resolve(), "?") for p in paths])


def per_subject(probs: np.ndarray, found: np.ndarray, y: np.ndarray, canonical: Any,
                subjects: np.ndarray) -> dict[str, float]:
    """Accuracy per subject (a photo without a face is wrong)."""
    pred = np.full(len(y), -1)
    pred[found] = np.asarray(canonical)[probs.argmax(axis=1)]
    return {str(s): float((pred[subjects == s] == y[subjects == s]).mean()) for s in sorted(set(subjects))}


def run(model_spec: str, data: Path, detectors: list[str], out_dir: Path, name: str, with_fer: bool = True,
        dataset: str = "fer2013") -> dict[str, Any]:
    model = open_face_model(model_spec, threads=1)
    fer = None
    if with_fer:
        from fer_peer_model import FerModel

        fer = FerModel()
    photos = load_photos(data, dataset=dataset)
    subjects = subjects_of(data, photos.paths)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine_info(),
        "model": {"spec": model_spec, "path": str(model.path), "quantization": model.quantization},
        "fer_model": str(fer.path) if fer else None,
        "data": {"path": str(data), "n": len(photos), "class_counts": photos.class_counts()},
        "detectors": {},
    }
    for det in detectors:
        settings = DetectorSettings(detector=det)
        print(f"{det}: detecting and cropping {len(photos)} photos ...", flush=True)
        crops = camera_crops(photos.paths, settings)
        found = crops.found
        faces = [c for c in crops.crops if c is not None]
        probs = model.predict(preprocess_faces(faces, model.preprocessing))
        entry: dict[str, Any] = {
            "settings": vars(settings),
            "no_face": int((~found).sum()),
            "several_faces": int(sum(n > 1 for n in crops.faces_found)),
            "detect_ms_p50": float(np.median(crops.detect_ms)),
            "model": summary(score_through_camera(probs, found, photos.labels, model.canonical_index)),
        }
        fer_probs = fer.predict(faces) if fer is not None else None
        if fer_probs is not None:
            entry["fer"] = summary(score_through_camera(fer_probs, found, photos.labels, IDENTITY))
        if subjects is not None:
            entry["per_subject"] = {"model": per_subject(probs, found, photos.labels, model.canonical_index, subjects)}
            if fer_probs is not None:
                entry["per_subject"]["fer"] = per_subject(fer_probs, found, photos.labels, IDENTITY, subjects)
        report["detectors"][det] = entry
    from edgeemo.shipped import sha256_of

    report["models_sha256"] = {model.spec: sha256_of(model.path)}  # which model file was measured
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / f"{name}.md").write_text(render(report, name))
    print(f"wrote {out_dir / name}.md")
    return report


def render(report: dict[str, Any], name: str) -> str:
    m, dets = report["machine"], report["detectors"]
    with_fer = report["fer_model"] is not None
    lines = [
        f"# Camera path: {report['model']['spec']} on {Path(report['data']['path']).name}",
        "",
        f"`benchmarks/experiments/camera_path.py --model {report['model']['spec']} --data {report['data']['path']} "
        f"--name {name}`, {report['date']}, {m['cpu']}. {report['data']['n']} whole photos through "
        "`edgeemo.face_detect` (the daemon's detect -> crop, default settings) and the model "
        f"({report['model']['quantization']}); a photo without a face counts as wrong."
        + (" `fer` (25.10.3, its TFLite model and preprocessing) classifies the same crops." if with_fer else ""),
        "",
        "| detector | no face | several faces | detect ms p50 | accuracy | macro-F1 | UAR |"
        + (" fer accuracy | fer macro-F1 |" if with_fer else ""),
        "|---|---|---|---|---|---|---|" + ("---|---|" if with_fer else ""),
    ]
    for det, e in dets.items():
        row = (f"| {det} | {e['no_face']} | {e['several_faces']} | {e['detect_ms_p50']:.2f} | "
               f"{100 * e['model']['accuracy']:.1f}% | {e['model']['macro_f1']:.3f} | {e['model']['uar']:.3f} |")
        if with_fer:
            row += f" {100 * e['fer']['accuracy']:.1f}% | {e['fer']['macro_f1']:.3f} |"
        lines.append(row)
    def table(title: str, first: str, rows: list[tuple[str, str]], cell: Any) -> list[str]:
        """One row per (key, shown name), one column per detector (and fer's beside it): ``cell(entry, who, key)``."""
        out = [title, "", f"| {first} | " + " | ".join(f"{d}" + (f" | {d} fer" if with_fer else "") for d in dets)
               + " |", "|---|" + "---|" * (len(dets) * (2 if with_fer else 1))]
        for key, shown in rows:
            cells = [cell(e, who, key) for e in dets.values() for who in (("model", "fer") if with_fer else ("model",))]
            out.append(f"| {shown} | " + " | ".join(cells) + " |")
        return [*out, ""]

    lines += ["", *table("Recall per class (support):", "class",
                         [(c, f"{c} ({report['data']['class_counts'][c]})") for c in EMOTIONS],
                         lambda e, who, c: f"{100 * e[who]['recall'][c]:.0f}%")]
    if all("per_subject" in e for e in dets.values()):
        subjects = list(next(iter(dets.values()))["per_subject"]["model"])
        lines += table("Accuracy per subject (the labels.csv column):", "subject", [(s, s) for s in subjects],
                       lambda e, who, s: f"{100 * e['per_subject'][who][s]:.1f}%")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="face", help="face model file or shipped name (default: face, int8)")
    parser.add_argument("--data", type=Path, default=DATA / "taiwanese-faces",
                        help="whole labelled photos: <label>/ folders or labels.csv (path,label)")
    parser.add_argument("--dataset", default="fer2013", help="label names: fer2013 (canonical) or ckplus")
    parser.add_argument("--detectors", nargs="+", default=list(DETECTORS), choices=DETECTORS)
    parser.add_argument("--no-fer", action="store_true", help="leave out fer's model (no fer venv needed)")
    parser.add_argument("--name", default=None, help="result file stem (default camera_path_<data folder>)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results" / "experiments")
    args = parser.parse_args()
    name = args.name or f"camera_path_{args.data.name}"
    run(args.model, args.data, args.detectors, args.out_dir, name, not args.no_fer, args.dataset)


if __name__ == "__main__":
    main()
