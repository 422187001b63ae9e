"""Every export verifies itself: the quantised model against its float parent, on held-out faces.

Models are run through ``edgeemo.runtime.open_model`` (the same runners the device
uses, int8 quantise/dequantize included), so what is verified is what ships.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edgeemo.errors import EdgeemoError
from edgeemo.metrics import classification_report
from edgeemo.runtime import open_model, quantize

MAX_DROP_POINTS = 1.0  # quantised accuracy may fall at most this many points below float (face)
MAX_DROP_BY_TASK = {"face": 1.0, "voice": 1.5}  # the project's targets: voice test sets are ~10x smaller


def predict_file(path: str | Path, x: np.ndarray, batch: int = 256) -> np.ndarray:
    """Class probabilities of a model file (checked against its manifest if it has one)."""
    runner = open_model(path, expected_input=tuple(x.shape[1:]))
    return np.concatenate([runner.predict(x[i : i + batch]) for i in range(0, len(x), batch)])


def accuracy_report(y: np.ndarray, probs: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """n, accuracy, macro-F1 and per-class recall of one model's probabilities."""
    report = classification_report(y, probs.argmax(1), labels)
    return {
        "n": report["n"],
        "accuracy": report["accuracy"],
        "macro_f1": report["macro_f1"],
        "per_class_recall": {k: v["recall"] for k, v in report["per_class"].items()},
    }


def compare(y: np.ndarray, probs_float: np.ndarray, probs_quant: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Quantised vs float parent on the same faces: accuracies, macro-F1s, agreement, prob diffs."""
    f, q = accuracy_report(y, probs_float, labels), accuracy_report(y, probs_quant, labels)
    diff = np.abs(probs_float.astype(np.float64) - probs_quant.astype(np.float64))
    return {
        "n": f["n"],
        "accuracy_float": f["accuracy"],
        "accuracy_quantized": q["accuracy"],
        "accuracy_drop_points": round(100.0 * (f["accuracy"] - q["accuracy"]), 4),
        "macro_f1_float": f["macro_f1"],
        "macro_f1_quantized": q["macro_f1"],
        "top1_agreement": float(np.mean(probs_float.argmax(1) == probs_quant.argmax(1))),
        "max_abs_prob_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_prob_diff": float(diff.mean()) if diff.size else 0.0,
        "per_class_recall_float": f["per_class_recall"],
        "per_class_recall_quantized": q["per_class_recall"],
    }


def gate_passed(metrics: dict[str, Any], max_drop: float = MAX_DROP_POINTS) -> bool:
    """True if quantised accuracy is at most ``max_drop`` points below the float parent's."""
    return 100.0 * (metrics["accuracy_float"] - metrics["accuracy_quantized"]) <= max_drop + 1e-9


def check_gate(
    metrics: dict[str, Any],
    path: str | Path,
    max_drop: float = MAX_DROP_POINTS,
    force: bool = False,
) -> bool:
    """The accuracy gate. Raises a one-line EdgeemoError naming ``path`` when quantised
    accuracy falls more than ``max_drop`` points below float, unless ``force``.

    Records ``gate`` (and ``forced`` when it was overridden) in ``metrics``; returns
    whether the gate passed.
    """
    passed = gate_passed(metrics, max_drop)
    metrics["gate"] = {"max_drop_points": max_drop, "passed": passed}
    metrics["forced"] = bool(force and not passed)
    if not passed and not force:
        raise EdgeemoError(
            f"quantized accuracy {100 * metrics['accuracy_quantized']:.2f}% is "
            f"{100 * (metrics['accuracy_float'] - metrics['accuracy_quantized']):.2f} points below "
            f"the float parent's {100 * metrics['accuracy_float']:.2f}% on {metrics['n']} "
            "held-out samples "
            f"(limit {max_drop:g}); use --force to keep it anyway",
            path,
        )
    return passed


def latency_ms(
    paths: list[str | Path], sample: np.ndarray, runs: int = 200, warmup: int = 20, threads: int = 1
) -> dict[str, dict[str, float]]:
    """Batch-1 latency of several models, interleaved call by call so that background load
    affects them alike. Returns {path: {p50_ms, p90_ms, min_ms, runs, threads}}."""
    runners = [open_model(p, threads=threads) for p in paths]
    inputs = []
    for r in runners:
        x = sample[:1]
        inputs.append(np.ascontiguousarray(quantize(x, r.input)))
    for _ in range(warmup):
        for r, x in zip(runners, inputs, strict=True):
            r.invoke_raw(x)
    times: list[list[float]] = [[] for _ in runners]
    for i in range(runs):
        order = range(len(runners)) if i % 2 == 0 else reversed(range(len(runners)))
        for k in order:
            t0 = time.perf_counter()
            runners[k].invoke_raw(inputs[k])
            times[k].append((time.perf_counter() - t0) * 1000.0)
    return {
        str(p): {
            "p50_ms": float(np.percentile(t, 50)),
            "p90_ms": float(np.percentile(t, 90)),
            "min_ms": float(np.min(t)),
            "runs": runs,
            "threads": threads,
        }
        for p, t in zip(paths, times, strict=True)
    }
