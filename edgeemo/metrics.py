"""Classification metrics in plain numpy (no scikit-learn on the device)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeemo.labels import EMOTIONS


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    cm = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, labels: list[str] | tuple[str, ...]
) -> dict[str, Any]:
    """Accuracy, macro-F1, macro recall (UAR), per-class precision/recall/F1/support, confusion matrix.

    Classes with no true samples are left out of the macro averages.
    """
    n = len(labels)
    cm = confusion_matrix(y_true, y_pred, n)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = support > 0
    total = int(cm.sum())
    return {
        "n": total,
        "accuracy": float(tp.sum() / total) if total else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "uar": float(recall[present].mean()) if present.any() else 0.0,
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        "confusion_matrix": cm.tolist(),
    }


def per_corpus(y: np.ndarray, pred: np.ndarray, speakers: np.ndarray) -> dict[str, dict[str, float]]:
    """Accuracy, UAR and the majority-class baseline of each corpus in a voice test set; ``speakers`` are
    the reader's names (``corpus:speaker``), one per clip."""
    corpus = np.asarray([str(s).split(":", 1)[0] for s in speakers])
    out = {}
    for c in sorted(set(corpus)):
        m = corpus == c
        report = classification_report(y[m], pred[m], EMOTIONS)
        out[c] = {"n": int(m.sum()), "accuracy": report["accuracy"], "uar": report["uar"],
                  "majority": float(np.bincount(y[m]).max() / m.sum())}
    return out
