"""Fusion on pseudo-paired held-out data: face-only, voice-only and fused accuracy, and the fusion weight.

    .venv/bin/python benchmarks/suite/fusion_pseudo_paired.py [--quick] [--out benchmarks/results]

No dataset here has the same person's face and voice recorded together, so until paired
recordings exist this benchmark PAIRS held-out samples by label: every RAVDESS actor 17-20
clip (the voice model's held-out speakers) gets a FER2013 PublicTest face crop (never used for
training) with the same emotion, drawn without replacement within the class. The draw is
repeated ``DRAWS`` times from one fixed seed, so the spread due to which face was drawn is
shown. The two modalities' errors are independent by construction here (different people),
which real paired recordings would not guarantee: read the fused numbers as an upper bound on
what late fusion can add, not as a measurement of a person.

Each pair goes through ``edgeemo.fusion.Fusion`` exactly as the daemon does (both readings
fresh, ``smoothing_s = 0`` because every pair is a separate person): weighted log-linear
pooling with the per-reading entropy confidence. The shipped int8 ``face`` and ``voice``
models (what the device runs) give the distributions. The voice weight ``w`` is swept from 0
(face only) to 1 (voice only) with the face weight ``1 - w``; the daemon's default (1, 1) is
``w = 0.5``. Writes ``fusion_pseudo_paired.{json,md}`` and ``fusion/fusion-weight.png``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgeemo.shipped import shipped_sha256

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "suite"
SEED = 0
DRAWS = 10
WEIGHTS = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 21))
DEFAULT_W = 0.5  # FusionConfig's default weights: face 1, voice 1


def fused_labels(face_p: np.ndarray, voice_p: np.ndarray, face_labels: list[str], voice_labels: list[str],
                 w_voice: float, confidence: str = "entropy") -> np.ndarray:
    """EMOTIONS index of the fused label of each pair, through ``edgeemo.fusion.Fusion``."""
    from edgeemo.fusion import Fusion, FusionConfig
    from edgeemo.labels import EMOTIONS

    config = FusionConfig(weights={"face": 1.0 - w_voice, "voice": w_voice}, smoothing_s=0.0, confidence=confidence)
    out = np.empty(len(face_p), np.int64)
    for i, (fp, vp) in enumerate(zip(face_p, voice_p, strict=True)):
        fusion = Fusion(config)
        fusion.update("face", fp, 0.0, face_labels)
        fusion.update("voice", vp, 0.0, voice_labels)
        out[i] = EMOTIONS.index(fusion.result(0.0)["fused"]["label"])
    return out


def pairs(face_y: np.ndarray, voice_y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each voice clip, the index of a face with the same label (without replacement within a class)."""
    idx = np.empty(len(voice_y), np.int64)
    for c in np.unique(voice_y):
        clips = np.flatnonzero(voice_y == c)
        faces = np.flatnonzero(face_y == c)
        if len(faces) < len(clips):
            raise ValueError(f"class {c}: {len(clips)} clips but only {len(faces)} faces")
        idx[clips] = rng.choice(faces, size=len(clips), replace=False)
    return idx


def run(out: Path = RESULTS, quick: bool = False, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Score face-only, voice-only and fused accuracy on pseudo-pairs; write JSON, markdown and the plot."""
    from edgeemo.bench import load_clips, machine_info
    from edgeemo.face import preprocess_faces
    from edgeemo.face_datasets import load_faces
    from edgeemo.labels import EMOTIONS
    from edgeemo.metrics import classification_report
    from edgeemo.predict import open_emotion_model
    from edgeemo.voice import preprocess_files

    face_model = open_emotion_model("face", threads=1)
    voice_model = open_emotion_model("voice", threads=1)
    faces = load_faces(DATA / "fer2013" / "publictest", limit_per_class=29 if quick else None)
    say(f"scoring {len(faces)} faces ...")
    face_probs = face_model.predict(preprocess_faces(faces.images, face_model.preprocessing))
    clips = load_clips(DATA / "ravdess", ["17", "18", "19", "20"], 6 if quick else None)
    say(f"scoring {len(clips)} clips ...")
    xv, kept = preprocess_files(clips.paths, voice_model.preprocessing)
    voice_probs = voice_model.predict(xv)
    voice_y = clips.labels[kept]
    f_labels, v_labels = list(face_model.labels), list(voice_model.labels)
    rng = np.random.default_rng(SEED)
    draws = []
    for d in range(DRAWS):
        say(f"fusing draw {d + 1}/{DRAWS} ...")
        fi = pairs(faces.labels, voice_y, rng)
        fp, vp = face_probs[fi], voice_probs
        face_pred = face_model.canonical_index[fp.argmax(1)]
        voice_pred = voice_model.canonical_index[vp.argmax(1)]
        sweep = {conf: [float(np.mean(fused_labels(fp, vp, f_labels, v_labels, w, conf) == voice_y)) for w in WEIGHTS]
                 for conf in ("entropy", "none")}
        default_pred = fused_labels(fp, vp, f_labels, v_labels, DEFAULT_W)
        draws.append({
            "face_accuracy": float(np.mean(face_pred == voice_y)),
            "voice_accuracy": float(np.mean(voice_pred == voice_y)),
            "fused_accuracy_default": float(np.mean(default_pred == voice_y)),
            "both_wrong": float(np.mean((face_pred != voice_y) & (voice_pred != voice_y))),
            "sweep_entropy": sweep["entropy"],
            "sweep_no_confidence": sweep["none"],
            "per_class_recall": {
                name: {c: v["recall"] for c, v in classification_report(voice_y, pred, EMOTIONS)["per_class"].items()}
                for name, pred in (("face", face_pred), ("voice", voice_pred), ("fused", default_pred))
            },
        })

    def stats(key: str) -> dict[str, float]:
        v = np.array([d[key] for d in draws])
        return {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max()), "draw0": float(v[0])}

    sweep_mean = np.mean([d["sweep_entropy"] for d in draws], axis=0)
    best = int(np.argmax(sweep_mean))
    report = {
        "quick": quick,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "machine": machine_info(),
        "seed": SEED,
        "draws": DRAWS,
        "n_pairs": int(len(voice_y)),
        "class_counts": {EMOTIONS[c]: int(np.sum(voice_y == c)) for c in np.unique(voice_y)},
        "face": {"model": "face", "file": face_model.path.name, "data": "FER2013 PublicTest", "n_pool": len(faces)},
        "voice": {"model": "voice", "file": voice_model.path.name, "data": "RAVDESS actors 17-20",
                  "n": int(len(voice_y)), "no_speech": int(len(clips) - len(kept))},
        "fusion": "edgeemo.fusion.Fusion: log-linear pooling, weights face 1-w / voice w, entropy confidence, "
                  "smoothing_s 0",
        "face_accuracy": stats("face_accuracy"),
        "voice_accuracy": stats("voice_accuracy"),
        "fused_accuracy_default": stats("fused_accuracy_default"),
        "both_wrong": stats("both_wrong"),
        "weights": list(WEIGHTS),
        "sweep_entropy_mean": [float(v) for v in sweep_mean],
        "sweep_entropy_min": [float(v) for v in np.min([d["sweep_entropy"] for d in draws], axis=0)],
        "sweep_entropy_max": [float(v) for v in np.max([d["sweep_entropy"] for d in draws], axis=0)],
        "sweep_no_confidence_mean": [float(v) for v in np.mean([d["sweep_no_confidence"] for d in draws], axis=0)],
        "best_voice_weight": WEIGHTS[best],
        "best_fused_accuracy_mean": float(sweep_mean[best]),
        "per_class_recall_mean": {
            name: {c: float(np.mean([d["per_class_recall"][name][c] for d in draws])) for c in EMOTIONS}
            for name in ("face", "voice", "fused")
        },
        "draw_details": draws,
    }
    out.mkdir(parents=True, exist_ok=True)
    report["plot"] = str(plot(report, out / "fusion" / "fusion-weight.png").relative_to(out))
    report["models_sha256"] = shipped_sha256(["face", "voice"])
    (out / "fusion_pseudo_paired.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "fusion_pseudo_paired.md").write_text(render(report))
    return report


def render(r: dict[str, Any]) -> str:
    """The markdown of fusion_pseudo_paired.json."""

    def acc(key: str) -> str:
        s = r[key]
        return f"{100 * s['mean']:.2f}% | {100 * s['min']:.2f}-{100 * s['max']:.2f}%"

    lines = [
        "# Fusion: pseudo-paired face + voice (held-out, same label; NOT real paired recordings)",
        "",
        f"Command: `.venv/bin/python benchmarks/suite/fusion_pseudo_paired.py{' --quick' if r['quick'] else ''}`  ",
        f"Date: {r['date']}; seed {r['seed']}, {r['draws']} draws of the pairing.",
        "",
        f"{r['n_pairs']} pairs: every RAVDESS actor 17-20 clip with speech ({r['voice']['no_speech']} without) paired "
        f"with a FER2013 PublicTest face of the same emotion (pool {r['face']['n_pool']:,} faces), drawn without "
        "replacement within the class; shipped int8 `face` and `voice` models; fused by "
        f"{r['fusion']}. Face and voice come from different people, so their errors are independent: the fused "
        "accuracy is an optimistic estimate of what late fusion adds.",
        "",
        "| | accuracy (mean of draws) | min-max over draws |",
        "|---|---|---|",
        f"| face only (`face`, int8 TFLite) | {acc('face_accuracy')} |",
        f"| voice only (`voice`, int8 TFLite) | {acc('voice_accuracy')} |",
        f"| fused, daemon default weights (face 1, voice 1) | {acc('fused_accuracy_default')} |",
        f"| best swept voice weight w = {r['best_voice_weight']:.2f} | {100 * r['best_fused_accuracy_mean']:.2f}% "
        "| – |",
        "",
        f"Both modalities wrong on {100 * r['both_wrong']['mean']:.2f}% of pairs (mean): no late fusion can fix "
        "those.",
        "",
        "## Per-class recall (mean of draws)",
        "",
        "| class (pairs) | face | voice | fused (default) |",
        "|---|---|---|---|",
    ]
    pc = r["per_class_recall_mean"]
    for c, n in r["class_counts"].items():
        lines.append(f"| {c} ({n}) | {100 * pc['face'][c]:.1f}% | {100 * pc['voice'][c]:.1f}% | "
                     f"{100 * pc['fused'][c]:.1f}% |")
    lines += ["", "## Fused accuracy against the voice weight (face weight 1 - w)", "",
              "| w (voice) | " + " | ".join(f"{w:.2f}" for w in r["weights"][::2]) + " |",
              "|---|" + "---|" * len(r["weights"][::2]),
              "| fused, entropy confidence (mean) | "
              + " | ".join(f"{100 * v:.1f}%" for v in r["sweep_entropy_mean"][::2]) + " |",
              "| fused, no confidence term (mean) | "
              + " | ".join(f"{100 * v:.1f}%" for v in r["sweep_no_confidence_mean"][::2]) + " |",
              "", f"Plot: `{r['plot']}` (every 0.05 of w).", ""]
    return "\n".join(lines)


def plot(r: dict[str, Any], path: Path) -> Path:
    """Fused accuracy against the voice weight, with the face-only and voice-only levels."""
    from matplotlib.figure import Figure

    w = np.array(r["weights"])
    fig = Figure(figsize=(11, 5.2), dpi=120, layout="constrained")
    ax = fig.subplots()
    mean = 100 * np.array(r["sweep_entropy_mean"])
    ax.fill_between(w, 100 * np.array(r["sweep_entropy_min"]), 100 * np.array(r["sweep_entropy_max"]), alpha=0.2,
                    color="C0", label=f"fused: min-max over {r['draws']} pairings")
    ax.plot(w, mean, "o-", color="C0", label="fused (entropy confidence, as the daemon)")
    ax.plot(w, 100 * np.array(r["sweep_no_confidence_mean"]), "s--", color="C2", markersize=4,
            label="fused without the confidence term")
    ax.axhline(100 * r["face_accuracy"]["mean"], color="C1", ls=":",
               label=f"face only {r['face_accuracy']['mean']:.1%}")
    ax.axhline(100 * r["voice_accuracy"]["mean"], color="C3", ls=":",
               label=f"voice only {r['voice_accuracy']['mean']:.1%}")
    d = r["fused_accuracy_default"]["mean"]
    ax.plot([DEFAULT_W], [100 * d], "*", color="k", markersize=14, label=f"daemon default (1, 1): {d:.1%}")
    ax.set_xlabel("voice weight w (face weight 1 - w)")
    ax.set_ylabel("accuracy (%)")
    ax.set_xlim(-0.02, 1.02)
    ax.set_title(f"Pseudo-paired fusion: {r['n_pairs']} RAVDESS 17-20 clips + same-label FER2013 PublicTest faces"
                 + (" (QUICK slice)" if r["quick"] else ""), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="29 faces and 6 clips per class.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    report = run(args.out, args.quick)
    print(render(report))


if __name__ == "__main__":
    main()
