"""Fusion on pseudo-paired held-out data: face-only, voice-only and fused accuracy, and the fusion weight.

    .venv/bin/python benchmarks/suite/fusion_pseudo_paired.py [--quick] [--voice voice] [--face face] [--out DIR]

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
``w = 0.5``. A voice model that adapts to its speaker hears each speaker's clips in a seeded
order (as ``edgeemo bench``); a model that does not is unaffected.

Out of domain (``out_of_domain`` in the JSON): the voices are the CREMA-D speakers the voice
model never trained on (read from its manifest: all of 1001-1010 for a model that never heard
CREMA-D, 1009-1010 for one trained on 1001-1008), the faces are ``taiwanese-faces`` photos
(people and a camera no face model here trained on) of the same emotion, each photo going
through the daemon's face path (``daemon_face_path``: its detector from the ``[pipeline]``
settings, its crop, then the face model); a photo where no face is found gives the daemon no
face reading, so the pair is fused from the voice alone and face-only counts it wrong.
Photos are fewer than clips per class, so each clip's photo is drawn WITH replacement within
the class, ``DRAWS`` times from one seed. Writes ``fusion_pseudo_paired.{json,md}``,
``fusion/fusion-weight.png`` and ``fusion/fusion-weight-ood.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
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
OOD_CORPUS = "cremad"
FACES = DATA / "taiwanese-faces"


def fused_labels(face_p: np.ndarray, voice_p: np.ndarray, face_labels: list[str], voice_labels: list[str],
                 w_voice: float, confidence: str = "entropy", face_found: np.ndarray | None = None) -> np.ndarray:
    """EMOTIONS index of the fused label of each pair, through ``edgeemo.fusion.Fusion``; where
    ``face_found`` is False the face reading is "no face" (None), as the daemon's."""
    from edgeemo.fusion import Fusion, FusionConfig
    from edgeemo.labels import EMOTIONS

    config = FusionConfig(weights={"face": 1.0 - w_voice, "voice": w_voice}, smoothing_s=0.0, confidence=confidence)
    out = np.empty(len(face_p), np.int64)
    found = np.ones(len(face_p), bool) if face_found is None else face_found
    for i, (fp, vp) in enumerate(zip(face_p, voice_p, strict=True)):
        fusion = Fusion(config)
        fusion.update("face", fp if found[i] else None, 0.0, face_labels)
        fusion.update("voice", vp, 0.0, voice_labels)
        out[i] = EMOTIONS.index(fusion.result(0.0)["fused"]["label"])
    return out


def pairs(face_y: np.ndarray, voice_y: np.ndarray, rng: np.random.Generator, replace: bool = False) -> np.ndarray:
    """For each voice clip, the index of a face with the same label (without replacement within a class,
    unless ``replace``)."""
    idx = np.empty(len(voice_y), np.int64)
    for c in np.unique(voice_y):
        clips = np.flatnonzero(voice_y == c)
        faces = np.flatnonzero(face_y == c)
        if len(faces) == 0 or (len(faces) < len(clips) and not replace):
            raise ValueError(f"class {c}: {len(clips)} clips but only {len(faces)} faces")
        idx[clips] = rng.choice(faces, size=len(clips), replace=replace)
    return idx


def recalls(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Recall of each EMOTIONS class (0 for a class with no sample); a prediction of -1 (no answer) is wrong."""
    from edgeemo.labels import EMOTIONS

    return {name: float(np.mean(pred[y == c] == c)) if np.any(y == c) else 0.0 for c, name in enumerate(EMOTIONS)}


def score_draws(face_probs: np.ndarray, face_y: np.ndarray, voice_probs: np.ndarray, voice_y: np.ndarray,
                face_model: Any, voice_model: Any, rng: np.random.Generator, say: Callable[[str], None],
                face_found: np.ndarray | None = None, replace: bool = False) -> dict[str, Any]:
    """``DRAWS`` pairings of every clip with a same-label face: face-only, voice-only, fused at the
    daemon's default weights, and the weight sweep; the summary keys of the report."""
    from edgeemo.labels import EMOTIONS

    found_all = np.ones(len(face_probs), bool) if face_found is None else face_found
    f_labels, v_labels = list(face_model.labels), list(voice_model.labels)
    draws = []
    for d in range(DRAWS):
        say(f"fusing draw {d + 1}/{DRAWS} ...")
        fi = pairs(face_y, voice_y, rng, replace)
        fp, vp, found = face_probs[fi], voice_probs, found_all[fi]
        face_pred = np.where(found, face_model.canonical_index[fp.argmax(1)], -1)  # no face: no answer
        voice_pred = voice_model.canonical_index[vp.argmax(1)]
        sweep = {conf: [float(np.mean(fused_labels(fp, vp, f_labels, v_labels, w, conf, found) == voice_y))
                        for w in WEIGHTS] for conf in ("entropy", "none")}
        default_pred = fused_labels(fp, vp, f_labels, v_labels, DEFAULT_W, face_found=found)
        draws.append({
            "face_accuracy": float(np.mean(face_pred == voice_y)),
            "voice_accuracy": float(np.mean(voice_pred == voice_y)),
            "fused_accuracy_default": float(np.mean(default_pred == voice_y)),
            "both_wrong": float(np.mean((face_pred != voice_y) & (voice_pred != voice_y))),
            "sweep_entropy": sweep["entropy"],
            "sweep_no_confidence": sweep["none"],
            "per_class_recall": {name: recalls(voice_y, pred) for name, pred in
                                 (("face", face_pred), ("voice", voice_pred), ("fused", default_pred))},
        })

    def stats(key: str) -> dict[str, float]:
        v = np.array([d[key] for d in draws])
        return {"mean": float(v.mean()), "min": float(v.min()), "max": float(v.max()), "draw0": float(v[0])}

    sweep_mean = np.mean([d["sweep_entropy"] for d in draws], axis=0)
    best = int(np.argmax(sweep_mean))
    return {
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


def voice_probabilities(model: Any, corpus: str, speakers: list[str], limit: int | None,
                        say: Callable[[str], None]) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(probabilities, EMOTIONS labels, info) of a corpus's clips of ``speakers`` through ``model``; an adapting
    model hears each speaker's clips in a seeded order (``edgeemo bench``'s default), others every clip alone."""
    from edgeemo.bench import adaptation_note, load_clips
    from edgeemo.voice import preprocess_files

    clips = load_clips(DATA / corpus, speakers, limit)
    say(f"scoring {len(clips)} clips ...")
    xv, kept = preprocess_files(clips.paths, model.preprocessing, speakers=list(map(str, clips.groups)), seed=SEED)
    info = {"n": int(len(kept)), "no_speech": int(len(clips) - len(kept)), "speakers": clips.speakers(),
            "adaptation": adaptation_note([model.preprocessing], True, SEED)}
    return model.predict(xv), clips.labels[kept], info


def daemon_face_path(model: Any, config: Path | None = None) -> Any:
    """The daemon's face path for ``model``: ``FacePath`` with the detector, crop margin and detection width
    of the ``[pipeline]`` settings (``config``: a device.toml; None: the daemon's defaults), built as
    ``edgeemo.device.daemon.build_pipeline`` builds it, except that every photo is detected afresh
    (``detect_every`` 1: the photos are not frames of one video)."""
    from edgeemo.device.config import load_config
    from edgeemo.device.paths import FacePath, make_detector

    p = load_config(config).pipeline
    return FacePath(model, make_detector(p), margin=p.face_margin, detect_width=p.detect_width, detect_every=1)


def photo_probabilities(model: Any, limit: int | None, config: Path | None,
                        say: Callable[[str], None]) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """(probabilities, EMOTIONS labels, face found, info) of every ``taiwanese-faces`` photo (labels.csv)
    through the daemon's face path; a photo without a face gets a row of zeros and found False."""
    import cv2

    from edgeemo.device.config import load_config
    from edgeemo.labels import EMOTIONS

    with (FACES / "labels.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    if limit:
        kept: list[dict[str, str]] = []
        for r in rows:
            if sum(k["label"] == r["label"] for k in kept) < limit:
                kept.append(r)
        rows = kept
    path = daemon_face_path(model, config)
    say(f"detecting and scoring {len(rows)} photos ...")
    probs = np.zeros((len(rows), len(model.labels)), np.float32)
    found = np.zeros(len(rows), bool)
    for i, row in enumerate(rows):
        frame = cv2.imread(str(FACES / row["path"]), cv2.IMREAD_COLOR)  # BGR, as a camera frame
        if frame is None:
            raise ValueError(f"cannot read {FACES / row['path']}")
        p = path(frame)
        if p is not None:
            probs[i], found[i] = p, True
    y = np.array([EMOTIONS.index(r["label"]) for r in rows], np.int64)
    settings = load_config(config).pipeline
    info = {"n_photos": len(rows), "faces_found": int(found.sum()), "performers": len({r["performer"] for r in rows}),
            "detector": f"{type(path.detector).__name__} ([pipeline] detector = {settings.detector!r})",
            "face_margin": settings.face_margin, "detect_width": settings.detect_width,
            "device_config": str(config) if config else "the daemon's defaults"}
    return probs, y, found, info


def run(out: Path = RESULTS, quick: bool = False, say: Callable[[str], None] = print, voice: str = "voice",
        face: str = "face", device_config: Path | None = None) -> dict[str, Any]:
    """Score face-only, voice-only and fused accuracy on pseudo-pairs, in domain (RAVDESS 17-20 + FER2013
    PublicTest) and out of domain (unseen CREMA-D speakers + Taiwanese photos through the daemon's face path);
    write JSON, markdown and the plots."""
    from edgeemo.bench import machine_info
    from edgeemo.face import preprocess_faces
    from edgeemo.face_datasets import load_faces
    from edgeemo.labels import EMOTIONS
    from edgeemo.predict import open_emotion_model

    face_model = open_emotion_model(face, threads=1)
    voice_model = open_emotion_model(voice, threads=1)
    faces = load_faces(DATA / "fer2013" / "publictest", limit_per_class=29 if quick else None)
    say(f"scoring {len(faces)} faces ...")
    face_probs = face_model.predict(preprocess_faces(faces.images, face_model.preprocessing))
    voice_probs, voice_y, vinfo = voice_probabilities(voice_model, "ravdess", ["17", "18", "19", "20"],
                                                      6 if quick else None, say)
    rng = np.random.default_rng(SEED)
    report: dict[str, Any] = {
        "quick": quick,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "machine": machine_info(),
        "seed": SEED,
        "draws": DRAWS,
        "n_pairs": int(len(voice_y)),
        "class_counts": {EMOTIONS[c]: int(np.sum(voice_y == c)) for c in np.unique(voice_y)},
        "face": {"model": face, "file": face_model.path.name, "sha256": sha256(face_model.path),
                 "data": "FER2013 PublicTest", "n_pool": len(faces)},
        "voice": {"model": voice, "file": voice_model.path.name, "sha256": sha256(voice_model.path),
                  "data": "RAVDESS actors 17-20", **vinfo},
        "fusion": "edgeemo.fusion.Fusion: log-linear pooling, weights face 1-w / voice w, entropy confidence, "
                  "smoothing_s 0",
        **score_draws(face_probs, faces.labels, voice_probs, voice_y, face_model, voice_model, rng, say),
    }
    report["out_of_domain"] = out_of_domain(face_model, voice_model, quick, device_config, say)
    out.mkdir(parents=True, exist_ok=True)
    report["plot"] = str(plot(report, out / "fusion" / "fusion-weight.png").relative_to(out))
    ood = report["out_of_domain"]
    if "skipped" not in ood:
        ood["plot"] = str(plot(ood, out / "fusion" / "fusion-weight-ood.png", ood_title(ood)).relative_to(out))
    report["models_sha256"] = shipped_sha256(["face", "voice"])
    (out / "fusion_pseudo_paired.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "fusion_pseudo_paired.md").write_text(render(report))
    return report


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def unseen_speakers(voice_model: Any, corpus: str) -> tuple[list[str], str]:
    """The speakers of ``corpus`` in ../shared/data that the voice model never trained or validated on
    (from its manifest, as ``voice_transfer.held_out`` reads it), and a note."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from voice_transfer import corpus_speakers, held_out

    manifest = voice_model.runner.manifest
    training = (manifest.training if manifest is not None else None) or {}
    return held_out({"training": training}, corpus, [s.split(":", 1)[1] for s in corpus_speakers(corpus)])


def out_of_domain(face_model: Any, voice_model: Any, quick: bool, device_config: Path | None,
                  say: Callable[[str], None]) -> dict[str, Any]:
    """Unseen CREMA-D voices with same-label Taiwanese photos through the daemon's face path (see the module)."""
    from edgeemo.labels import EMOTIONS

    speakers, note = unseen_speakers(voice_model, OOD_CORPUS)
    if not speakers:
        return {"skipped": f"no CREMA-D speaker the voice model did not train on ({note})"}
    voice_probs, voice_y, vinfo = voice_probabilities(voice_model, OOD_CORPUS, speakers, 3 if quick else None, say)
    face_probs, face_y, found, finfo = photo_probabilities(face_model, 8 if quick else None, device_config, say)
    classes = np.unique(voice_y)
    pool = np.isin(face_y, classes)
    face_pred = np.where(found, face_model.canonical_index[face_probs.argmax(1)], -1)
    rng = np.random.default_rng(SEED + 1)
    return {
        "quick": quick,
        "n_pairs": int(len(voice_y)),
        "class_counts": {EMOTIONS[c]: int(np.sum(voice_y == c)) for c in classes},
        "photos_per_class": {EMOTIONS[c]: int(np.sum(face_y == c)) for c in classes},
        "pairing": f"each clip's photo drawn with replacement within its class, {DRAWS} draws, seed {SEED + 1}",
        "voice": {"data": f"CREMA-D speakers {', '.join(speakers)} (never trained on: from the manifest)",
                  "note": note, **vinfo},
        "face": {"data": "taiwanese-faces photos (labels.csv), whole photos through the daemon's face path",
                 **finfo, "pool_accuracy_paired_classes": float(np.mean(face_pred[pool] == face_y[pool])),
                 "pool_faces_found_paired_classes": float(np.mean(found[pool]))},
        **score_draws(face_probs, face_y, voice_probs, voice_y, face_model, voice_model, rng, say, found,
                      replace=True),
    }


def ood_title(r: dict[str, Any]) -> str:
    """The plot title of the out-of-domain part."""
    speakers = [s.split(":")[1] for s in r["voice"]["speakers"]]
    shown = ", ".join(speakers) if len(speakers) <= 4 else f"{speakers[0]}-{speakers[-1]}"
    return (f"Out of domain: {r['n_pairs']} CREMA-D clips ({shown}) + same-label Taiwanese photos through the "
            "daemon's face path")


def _acc(s: dict[str, float]) -> str:
    return f"{100 * s['mean']:.2f}% | {100 * s['min']:.2f}-{100 * s['max']:.2f}%"


def results_lines(r: dict[str, Any], face_name: str, voice_name: str) -> list[str]:
    """Accuracy table, per-class recall and the weight sweep of one part of the report."""
    lines = [
        "| | accuracy (mean of draws) | min-max over draws |",
        "|---|---|---|",
        f"| face only ({face_name}) | {_acc(r['face_accuracy'])} |",
        f"| voice only ({voice_name}) | {_acc(r['voice_accuracy'])} |",
        f"| fused, daemon default weights (face 1, voice 1) | {_acc(r['fused_accuracy_default'])} |",
        f"| best swept voice weight w = {r['best_voice_weight']:.2f} | {100 * r['best_fused_accuracy_mean']:.2f}% "
        "| – |",
        "",
        f"Both modalities wrong on {100 * r['both_wrong']['mean']:.2f}% of pairs (mean): no late fusion can fix "
        "those.",
        "",
        "Per-class recall (mean of draws):",
        "",
        "| class (pairs) | face | voice | fused (default) |",
        "|---|---|---|---|",
    ]
    pc = r["per_class_recall_mean"]
    for c, n in r["class_counts"].items():
        lines.append(f"| {c} ({n}) | {100 * pc['face'][c]:.1f}% | {100 * pc['voice'][c]:.1f}% | "
                     f"{100 * pc['fused'][c]:.1f}% |")
    lines += ["", "Fused accuracy against the voice weight (face weight 1 - w):", "",
              "| w (voice) | " + " | ".join(f"{w:.2f}" for w in r["weights"][::2]) + " |",
              "|---|" + "---|" * len(r["weights"][::2]),
              "| fused, entropy confidence (mean) | "
              + " | ".join(f"{100 * v:.1f}%" for v in r["sweep_entropy_mean"][::2]) + " |",
              "| fused, no confidence term (mean) | "
              + " | ".join(f"{100 * v:.1f}%" for v in r["sweep_no_confidence_mean"][::2]) + " |",
              "", f"Plot: `{r['plot']}` (every 0.05 of w).", ""]
    return lines


def render(r: dict[str, Any]) -> str:
    """The markdown of fusion_pseudo_paired.json."""
    cmd = ".venv/bin/python benchmarks/suite/fusion_pseudo_paired.py" + (" --quick" if r["quick"] else "")
    cmd += "".join(f" --{k} {r[k]['model']}" for k in ("voice", "face") if r[k]["model"] != k)
    face_name = f"`{r['face']['model']}`, {r['face']['file']}"
    voice_name = f"`{r['voice']['model']}`, {r['voice']['file']}"
    lines = [
        "# Fusion: pseudo-paired face + voice (held-out, same label; NOT real paired recordings)",
        "",
        f"Command: `{cmd}`  ",
        f"Date: {r['date']}; seed {r['seed']}, {r['draws']} draws of the pairing.",
        "",
        f"Models: face {face_name} (sha256 {r['face']['sha256'][:16]}), voice {voice_name} "
        f"(sha256 {r['voice']['sha256'][:16]}). Voice adaptation: {r['voice']['adaptation']}.",
        "",
        "## In domain: RAVDESS 17-20 voices + FER2013 PublicTest faces",
        "",
        f"{r['n_pairs']} pairs: every RAVDESS actor 17-20 clip with speech ({r['voice']['no_speech']} without) paired "
        f"with a FER2013 PublicTest face of the same emotion (pool {r['face']['n_pool']:,} faces), drawn without "
        f"replacement within the class; fused by {r['fusion']}. Face and voice come from different people, so their "
        "errors are independent: the fused accuracy is an optimistic estimate of what late fusion adds.",
        "",
        *results_lines(r, face_name, voice_name),
    ]
    o = r.get("out_of_domain") or {}
    lines += ["## Out of domain: unseen CREMA-D voices + Taiwanese photos through the daemon's face path", ""]
    if "skipped" in o:
        return "\n".join([*lines, f"Skipped: {o['skipped']}.", ""])
    if not o:
        return "\n".join([*lines, "Not measured in this report.", ""])
    f, v = o["face"], o["voice"]
    photos = ", ".join(f"{c} {n}" for c, n in o["photos_per_class"].items())
    lines += [
        f"{o['n_pairs']} pairs: every clip with speech ({v['no_speech']} without) of {v['data']}"
        + (f" ({v['note']})" if v.get("note") else "") + "; voice adaptation: " + v["adaptation"] + ".",
        "",
        f"Faces: {f['n_photos']} {f['data']} ({f['performers']} performers; photos per paired class: {photos}). "
        f"Detector {f['detector']}, detection width {f['detect_width']}, crop margin {f['face_margin']} "
        f"({f['device_config']}); a face found on {f['faces_found']} of {f['n_photos']} photos. On the photos of "
        f"the paired classes alone, face accuracy {100 * f['pool_accuracy_paired_classes']:.2f}% (no face found "
        "counts wrong).",
        "",
        f"Pairing: photos are fewer than clips per class, so {o['pairing']}; the min-max column is the spread "
        "over draws. A photo with no face gives no face reading: the pair is fused from the voice alone, as the "
        "daemon does. Different people again: an optimistic estimate of what late fusion adds.",
        "",
        *results_lines(o, face_name, voice_name),
    ]
    return "\n".join(lines)


def plot(r: dict[str, Any], path: Path, title: str | None = None) -> Path:
    """Fused accuracy against the voice weight, with the face-only and voice-only levels."""
    from matplotlib.figure import Figure

    w = np.array(r["weights"])
    fig = Figure(figsize=(11, 5.2), dpi=120, layout="constrained")
    ax = fig.subplots()
    mean = 100 * np.array(r["sweep_entropy_mean"])
    ax.fill_between(w, 100 * np.array(r["sweep_entropy_min"]), 100 * np.array(r["sweep_entropy_max"]), alpha=0.2,
                    color="C0", label=f"fused: min-max over {DRAWS} pairings")
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
    title = title or f"Pseudo-paired fusion: {r['n_pairs']} RAVDESS 17-20 clips + same-label FER2013 PublicTest faces"
    ax.set_title(title + (" (QUICK slice)" if r.get("quick") else ""), fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="In domain 29 faces and 6 clips per class; out of domain 8 photos and 3 clips per class.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--voice", default="voice", help="Voice model: shipped name or model file.")
    parser.add_argument("--face", default="face", help="Face model: shipped name or model file.")
    parser.add_argument("--device-config", type=Path, default=None,
                        help="device.toml whose [pipeline] detector settings the face path uses (default: the "
                        "daemon's defaults).")
    args = parser.parse_args()
    report = run(args.out, args.quick, print, args.voice, args.face, args.device_config)
    print(render(report))


if __name__ == "__main__":
    main()
