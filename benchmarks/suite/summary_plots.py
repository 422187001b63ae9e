"""Cross-benchmark plots from the result JSON files: Pareto (accuracy vs size, accuracy vs latency)
and the per-class recall change under int8.

    .venv/bin/python benchmarks/suite/summary_plots.py [--out benchmarks/results]

Reads ``face_fer2013_publictest.json``, ``voice_ravdess_17-20.json`` (shipped models) and, where
present, the trained-but-not-shipped models' JSON (``face_mobilenetv3_fer2013_publictest.json``,
``voice_recurrent_ravdess_17-20.json``, ``voice_multicorpus_ravdess_17-20.json``) from ``--out``, and the
peer's ``peer_fer.json`` from its sibling ``experiments/``. Writes ``plots/pareto-face.png``,
``plots/pareto-voice.png`` and ``plots/int8-per-class.png``; returns the points it plotted (in suite.json).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "suite"

FACE_SOURCES = (("face_fer2013_publictest.json", "shipped custom CNN"),
                ("face_mobilenetv3_fer2013_publictest.json", "MobileNetV3Small (not shipped)"))
VOICE_SOURCES = (("voice_ravdess_17-20.json", "shipped"),
                 ("voice_recurrent_ravdess_17-20.json", "CRNN / LSTM (not shipped)"),
                 ("voice_multicorpus_ravdess_17-20.json", "multi-corpus Conv1D (not shipped)"))


def bench_points(out: Path, sources: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    """One point per model of each bench JSON found in ``out``."""
    points = []
    for file, group in sources:
        path = out / file
        if not path.exists():
            continue
        report = json.loads(path.read_text())
        for m in report["models"]:
            points.append({
                "label": m["model"], "group": group, "source": file, "format": m["format"],
                "quantization": m["quantization"], "accuracy": m["accuracy"], "size_bytes": m["size_bytes"],
                "latency_p50_ms": m["latency_ms"]["p50"], "n": m["n"],
            })
    return points


def peer_points(out: Path) -> list[dict[str, Any]]:
    """The fer peer from peer_fer.json (its own timing loop: preprocessing + model call)."""
    path = out.parent / "experiments" / "peer_fer.json"  # out is results/suite
    if not path.exists():
        return []
    peer = json.loads(path.read_text())
    row = peer.get("models", {}).get("fer")
    if row is None:
        return []
    return [{
        "label": f"fer {peer['versions']['fer_venv']['fer_version']} (peer)", "group": "peer: fer (PyPI)",
        "source": "peer_fer.json", "format": "tflite", "quantization": "dynamic", "accuracy": row["accuracy"],
        "size_bytes": row["size_bytes"], "latency_p50_ms": row["latency"]["total_ms"]["p50"], "n": row["n"],
    }]


def pareto_front(points: list[dict[str, Any]], x: str) -> list[dict[str, Any]]:
    """Points no other point beats on both ``x`` (lower is better) and accuracy (higher is better)."""
    front = [p for p in points if not any(q[x] <= p[x] and q["accuracy"] >= p["accuracy"]
                                          and (q[x] < p[x] or q["accuracy"] > p["accuracy"]) for q in points)]
    return sorted(front, key=lambda p: p[x])


def plot_pareto(points: list[dict[str, Any]], title: str, path: Path) -> Path:
    """Two panels: accuracy vs model size and accuracy vs p50 latency (log x), Pareto front drawn."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda v, _pos: f"{v:g}")
    minor = FuncFormatter(lambda v, _pos: f"{v:g}" if f"{v:.0e}"[0] in "25" else "")
    groups = list(dict.fromkeys(p["group"] for p in points))
    markers = {"none": "o", "int8": "s", "dynamic": "^"}
    fig = Figure(figsize=(16, 6), dpi=110, layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, key, xlabel, scale in ((axes[0], "size_bytes", "model file size (MB, log scale)", 1e-6),
                                   (axes[1], "latency_p50_ms", "p50 latency, batch 1, 1 thread (ms, log scale)", 1.0)):
        for gi, g in enumerate(groups):
            for p in (q for q in points if q["group"] == g):
                face = f"C{gi}" if p["format"] == "tflite" else "white"
                ax.scatter(p[key] * scale, 100 * p["accuracy"], marker=markers.get(p["quantization"], "D"), s=70,
                           facecolors=face, edgecolors=f"C{gi}", linewidths=1.6, zorder=3)
                ax.annotate(p["label"], (p[key] * scale, 100 * p["accuracy"]), fontsize=7,
                            xytext=(6, 4) if p["format"] == "tflite" else (6, -10), textcoords="offset points")
        front = pareto_front(points, key)
        ax.step([p[key] * scale for p in front], [100 * p["accuracy"] for p in front], where="post", color="grey",
                ls="--", lw=1, zorder=1, label="Pareto front")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(minor)
        ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3, which="both")
    handles = [axes[0].scatter([], [], marker="o", facecolors=f"C{i}", edgecolors=f"C{i}", label=g)
               for i, g in enumerate(groups)]
    handles += [axes[0].scatter([], [], marker=m, facecolors="grey", edgecolors="grey", label=f"{q}")
                for q, m in markers.items() if any(p["quantization"] == q for p in points)]
    handles.append(axes[0].scatter([], [], marker="o", facecolors="white", edgecolors="grey",
                                   label="hollow: ONNX (onnxruntime); filled: TFLite (LiteRT)"))
    fig.legend(handles=handles, fontsize=8, loc="outside right upper")
    fig.suptitle(title, fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def int8_deltas(out: Path) -> dict[str, dict[str, dict[str, float]]]:
    """Per task: '<int8 model> vs <float parent>' -> class -> recall change in points."""
    from edgeemo.report import float_parent, recall_change

    deltas: dict[str, dict[str, dict[str, float]]] = {}
    for task, file in (("face (FER2013 PublicTest)", "face_fer2013_publictest.json"),
                       ("voice (RAVDESS 17-20)", "voice_ravdess_17-20.json")):
        path = out / file
        if not path.exists():
            continue
        models = json.loads(path.read_text())["models"]
        deltas[task] = {}
        for m in models:
            parent = float_parent(m, models)
            if parent is not None:
                deltas[task][f"{m['model']} vs {parent['model']}"] = {
                    c: 100 * recall_change(m, parent, c) for c in m["per_class"]}
    return deltas


def plot_deltas(deltas: dict[str, dict[str, dict[str, float]]], path: Path, supports: dict[str, dict[str, int]]
                ) -> Path:
    """Grouped bars: recall change per class of each int8 model vs its float parent."""
    import numpy as np
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 5), dpi=110, layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(deltas)))
    for ax, (task, pairs) in zip(axes, deltas.items(), strict=True):
        classes = list(next(iter(pairs.values())))
        x = np.arange(len(classes))
        width = 0.8 / max(1, len(pairs))
        for i, (name, d) in enumerate(pairs.items()):
            vals = [d[c] for c in classes]
            bars = ax.bar(x + (i - (len(pairs) - 1) / 2) * width, vals, width, label=name)
            ax.bar_label(bars, fmt="%+.1f", fontsize=7, padding=2)
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x, [f"{c}\n({supports[task].get(c, '?')})" for c in classes])
        ax.set_ylabel("recall change under int8 (points)")
        ax.set_title(f"{task}: int8 minus float parent, per class (support)", fontsize=10)
        lim = max(2.0, max(abs(v) for d in pairs.values() for v in d.values()) * 1.35)
        ax.set_ylim(-lim, lim)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def run(out: Path = RESULTS, quick: bool = False) -> dict[str, Any]:
    """Write the Pareto and int8-delta plots from the JSON files in ``out``; return what was plotted."""
    face = bench_points(out, FACE_SOURCES) + peer_points(out)
    voice = bench_points(out, VOICE_SOURCES)
    tag = " (QUICK: edgeemo points measured on a slice)" if quick else ""
    files = [
        plot_pareto(face, "Face, FER2013 PublicTest: accuracy vs size and latency (fer: peer_fer.md's own timing "
                    "loop, preprocessing included)" + tag, out / "plots" / "pareto-face.png"),
        plot_pareto(voice, "Voice, RAVDESS actors 17-20: accuracy vs size and latency" + tag,
                    out / "plots" / "pareto-voice.png"),
    ]
    deltas = int8_deltas(out)
    supports = {}
    for task, file in (("face (FER2013 PublicTest)", "face_fer2013_publictest.json"),
                       ("voice (RAVDESS 17-20)", "voice_ravdess_17-20.json")):
        if (out / file).exists():
            m0 = json.loads((out / file).read_text())["models"][0]
            supports[task] = {c: v["support"] for c, v in m0["per_class"].items()}
    files.append(plot_deltas(deltas, out / "plots" / "int8-per-class.png", supports))
    return {
        "pareto_face": face,
        "pareto_face_front_size": [p["label"] for p in pareto_front(face, "size_bytes")],
        "pareto_face_front_latency": [p["label"] for p in pareto_front(face, "latency_p50_ms")],
        "pareto_voice": voice,
        "pareto_voice_front_size": [p["label"] for p in pareto_front(voice, "size_bytes")],
        "pareto_voice_front_latency": [p["label"] for p in pareto_front(voice, "latency_p50_ms")],
        "int8_recall_change_points": deltas,
        "plots": [str(f.relative_to(out)) for f in files],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    print(json.dumps(run(args.out)["plots"]))


if __name__ == "__main__":
    main()
