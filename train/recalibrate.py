"""``edgeemo train recalibrate``: re-estimate a face run's BatchNorm statistics.

During training every BatchNorm keeps a running average of the batch statistics it sees,
and those batches are augmented faces with dropout active in the layers before it. At
inference neither is there, so the running averages describe the wrong inputs (dropout's
"variance shift", plus augmentation's). This module replaces them with the statistics of
each BatchNorm's input on un-augmented training faces (THE core preprocessing) with the
model in inference mode, earlier layers first. Nothing else changes: the learned
scale/offset and every other weight are kept, so the model size and speed are the same.
Validation decides whether the recalibrated model is kept; test is only reported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np

from edgeemo import __version__
from edgeemo.errors import EdgeemoError
from edgeemo.face import FacePreprocessing, preprocess_faces
from edgeemo.labels import EMOTIONS
from edgeemo.metrics import classification_report
from edgeemo.train.ensemble import read_json, split_faces
from edgeemo.train.run import console, copy_training_records

DEFAULT_FACES = 8192  # training faces the statistics are measured on


def channel_moments(probe: keras.Model, x: np.ndarray, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and variance of ``probe``'s output over ``x`` (inference mode, streamed in float64)."""
    total = total_sq = 0.0
    count = 0
    for start in range(0, len(x), batch_size):
        z = np.asarray(probe(x[start:start + batch_size], training=False), np.float64)
        z = z.reshape(-1, z.shape[-1])
        total, total_sq, count = total + z.sum(axis=0), total_sq + np.square(z).sum(axis=0), count + len(z)
    mean = total / count
    return mean, np.maximum(total_sq / count - np.square(mean), 0.0)


def recalibrate_batchnorm(model: keras.Model, x: np.ndarray, batch_size: int = 512) -> int:
    """Set every BatchNorm's moving mean/variance to the statistics of its input on ``x``
    with ``model`` in inference mode, in graph order (nested functional models included).
    Returns how many BatchNorm layers were set."""
    done = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            mean, var = channel_moments(keras.Model(model.input, layer.input), x, batch_size)
            gamma, beta, *_ = layer.get_weights()
            layer.set_weights([gamma, beta, mean.astype(np.float32), var.astype(np.float32)])
            done += 1
        elif isinstance(layer, keras.Model) and any(
            isinstance(inner, keras.layers.BatchNormalization) for inner in layer._flatten_layers()
        ):
            # a nested model's .input is its own Input; the tensor it was called on in this graph:
            called_on = layer._inbound_nodes[-1].input_tensors[0]
            inner_x = keras.Model(model.input, called_on).predict(x, batch_size=batch_size, verbose=0)
            done += recalibrate_batchnorm(layer, inner_x, batch_size)
    return done


def recalibrate_run(run: Path, out: Path, faces: int = DEFAULT_FACES, seed: int = 0,
                    keep_worse: bool = False) -> dict[str, Any]:
    """Write a new run folder ``out`` (best.keras, config.json, split.json, metrics.json)
    holding ``run``'s model with recalibrated BatchNorm statistics; returns its test metrics.
    Refuses (clear error) when validation accuracy drops, unless ``keep_worse``."""
    run, out = Path(run), Path(out)
    config = read_json(run / "config.json")
    split = read_json(run / "split.json")
    if config.get("task") != "face":
        raise EdgeemoError(f"recalibration reads training faces: task is {config.get('task')!r}, not 'face'",
                           run / "config.json")
    if out.resolve() == run.resolve():
        raise EdgeemoError("--out must be a new folder, not the run itself", out)
    if not (run / "best.keras").is_file():
        raise EdgeemoError("not a finished training run (no best.keras inside)", run)
    if faces < 1:
        raise EdgeemoError(f"--faces must be at least 1, got {faces}")
    try:
        pre = FacePreprocessing.from_dict(config["preprocessing"])
    except (KeyError, TypeError) as exc:
        raise EdgeemoError(f"bad preprocessing in config.json ({exc})", run / "config.json") from None
    sets = split_faces(config, split, run)
    train_images = sets["train"][0]
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(train_images), size=min(faces, len(train_images)), replace=False))
    x_stats = preprocess_faces([train_images[i] for i in idx], pre)
    x = {name: preprocess_faces(sets[name][0], pre) for name in ("val", "test")}
    y = {name: sets[name][1] for name in ("val", "test")}

    model = keras.models.load_model(run / "best.keras", compile=False)

    def evaluate() -> dict[str, np.ndarray]:
        return {name: model.predict(x[name], batch_size=512, verbose=0).argmax(1) for name in ("val", "test")}

    before = evaluate()
    n_layers = recalibrate_batchnorm(model, x_stats)
    if n_layers == 0:
        raise EdgeemoError("the model has no BatchNormalization layers: nothing to recalibrate", run / "best.keras")
    after = evaluate()
    acc = {(when, name): float((pred[name] == y[name]).mean())
           for when, pred in (("before", before), ("after", after)) for name in ("val", "test")}
    console.print(
        f"recalibrated {n_layers} BatchNorm layers on {len(idx)} training faces: validation accuracy "
        f"{acc['before', 'val']:.4f} -> {acc['after', 'val']:.4f} (test, only reported: "
        f"{acc['before', 'test']:.4f} -> {acc['after', 'test']:.4f})"
    )
    if acc["after", "val"] < acc["before", "val"] and not keep_worse:
        raise EdgeemoError(
            f"recalibration lowered validation accuracy ({acc['before', 'val']:.4f} -> {acc['after', 'val']:.4f}); "
            "nothing written (--keep-worse writes it anyway)", run)

    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "best.keras")
    config = dict(config)
    config["batchnorm_recalibration"] = {
        "from_run": str(run),
        "layers": n_layers,
        "faces": int(len(idx)),
        "seed": seed,
        "statistics": "inputs of each BatchNorm on un-augmented training faces, inference mode, in graph order",
        "val_accuracy_before": acc["before", "val"],
        "val_accuracy_after": acc["after", "val"],
        "test_accuracy_before": acc["before", "test"],
    }
    config["edgeemo_version"] = __version__
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "split.json").write_text(json.dumps(split))
    (out / "finished.json").write_text(json.dumps({"recalibrated_from": str(run)}))
    report = classification_report(y["test"], after["test"], EMOTIONS)
    report.update({
        "split": "test",
        "source": config["split"]["test"]["source"],
        "params": int(model.count_params()),
        "val_accuracy": acc["after", "val"],
    })
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    copy_training_records(run, out)
    console.print(f"test accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}; run folder {out}")
    return report
