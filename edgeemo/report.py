"""Rendering of an ``edgeemo bench`` report: rich table, JSON file, confusion-matrix PNGs.

matplotlib is imported lazily and only for the plots; without it the plots are skipped
with one warning.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgeemo.bench import PEAK_RSS_LABEL, BenchReport, ModelResult
from edgeemo.labels import EMOTIONS

_VARIANT = re.compile(r"([-_.](int8|uint8|float16|float32|float|fp16|fp32|f32|quant|q8|tflite|onnx|keras))+$")


def family(label: str) -> str:
    """The model family of a label: ``face-int8.onnx`` and ``face-float`` are both ``face``."""
    return _VARIANT.sub("", label) or label


def _size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def _num(v: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def _unit(data: dict[str, Any]) -> str:
    """What the bench scored: voice reports carry speakers, face reports do not."""
    if "no_face" in data:  # whole photos through the camera path
        det = data["detector"]
        return (f"photos; {det['detector']} found no face in {data['no_face']} (counted wrong), "
                f"detection p50 {det['detect_ms']['p50']:.2f} ms")
    return "clips" if "speakers" in data else "faces"


def render_table(report: BenchReport, console: Console) -> None:
    """Print the models side by side: one column per model, one row per measurement."""
    results = report.models  # in the order given on the command line
    data = report.data
    overlap = data.get("trained_on_this_data") or {}
    for label, why in overlap.items():
        console.print(f"[red]warning:[/] {escape(label)} scores data it was trained on: {escape(why)}", highlight=False)
    rss = PEAK_RSS_LABEL.get(results[0].peak_rss_scope or "", "not available on this platform")
    table = Table(
        title=f"edgeemo bench: {data['dataset']} {data['split']}, {data['n']} {_unit(data)}, {report.machine['cpu']}",
        caption="Latency: batch 1 after warm-up, perf_counter around Runner.predict. "
        "Overhead: p50 predict / p50 bare invoke_raw. P/R/F1: precision/recall/F1. "
        f"Peak RSS: {rss}." + (f" Voice adaptation: {data['adaptation']}." if data.get("adaptation") else ""),
        caption_justify="left",
    )
    table.add_column("", style="bold", no_wrap=True)
    for r in results:
        table.add_column(r.model, justify="right", no_wrap=True)

    def row(name: str, get: Callable[[ModelResult], str]) -> None:
        table.add_row(name, *(get(r) for r in results))

    row("format", lambda r: r.format)
    row("quantization", lambda r: r.quantization)
    row("backend", lambda r: r.backend)
    row("threads", lambda r: str(r.threads))
    if overlap:
        row("trained on this data", lambda r: "[red]yes[/]" if r.model in overlap else "no")
    row(f"{_unit(data)} (n)", lambda r: str(r.n))
    table.add_section()
    best = max(r.accuracy for r in results)
    row(
        "accuracy",
        lambda r: ("[green]" if r.accuracy == best and len(results) > 1 else "") + f"{r.accuracy:.2%}",
    )
    row("macro-F1", lambda r: f"{r.macro_f1:.3f}")
    row("UAR (mean recall)", lambda r: f"{r.uar:.3f}")
    if any("accuracy" in r.manifest_metrics for r in results):
        row("accuracy at export", lambda r: _num(r.manifest_metrics.get("accuracy"), "{:.2%}"))
    table.add_section()
    row("per class (support)", lambda r: "P / R / F1")
    for label in EMOTIONS:
        support = results[0].per_class.get(label, {}).get("support", 0)
        row(
            f"  {label} ({support})",
            lambda r, k=label: " / ".join(f"{r.per_class[k][m]:.2f}" for m in ("precision", "recall", "f1")),
        )
    table.add_section()
    row("latency p50 (ms)", lambda r: f"{r.latency_ms['p50']:.3f}")
    row("latency p90 (ms)", lambda r: f"{r.latency_ms['p90']:.3f}")
    row("latency p99 (ms)", lambda r: f"{r.latency_ms['p99']:.3f}")
    row("throughput batch 1 (/s)", lambda r: f"{r.throughput_per_s:.0f}")
    row("throughput batched (/s)", lambda r: f"{r.batch_throughput_per_s:.0f}")
    row("edgeemo overhead (x)", lambda r: _num(r.invoke_overhead_ratio))
    row("preprocess 1 input (ms)", lambda r: f"{r.preprocess_ms:.3f}")
    table.add_section()
    row("model size", lambda r: _size(r.size_bytes))
    row("peak RSS (MiB)", lambda r: _num(r.peak_rss_mb, "{:.0f}"))
    row(
        "RSS added by it (MiB)",
        lambda r: _num(
            None if r.peak_rss_mb is None or r.baseline_rss_mb is None else r.peak_rss_mb - r.baseline_rss_mb,
            "{:.0f}",
        ),
    )
    print_wide(console, table)


def print_wide(console: Console, renderable: Any) -> None:
    """Print without squeezing into 80 columns when the output is a file or a pipe."""
    if console.is_terminal:
        console.print(renderable)
        return
    old_width = console.width
    wide = console.measure(renderable, options=console.options.update_width(1000)).maximum
    console.width = max(old_width, wide)
    try:
        console.print(renderable)
    finally:
        console.width = old_width


def write_json(report: BenchReport, path: str | Path) -> Path:
    """Write the report as JSON (NaN written as null)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(report.to_dict()), indent=2) + "\n")
    return path


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def plot_file_name(label: str) -> str:
    """``confusion-<label>.png`` with the label made safe for a file name."""
    return "confusion-" + re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") + ".png"


def plot_confusion(result: ModelResult, out_dir: str | Path) -> Path:
    """Row-normalised confusion matrix with counts, as ``<out_dir>/confusion-<model>.png``."""
    import numpy as np
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    cm = np.asarray(result.confusion_matrix, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    fig = Figure(figsize=(7.5, 6.5), dpi=120, layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, label="fraction of the true class (row)")
    ticks = range(len(EMOTIONS))
    ax.set_xticks(ticks, EMOTIONS, rotation=35, ha="right")
    ax.set_yticks(ticks, [f"{e} ({int(n)})" for e, n in zip(EMOTIONS, rows[:, 0], strict=True)])
    ax.set_xlabel("predicted emotion")
    ax.set_ylabel("true emotion (support)")
    ax.set_title(
        f"{result.model} ({result.quantization}, {result.backend})\n"
        f"accuracy {result.accuracy:.1%}, macro-F1 {result.macro_f1:.3f}, n={result.n}"
    )
    for i in ticks:
        for j in ticks:
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}\n{int(cm[i, j])}" if cm[i, j] else "0",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if norm[i, j] > 0.55 else "black",
            )
    out = Path(out_dir) / plot_file_name(result.model)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def write_plots(report: BenchReport, out_dir: str | Path, warn: Callable[[str], None]) -> list[Path]:
    """One confusion PNG per model; without matplotlib, warn once and write none."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        warn("matplotlib is not installed: no confusion-matrix plots (pip install 'edgeemo[plots]')")
        return []
    return [plot_confusion(r, out_dir) for r in report.models]


# ----------------------------------------------------------------------------- markdown


def pct(v: float | None) -> str:
    """A fraction as a percentage with two decimals; an en dash for None."""
    return "–" if v is None else f"{100 * v:.2f}%"


def _is_float(m: dict[str, Any]) -> bool:
    return m["quantization"] in ("none", "float32", "float16")


def float_parent(m: dict[str, Any], models: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The float model a quantised model of a JSON report is compared with: same family and
    format if there is one, else the first float model of its family, else the first float one;
    None for a float model."""
    if _is_float(m):
        return None
    floats = [f for f in models if _is_float(f)]
    same_family = [f for f in floats if family(f["model"]) == family(m["model"])] or floats
    same_format = [f for f in same_family if f["format"] == m["format"]]
    return (same_format or same_family or [None])[0]


def recall_change(m: dict[str, Any], parent: dict[str, Any] | None, label: str) -> float:
    """Recall of ``label`` of model ``m`` minus its float parent's (a fraction)."""
    if parent is None:
        return 0.0
    return m["per_class"][label]["recall"] - parent["per_class"][label]["recall"]


def _agreement_cell(m: dict[str, Any], models: Sequence[dict[str, Any]]) -> str:
    parent = float_parent(m, models)
    if parent is None:
        others = {k: v for k, v in m.get("top1_agreement", {}).items() if k != m["model"]}
        return ", ".join(f"{pct(v)} with {k}" for k, v in others.items()) or "–"
    value = m.get("top1_agreement", {}).get(parent["model"])
    return "–" if value is None else f"{pct(value)} ({parent['model']})"


def render_markdown(
    report: dict[str, Any],
    title: str,
    command: str,
    intro: Sequence[str] = (),
    outro: Sequence[str] = (),
    unit: str = "faces",
    plot_prefix: str = "",
) -> str:
    """A bench JSON report as the committed markdown: summary table, per-class P/R/F1, per-class
    recall change of each quantised model vs the float one, then ``outro`` lines."""
    models = report["models"]
    names = [m["model"] for m in models]
    lines = [
        f"# {title}",
        "",
        f"Command: `{command}`  ",
        f"Date: {report['date']}; edgeemo {report['edgeemo_version']}; machine: {report['machine'].get('cpu')}, "
        f"{report['machine'].get('cores')} cores; threads per model: {models[0]['threads']}.",
        "",
        *intro,
        *(f"**Warning: {label} scores data it was trained on** ({why})." for label, why in
          (report["data"].get("trained_on_this_data") or {}).items()),
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
    row(f"throughput batch 1 ({unit}/s)", [f"{m['throughput_per_s']:.0f}" for m in models])
    row("preprocess one input (ms; front end)", [f"{m['preprocess_ms']:.3f}" for m in models])
    row("edgeemo overhead vs bare invoke", [f"{m['invoke_overhead_ratio']:.2f}x" for m in models])
    row("model size", [f"{m['size_bytes'] / 1e6:.2f} MB" for m in models])
    row("process peak RSS", [f"{m['peak_rss_mb']:.0f} MiB" if m["peak_rss_mb"] else "–" for m in models])
    row(
        "top-1 agreement with float parent (these inputs)",
        [_agreement_cell(m, models) for m in models],
    )
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
    quant = [m for m in models if float_parent(m, models) is not None]
    if quant:
        lines += ["", "## int8 change per class (recall, points vs the float parent of the same format)", ""]
        heads = [f"{m['model']} vs {float_parent(m, models)['model']}" for m in quant]  # type: ignore[index]
        lines.append("| class | " + " | ".join(heads) + " |")
        lines.append("|---|" + "---|" * len(quant))
        for c in labels:
            cells = [f"{100 * recall_change(m, float_parent(m, models), c):+.2f}" for m in quant]
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Confusion matrices: " + ", ".join(f"`{plot_prefix}confusion-{n}.png`" for n in names) + ".",
        "",
        *outro,
        "",
    ]
    return "\n".join(lines)
