"""A resumable training run in a folder: config, history, curves, checkpoints, metrics.

Layout of a run folder::

    config.json     what was asked for (arch, data, split, augmentation, seed, ...)
    split.json      which samples went to train / val / test (sources), for export and audit
    history.csv     one row per finished epoch (appended on resume)
    curves.png      loss and accuracy curves
    last.keras      model + optimizer after the latest epoch (resume point)
    last.weights.npz the same weights without the optimizer (a third of the size): the resume
                    point of a run folder carried to another machine as config.json, history.csv
                    and this file (split.json is re-cut from the run's --split-seed)
    epochs/NNN.weights.npz  with --keep-epoch-weights: the weights after each epoch (NNN as in
                    history.csv's epoch column), for ``edgeemo train average``
    finished.json   written when training ends (all epochs, or early stop)
    best.keras      best model by validation accuracy
    metrics.json    accuracy / macro-F1 / per-class of best.keras on the held-out test split

Re-running the same command on the same folder resumes from ``last.keras``, or, where only
``last.weights.npz`` came along, from those weights with Adam's moments re-estimated first
(``warm_up_optimizer``).
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from edgeemo.errors import EdgeemoError
from edgeemo.train.distribute import (
    Distribution,
    clear_tf_errors,
    fix_keras_distributed,
    per_worker,
)

console = Console(stderr=True)


OPTIMIZER_WARM_UP_STEPS = 100  # Adam's second moment (beta_2 0.999, bias-corrected): a mean over these


@dataclass
class TrainSettings:
    epochs: int = 40
    batch_size: int = 128
    learning_rate: float = 1e-3
    label_smoothing: float = 0.1
    patience: int = 8  # EarlyStopping on val_accuracy
    lr_patience: int = 3  # ReduceLROnPlateau on val_loss
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    schedule: str = "plateau"  # plateau (ReduceLROnPlateau), cosine (learning_rate -> min_lr over epochs) or constant
    seed: int = 0
    precision: str = "auto"  # auto, float32, mixed_bfloat16 or mixed_float16 (see resolve_precision)
    keep_epoch_weights: bool = False  # also write epochs/NNN.weights.npz after every epoch (for averaging)
    distribute: str = "none"  # none, mirrored or multi-worker (edgeemo.train.distribute)
    replicas: int | None = None  # mirrored: GPUs to use (default all), or logical CPU devices (default 2)
    worker_timeout: float = 600.0  # multi-worker: seconds to wait for the cluster, or for a collective
    stream: bool = False  # read the data as a stream instead of into memory (face_stream, voice_stream)
    stream_cache: str | None = None  # faces: tf.data cache of the decoded, preprocessed stream on disk


def learning_rate_callback(settings: TrainSettings) -> keras.callbacks.Callback:
    """The learning-rate schedule; cosine depends only on the epoch index, so it survives a resume."""
    if settings.schedule == "plateau":
        return keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss", factor=settings.lr_factor, patience=settings.lr_patience, min_lr=settings.min_lr
        )
    if settings.schedule == "cosine":
        top, bottom, span = settings.learning_rate, settings.min_lr, max(settings.epochs - 1, 1)

        def cosine(epoch: int, lr: float) -> float:
            return float(bottom + 0.5 * (top - bottom) * (1 + math.cos(math.pi * min(epoch, span) / span)))

        return keras.callbacks.LearningRateScheduler(cosine)
    if settings.schedule == "constant":  # e.g. the phase whose per-epoch weights are averaged (SWA)
        rate = settings.learning_rate
        return keras.callbacks.LearningRateScheduler(lambda epoch, lr: rate)
    raise EdgeemoError(f"unknown learning-rate schedule {settings.schedule!r} (plateau, cosine, constant)")


def stream_seed(seed: int, epochs_done: int) -> int:
    """Seed of the shuffle orders, augmentations and dropout masks of a run with ``epochs_done``
    epochs behind it. tf.data and Keras' random layers start their streams over in every process,
    so a resume seeded like the start would replay the first epochs' batches, augmented faces
    included, which the model has already fitted (measured on a 2,100-face FER slice: train
    accuracy 74% -> 85% on the first resumed epoch; 76% with fresh draws). A fresh run keeps
    ``seed``; a resume at epoch k gets draws of its own, deterministic in (seed, k)."""
    if epochs_done <= 0:
        return seed
    return int(np.random.SeedSequence([seed, epochs_done]).generate_state(1)[0] % 2**31)


@contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Keras' global dtype policy set to ``name`` for the block, then restored (it is process-wide:
    a model built after a training run must not inherit its mixed precision)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_seconds`` (training + validation wall clock) to each epoch's logs, so
    history.csv records the training speed next to the metrics."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None:
            logs["epoch_seconds"] = round(time.perf_counter() - self.start, 2)


class RichProgress(keras.callbacks.Callback):
    """Epoch and batch progress bars with the running metrics."""

    def __init__(self, epochs: int, steps: int, initial_epoch: int = 0) -> None:
        super().__init__()
        self.epochs, self.steps, self.initial_epoch = epochs, steps, initial_epoch
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[metrics]}"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.progress.start()
        self.epoch_task = self.progress.add_task("epochs", total=self.epochs, completed=self.initial_epoch, metrics="")
        self.batch_task = self.progress.add_task("batches", total=self.steps, metrics="")

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.progress.reset(self.batch_task, total=self.steps, description=f"epoch {epoch + 1}")

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        text = f"loss {logs.get('loss', 0):.3f} acc {logs.get('accuracy', 0):.3f}"
        self.progress.update(self.batch_task, completed=batch + 1, metrics=text)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        text = " ".join(f"{k} {v:.4g}" for k, v in logs.items())
        self.progress.update(self.epoch_task, completed=epoch + 1, metrics="")
        self.progress.console.print(f"epoch {epoch + 1}/{self.epochs}: {text}")

    def on_train_end(self, logs: dict | None = None) -> None:
        self.progress.stop()


def read_history(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    with path.open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def plot_history(history_csv: Path, out_png: Path, title: str) -> None:
    """Loss and accuracy curves (train and validation) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_history(history_csv)
    if not rows:
        return
    epochs = [int(r["epoch"]) + 1 for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
        ax.plot(epochs, [r[key] for r in rows], label=f"train {key}")
        if f"val_{key}" in rows[0]:
            ax.plot(epochs, [r[f"val_{key}"] for r in rows], label=f"val {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def _identity(key: str, value: Any) -> Any:
    """What must match for a resume: the data folder however it is spelled, the split's sizes."""
    if key == "data" and isinstance(value, list):  # voice: several corpus folders
        return [str(Path(v).resolve()) for v in value]
    if key == "data" and value is not None:
        return str(Path(value).resolve())
    if key == "preprocessing" and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != "standardize"}  # voice: statistics come from the data
    if key == "split" and isinstance(value, dict):
        return (value.get("dataset"), value.get("protocol"), value["train"]["n"], value["test"]["n"])
    return value


IDENTITY_KEYS = ("task", "arch", "data", "split", "preprocessing", "input_shape")


def _changed_options(stored: dict[str, Any], config: dict[str, Any]) -> dict[str, list[Any]]:
    """Options (other than the run's identity) that a resume asks to change: ``{name: [old, new]}``;
    ``settings`` entries are compared one by one (``settings.epochs``)."""
    changed: dict[str, list[Any]] = {}
    for key in sorted(set(stored) | set(config)):
        if key in IDENTITY_KEYS or key == "resumes":
            continue
        old, new = stored.get(key), config.get(key)
        if key == "settings" and isinstance(old, dict) and isinstance(new, dict):
            changed.update({f"settings.{k}": [old.get(k), new.get(k)]
                            for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)})
        elif old != new:
            changed[key] = [old, new]
    return changed


def check_config(run_dir: Path, config: dict[str, Any]) -> None:
    """Write config.json, or on resume insist that it matches the stored one. Other options
    may change on a resume (``--epochs``, the learning rate, ...): config.json then holds the
    new values and lists each change under ``resumes`` with the epoch it took effect after."""
    path = run_dir / "config.json"
    if path.exists():
        stored = json.loads(path.read_text())
        diff = [k for k in IDENTITY_KEYS if _identity(k, stored.get(k)) != _identity(k, config.get(k))]
        if diff:
            raise EdgeemoError(
                f"run folder holds a different run (differs in {', '.join(diff)}); use a new --out",
                run_dir,
            )
        changed = _changed_options(stored, json.loads(json.dumps(config)))  # tuples read back as lists
        if changed:
            resumes = [*stored.get("resumes", []),
                       {"after_epoch": len(read_history(run_dir / "history.csv")), "changed": changed}]
            path.write_text(json.dumps({**config, "resumes": resumes}, indent=2))
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(config, indent=2))


def compile_model(model: keras.Model, settings: TrainSettings, xla: bool = False) -> None:
    """Adam, label-smoothed cross-entropy, accuracy; XLA where asked (a GPU). A mixed_float16 model gets its
    optimizer wrapped in Keras' LossScaleOptimizer (dynamic loss scaling), so small gradients survive."""
    model.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=settings.label_smoothing),
        metrics=["accuracy"],
        jit_compile=xla,
        auto_scale_loss=True,
    )


def save_weights_npz(model: keras.Model, path: Path) -> None:
    """The model's weights (BatchNorm statistics included), no optimizer state: Keras 3's
    ``save_weights`` writes the optimizer too (15 instead of 5 MB for the face CNN)."""
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, *model.get_weights())
    tmp.replace(path)


def copy_training_records(run: Path, out: Path) -> None:
    """Copy ``run``'s history and curves into ``out``, a run folder derived from it without
    training (recalibrated, averaged)."""
    for name in ("history.csv", "curves.png"):
        if (run / name).is_file():
            shutil.copyfile(run / name, out / name)


def load_weights_npz(model: keras.Model, path: Path) -> None:
    """Load what ``save_weights_npz`` wrote, refusing weights of another architecture."""
    try:
        with np.load(path) as saved:
            weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    except (OSError, ValueError, KeyError) as e:
        raise EdgeemoError(f"not a weights file written by a training run ({e})", path) from None
    expected = [tuple(w.shape) for w in model.get_weights()]
    found = [w.shape for w in weights]
    if found != expected:
        detail = f"{len(found)} arrays, the model has {len(expected)}"
        if len(found) == len(expected):
            i = next(i for i, (a, b) in enumerate(zip(found, expected, strict=True)) if a != b)
            detail = f"array {i} is {found[i]}, the model's is {expected[i]}"
        raise EdgeemoError(f"these weights do not fit the run's model ({detail})", path)
    model.set_weights(weights)


def warm_up_optimizer(
    model: keras.Model, train_ds: tf.data.Dataset, steps: int, class_weight: dict[int, float] | None
) -> None:
    """Re-estimate a fresh Adam's moments on ``steps`` training batches at learning rate 0,
    so a run resumed from weights alone does not start with Adam's first, full-size steps
    (bias correction makes them about the learning rate for every weight, however noisy its
    gradient). The weights stay; BatchNorm statistics move on as in training."""
    rate = float(model.optimizer.learning_rate.numpy())
    model.optimizer.learning_rate.assign(0.0)
    model.fit(train_ds.take(steps), epochs=1, class_weight=class_weight, verbose=0)
    model.optimizer.learning_rate.assign(rate)


def fit(
    run_dir: Path,
    build_model: Any,
    train_ds: tf.data.Dataset,
    val_ds: tf.data.Dataset,
    steps_per_epoch: int,
    settings: TrainSettings,
    class_weight: dict[int, float] | None,
    title: str,
    policy: str = "float32",
    dist: Distribution | None = None,
) -> keras.Model:
    """Train (or resume) and return the best model (by validation accuracy). A new model is
    built under the dtype ``policy``; a resumed one keeps the policy saved with it. Under a
    distribution (``dist``) the model is made in its scope, and every worker must see the same
    run folder state."""
    dist = dist or Distribution()
    last, best, history_csv = run_dir / "last.keras", run_dir / "best.keras", run_dir / "history.csv"
    last_weights = run_dir / "last.weights.npz"
    history = read_history(history_csv)
    initial_epoch = len(history)
    finished = run_dir / "finished.json"
    done_epochs = json.loads(finished.read_text())["epochs"] if finished.exists() else 0
    done = best.exists() and (done_epochs >= settings.epochs or len(history) >= settings.epochs)
    resume = initial_epoch > 0 and (last.exists() or last_weights.exists())
    seen = per_worker(dist, -1 if done else initial_epoch if resume else 0)  # -1: finished
    if len(set(seen)) > 1:
        raise EdgeemoError(f"the workers see different states of the run folder (epochs done, chief first: "
                           f"{', '.join(str(int(e)) for e in seen)}): a resumed multi-worker run needs its folder "
                           "where every worker reads it", run_dir)
    if done:
        console.print(f"{run_dir}: training already finished ({len(history)} epochs); evaluating best.keras")
        return keras.models.load_model(best)
    with dist.scope():
        if last.exists() and initial_epoch > 0:
            console.print(f"resuming {run_dir} from epoch {initial_epoch}")
            model = keras.models.load_model(last)
        elif last_weights.exists() and initial_epoch > 0:
            console.print(f"resuming {run_dir} from epoch {initial_epoch} (weights only: re-estimating Adam's "
                          f"moments on {OPTIMIZER_WARM_UP_STEPS} batches first)")
            with dtype_policy(policy):
                model = build_model()
            load_weights_npz(model, last_weights)
            compile_model(model, settings, dist.xla)
        else:
            initial_epoch, history = 0, []
            history_csv.unlink(missing_ok=True)
            with dtype_policy(policy):
                model = build_model()
            compile_model(model, settings, dist.xla)
    if dist.strategy is not None:
        fix_keras_distributed(model, dist.strategy)
    if not last.exists() and last_weights.exists() and initial_epoch > 0:
        with clear_tf_errors(dist):
            warm_up_optimizer(model, train_ds, OPTIMIZER_WARM_UP_STEPS, class_weight)
    if settings.keep_epoch_weights:
        (run_dir / "epochs").mkdir(exist_ok=True)

    def save_epoch_weights(epoch: int) -> None:
        save_weights_npz(model, last_weights)
        if settings.keep_epoch_weights:  # the same file, kept under the epoch's number
            shutil.copyfile(last_weights, run_dir / "epochs" / f"{epoch:03d}.weights.npz")

    stopper = keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=settings.patience)
    # A carried run folder may come without best.keras: then only the epochs trained from
    # here on compete for it.
    best_so_far = max((r["val_accuracy"] for r in history), default=-math.inf) if best.exists() else -math.inf
    callbacks = [
        keras.callbacks.ModelCheckpoint(
            best,
            monitor="val_accuracy",
            mode="max",
            save_best_only=True,
            initial_value_threshold=None if best_so_far == -math.inf else best_so_far,
        ),
        keras.callbacks.ModelCheckpoint(last, save_best_only=False),
        keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: save_epoch_weights(e)),
        EpochTimer(),
        keras.callbacks.CSVLogger(str(history_csv), append=initial_epoch > 0),
        learning_rate_callback(settings),
        stopper,
        keras.callbacks.LambdaCallback(
            on_epoch_end=lambda e, logs: plot_history(history_csv, run_dir / "curves.png", title)
        ),
        RichProgress(settings.epochs, steps_per_epoch, initial_epoch),
    ]
    with clear_tf_errors(dist):
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=settings.epochs,
            initial_epoch=initial_epoch,
            class_weight=class_weight,
            callbacks=callbacks,
            verbose=0,
        )
    # Mark the run finished so re-running the command evaluates instead of training on past
    # an early stop; asking for more epochs than this resumes.
    done = len(read_history(history_csv))
    finished.write_text(
        json.dumps({"epochs": settings.epochs, "trained_epochs": done, "early_stopped": bool(stopper.stopped_epoch)})
    )
    return keras.models.load_model(best)


def class_weights(labels: np.ndarray, n_classes: int, mode: str) -> dict[int, float] | None:
    """'none', 'balanced' (n / (k * count)) or 'sqrt' (its square root: a softer correction)."""
    if mode == "none":
        return None
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    if mode == "sqrt":
        weights = np.sqrt(weights)
    elif mode != "balanced":
        raise EdgeemoError(f"unknown class weight mode {mode!r} (none, balanced, sqrt)")
    return {i: float(w) if present[i] else 1.0 for i, w in enumerate(weights)}
