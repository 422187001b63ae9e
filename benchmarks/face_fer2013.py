"""Benchmark the shipped face models on FER2013 PublicTest and write the committed results.

    .venv/bin/python benchmarks/face_fer2013.py [--threads 1] [--data ../shared/data/fer2013/publictest]

Runs ``edgeemo bench face face-float face-onnx`` (the same command a user runs) and writes
benchmarks/results/face_fer2013_publictest.{json,md} and the confusion matrices in
benchmarks/results/face_fer2013/. PublicTest is never used for training or tuning:
validation for checkpoints and the LR schedule is cut from train/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MODELS = ("face-float", "face", "face-onnx")


def pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f}%"


def render(report: dict, command: str, note: str = "") -> str:
    models = report["models"]
    names = [m["model"] for m in models]
    lines = [
        "# Face: FER2013 PublicTest (3,589 faces, held out)",
        "",
        f"Command: `{command}`  ",
        f"Date: {report['date']}; edgeemo {report['edgeemo_version']}; machine: {report['machine'].get('cpu')}, "
        f"{report['machine'].get('cores')} cores; threads per model: {models[0]['threads']}.",
        "",
        *([f"Note: {note}", ""] if note else []),
        "Training: FER2013 `train/` minus a 10% stratified validation slice (checkpoint, early stopping and",
        "LR schedule use that slice only); PublicTest is only measured. See each manifest's `training`.",
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]

    def row(label: str, values: list[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(values) + " |")

    row("format / backend", [f"{m['format']} / {m['backend']}" for m in models])
    row("quantization", [m["quantization"] for m in models])
    row("accuracy", [pct(m["accuracy"]) for m in models])
    row("macro-F1", [f"{m['macro_f1']:.4f}" for m in models])
    row("UAR (mean recall)", [f"{m['uar']:.4f}" for m in models])
    row(
        "latency p50 / p90 / p99 (ms, batch 1)",
        [f"{m['latency_ms']['p50']:.3f} / {m['latency_ms']['p90']:.3f} / {m['latency_ms']['p99']:.3f}" for m in models],
    )
    row("throughput batch 1 (faces/s)", [f"{m['throughput_per_s']:.0f}" for m in models])
    row("edgeemo overhead vs bare invoke", [f"{m['invoke_overhead_ratio']:.2f}x" for m in models])
    row("model size", [f"{m['size_bytes'] / 1e6:.2f} MB" for m in models])
    row("process peak RSS", [f"{m['peak_rss_mb']:.0f} MiB" if m["peak_rss_mb"] else "–" for m in models])
    for key, label in (
        ("top1_agreement", "top-1 agreement with float (export check)"),
        ("max_abs_prob_diff", "max prob difference vs float (export check)"),
    ):
        row(
            label,
            [f"{m['manifest_metrics'][key]:.4f}" if key in m.get("manifest_metrics", {}) else "–" for m in models],
        )
    lines += ["", "## Per class (precision / recall / F1)", ""]
    labels = list(models[0]["per_class"])
    lines.append("| class (support) | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for c in labels:
        support = models[0]["per_class"][c]["support"]
        cells = [
            f"{m['per_class'][c]['precision']:.3f} / {m['per_class'][c]['recall']:.3f} / {m['per_class'][c]['f1']:.3f}"
            for m in models
        ]
        lines.append(f"| {c} ({support}) | " + " | ".join(cells) + " |")
    float_model = next((m for m in models if m["quantization"] == "none"), None)
    if float_model:
        lines += ["", "## int8 change per class (recall, points vs the float TFLite parent)", ""]
        quant = [m for m in models if m["quantization"] != "none"]
        lines.append("| class | " + " | ".join(m["model"] for m in quant) + " |")
        lines.append("|---|" + "---|" * len(quant))
        for c in labels:
            base = float_model["per_class"][c]["recall"]
            lines.append(
                f"| {c} | " + " | ".join(f"{100 * (m['per_class'][c]['recall'] - base):+.2f}" for m in quant) + " |"
            )
    lines += [
        "",
        "Confusion matrices: " + ", ".join(f"`face_fer2013/confusion-{n}.png`" for n in names) + ".",
        "",
        "Prior work on FER2013 (from ../shared/reference/prior-work.md, their own splits): seed custom CNNs 64-68%,",
        "mini-Xception 66%, VGG-style single models ~73%.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fer2013" / "publictest"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--note", default="", help="A line about the conditions, written into the report.")
    args = parser.parse_args()
    out_json = RESULTS / "face_fer2013_publictest.json"
    plots = RESULTS / "face_fer2013"
    plots.mkdir(parents=True, exist_ok=True)
    cmd = ["edgeemo", "bench", *MODELS, "--data", args.data, "--threads", str(args.threads)]
    cmd += [
        "--runs",
        str(args.runs),
        "--json",
        str(out_json.relative_to(ROOT)),
        "--plot-dir",
        str(plots.relative_to(ROOT)),
    ]
    exe = Path(sys.executable).parent / "edgeemo"
    subprocess.run([str(exe), *cmd[1:]], cwd=ROOT, check=True)
    report = json.loads(out_json.read_text())
    shown = " ".join(c if not c.startswith(str(ROOT.parent)) else "../shared/data/fer2013/publictest" for c in cmd)
    (RESULTS / "face_fer2013_publictest.md").write_text(render(report, shown, args.note))
    print(f"wrote {out_json} and {RESULTS / 'face_fer2013_publictest.md'}")


if __name__ == "__main__":
    main()
