"""``edgeemo train face``: train a face emotion model on FER2013, CK+, a labels.csv or FER+.

Data flows through the core reader and THE core preprocessing (edgeemo.face), then
through Keras augmentation layers in a tf.data pipeline (training batches only). In memory
by default; with ``--stream`` (``settings.stream``) the files are read as a stream
(``edgeemo.train.face_stream``), for datasets larger than memory.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import keras
import numpy as np

from edgeemo import __version__
from edgeemo.errors import EdgeemoError
from edgeemo.face import FacePreprocessing, preprocess_faces
from edgeemo.face_datasets import FaceDataset, load_faces
from edgeemo.face_detect import DetectorSettings
from edgeemo.face_index import FaceIndex, has_official_test, index_faces
from edgeemo.labels import EMOTIONS
from edgeemo.metrics import classification_report
from edgeemo.splits import group_split, stratified_split
from edgeemo.train.datasets import camera_dataset, give_back_large_buffers, make_dataset
from edgeemo.train.distribute import clear_tf_errors
from edgeemo.train.face_augment import CameraAugmentation, FaceAugmentation, detector_framed, face_augmenter
from edgeemo.train.face_models import build_face_model
from edgeemo.train.face_stream import face_stream, predict_stream
from edgeemo.train.hardware import setup_hardware
from edgeemo.train.options import EXTRA_TEST_FRACTION
from edgeemo.train.run import TrainSettings, check_config, class_weights, console, fit, read_history, stream_seed

Faces = FaceDataset | FaceIndex  # decoded in memory, or the files of a stream


def resolve_splits(
    data: Path,
    dataset: str,
    test_data: Path | None,
    split: str,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    limit_per_class: int | None,
    reader: Callable[..., Faces] = load_faces,
) -> tuple[Faces, Faces, Faces, dict[str, Any]]:
    """Load the data (``reader``: ``load_faces``, or ``index_faces`` for a stream) and cut train / val / test.

    Test: ``test_data`` if given, else the ``publictest/`` split beside ``train/`` (FER2013,
    FER+), else a held-out part of ``data`` (whole subjects with split='subject'). Validation
    (for checkpoints, early stopping and the LR schedule) is always cut from the training
    side, so the test set is never used to tune anything.
    """
    pool = reader(data, dataset, split="train", limit_per_class=limit_per_class)
    has_subjects = pool.subjects
    if split not in ("subject", "random"):
        raise EdgeemoError(f"unknown split {split!r} (expected subject or random)")
    by_subject = split == "subject" and has_subjects

    def cut(ds: Faces, fraction: float, salt: int) -> tuple[np.ndarray, np.ndarray]:
        if by_subject:
            return group_split(ds.groups, fraction, seed + salt)
        return stratified_split(ds.labels, fraction, seed + salt)

    official = test_data is None and has_official_test(data)
    if test_data is None and data.is_dir() and (data / "publictest").is_dir():
        test_data = data / "publictest"
    if test_data is not None or official:
        test = reader(test_data or data, dataset, split="publictest", limit_per_class=limit_per_class)
        test_desc = f"{test_data}" if test_data is not None else f"{data} (PublicTest)"
    else:
        keep, hold = cut(pool, test_fraction, 0)
        test, pool = pool.subset(hold, f"{pool.name}-test"), pool.subset(keep)
        if by_subject:
            how = "by subject"
        elif has_subjects:
            how = "random, LEAKY for CK+: frames of one subject on both sides"
        else:
            how = "stratified random"
        test_desc = f"{test_fraction:.0%} of {data} held out ({how})"
    keep, hold = cut(pool, val_fraction, 1)
    train, val = pool.subset(keep, f"{pool.name}-train"), pool.subset(hold, f"{pool.name}-val")
    if by_subject:
        overlap = set(train.groups) & (set(val.groups) | set(test.groups))
        assert not overlap, f"subject leak: {sorted(overlap)[:5]}"
    desc = {
        "dataset": pool.name,
        "protocol": "subject-independent" if by_subject else (
            "official split" if test_data is not None or official else "random"),
        "train": {"n": len(train), "classes": train.class_counts()},
        "val": {
            "n": len(val),
            "source": f"{val_fraction:.0%} of training side ({'by subject' if by_subject else 'stratified'})",
        },
        "test": {"n": len(test), "source": test_desc, "classes": test.class_counts()},
        "excluded": dict(pool.excluded),
    }
    if by_subject:
        desc["subjects"] = {"train": len(set(train.groups)), "val": len(set(val.groups)), "test": len(set(test.groups))}
    return train, val, test, desc


def teacher_targets(
    teacher: Path,
    train: FaceDataset,
    x_train: np.ndarray,
    held_out: set[str],
    pre: FacePreprocessing,
    weight: float,
    temperature: float,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Training targets for distillation: ``(1 - weight) * one-hot + weight * teacher``, the
    teacher's softmax (a finished face run, e.g. an ensemble) softened by ``temperature``
    (p ** (1/T), renormalised: the same as dividing its logits by T).

    The teacher runs once on the un-augmented training faces through THE preprocessing. It
    must not have trained on this run's validation or test faces (``held_out``), or model
    selection and the test score would see them through its outputs."""
    from edgeemo.train.ensemble import Member

    if not 0.0 < weight <= 1.0:
        raise EdgeemoError(f"--teacher-weight must be in (0, 1], got {weight}")
    if temperature <= 0:
        raise EdgeemoError(f"--temperature must be positive, got {temperature}")
    source = Member(teacher)
    if source.task != "face" or source.config.get("labels") != list(EMOTIONS):
        raise EdgeemoError("the teacher is not a face run with the canonical labels", teacher / "config.json")
    if source.pre.to_dict() != pre.to_dict():
        raise EdgeemoError("the teacher's preprocessing differs from this run's", teacher / "config.json")
    leaked = held_out & set(source.split.get("train", []))
    if leaked:
        raise EdgeemoError(
            f"the teacher trained on {len(leaked)} of this run's validation/test faces (first: {sorted(leaked)[0]}); "
            "train it with the same --split-seed", teacher / "split.json")
    probs = source.model.predict(x_train, batch_size=512, verbose=0).astype(np.float64)
    soft = np.clip(probs, 1e-8, 1.0) ** (1.0 / temperature)
    soft /= soft.sum(axis=1, keepdims=True)
    onehot = keras.utils.to_categorical(train.labels, len(EMOTIONS))
    info = {
        "teacher": str(teacher),
        "teacher_arch": source.config.get("arch"),
        "teacher_params": int(source.model.count_params()),
        "teacher_train_accuracy": float((probs.argmax(1) == train.labels).mean()),
        "weight": weight,
        "temperature": temperature,
        "targets": "(1 - weight) * one-hot + weight * teacher softmax at temperature, on un-augmented faces",
    }
    return ((1.0 - weight) * onehot + weight * soft).astype(np.float32), info


def add_extra_subjects(
    train: Faces, extra: Path, test_fraction: float, seed: int, reader: Callable[..., Faces] = load_faces,
    repeat: int = 1,
) -> tuple[Faces, dict[str, Any]]:
    """``train`` plus the training subjects of a second dataset (e.g. CK+48); whole subjects,
    ``test_fraction`` of its faces, are held out and listed so they can be reported as unseen.
    ``repeat`` > 1 adds each training face that many times (each draw augmented anew): a small posed
    set then weighs more against a large in-the-wild one."""
    if repeat < 1:
        raise EdgeemoError(f"--extra-repeat must be at least 1, got {repeat}")
    pool = reader(extra, split="train")
    if len(set(pool.groups)) < 2:
        raise EdgeemoError("--extra-train needs a dataset with subjects (e.g. CK+48) to hold some out", extra)
    keep, hold = group_split(pool.groups, test_fraction, seed)
    kept = pool.subset(keep)
    added = kept.subset(np.tile(np.arange(len(kept)), repeat))
    name, labels = f"{train.name}+{pool.name}", np.concatenate([train.labels, added.labels])
    groups = np.concatenate([train.groups.astype(str), added.groups.astype(str)])
    if isinstance(train, FaceIndex):
        merged: Faces = FaceIndex(name, train.sources + added.sources, labels, groups,
                                  train.excluded + pool.excluded, train.subjects)
    else:
        merged = FaceDataset(name, train.images + added.images, labels, groups, train.sources + added.sources,
                             train.excluded + pool.excluded, train.subjects)
    held = sorted({str(g) for g in pool.subset(hold).groups})
    return merged, {
        "data": str(extra),
        "train": {"n": len(kept), "subjects": len(set(kept.groups)), "classes": kept.class_counts()},
        "repeat": repeat,
        "held_out_subjects": held,
        "held_out_n": len(hold),
    }


def initialised(model: keras.Model, init_from: Path | None) -> keras.Model:
    """Copy the weights of a trained .keras model of the same architecture (fine-tuning start)."""
    if init_from is None:
        return model
    try:
        source = keras.models.load_model(init_from, compile=False)
    except Exception as exc:  # keras raises many types for a bad file
        raise EdgeemoError(
            f"cannot load the model to start from ({str(exc).splitlines()[0][:160]})", init_from
        ) from None
    shapes = [w.shape for w in source.get_weights()]
    if shapes != [w.shape for w in model.get_weights()]:
        raise EdgeemoError("weights do not fit the chosen architecture", init_from)
    model.set_weights(source.get_weights())
    return model


def train_face(
    data: Path,
    out: Path,
    arch: str = "custom-cnn",
    dataset: str = "auto",
    test_data: Path | None = None,
    split: str = "subject",
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    class_weight: str = "sqrt",
    augmentation: FaceAugmentation | None = None,
    settings: TrainSettings | None = None,
    limit_per_class: int | None = None,
    weights: str | None = None,
    bn_momentum: float = 0.99,
    dropout: float = 0.5,
    block_dropout: float = 0.2,
    init_from: Path | None = None,
    split_seed: int | None = None,
    teacher: Path | None = None,
    teacher_weight: float = 0.5,
    temperature: float = 2.0,
    equalize: str = "none",
    camera: CameraAugmentation | None = None,
    extra_train: Path | None = None,
    extra_test_fraction: float = EXTRA_TEST_FRACTION,
    extra_repeat: int = 1,
) -> dict[str, Any]:
    """Train (or resume) a face model in ``out``; returns the test metrics of the best checkpoint.

    ``split_seed`` cuts train/val with another seed than ``settings.seed`` (init, augmentation,
    order): runs that differ only in their seed then share one validation set, so they can be
    compared, or ensembled, on it. ``teacher``: distil a finished face run (see
    ``teacher_targets``)."""
    augmentation = augmentation or FaceAugmentation()
    settings = settings or TrainSettings()
    pre = FacePreprocessing(equalize=equalize)
    stream = stream_seed(settings.seed, len(read_history(Path(out) / "history.csv")))  # the split keeps seed
    hardware, policy, dist = setup_hardware(stream, settings)
    out = dist.run_folder(Path(out))
    if settings.stream and teacher is not None:
        raise EdgeemoError("--teacher needs every training face in memory: it cannot be combined with --stream")
    if settings.stream and camera is not None and camera.detector_p > 0:
        raise EdgeemoError("--detector-crop-p frames every training face once, in memory: it cannot be combined "
                           "with --stream")
    reader = index_faces if settings.stream else load_faces
    if settings.stream:
        give_back_large_buffers()
    t0 = time.time()
    train, val, test, split_desc = resolve_splits(
        data, dataset, test_data, split, val_fraction, test_fraction,
        settings.seed if split_seed is None else split_seed, limit_per_class, reader,
    )
    if extra_train is not None:
        train, split_desc["extra_train"] = add_extra_subjects(
            train, extra_train, extra_test_fraction, settings.seed if split_seed is None else split_seed, reader,
            extra_repeat,
        )
    console.print(
        f"loaded in {time.time() - t0:.1f}s on {hardware}: train {len(train)}, val {len(val)}, test {len(test)}"
    )
    config = {
        "task": "face",
        "arch": arch,
        "data": str(data),
        "test_data": None if test_data is None else str(test_data),
        "split": split_desc,
        "labels": list(EMOTIONS),
        "input_shape": list(pre.input_shape),
        "preprocessing": pre.to_dict(),
        "augmentation": augmentation.to_dict(),
        "camera_augmentation": camera.to_dict() if camera else None,
        **({"detector_framing": asdict(DetectorSettings())} if camera and camera.detector_p > 0 else {}),
        "extra_train": None if extra_train is None else str(extra_train),
        "settings": asdict(settings),
        "class_weight": class_weight,
        "bn_momentum": bn_momentum,
        "dropout": dropout,
        "block_dropout": block_dropout,
        "init_from": None if init_from is None else str(init_from),
        "limit_per_class": limit_per_class,
        "edgeemo_version": __version__,
        "hardware": hardware,
        "distribution": dist.record(settings.batch_size, policy),
        "data_pipeline": {"stream": settings.stream, "cache": settings.stream_cache, "shards": dist.workers}
        if settings.stream else {"stream": False},
    }
    if split_seed is not None:
        config["split_seed"] = split_seed
    augment = face_augmenter(augmentation, stream)
    if settings.stream:  # file names only: nothing decoded until the stream reads it
        x_train = x_val = x_test = None
    else:
        x_train, x_val, x_test = (preprocess_faces(d.images, pre) for d in (train, val, test))
    weights_by_class = class_weights(train.labels, len(EMOTIONS), class_weight)
    targets = sample_weight = None
    if teacher is not None:
        held_out = set(val.sources) | set(test.sources)
        targets, config["distillation"] = teacher_targets(
            teacher, train, x_train, held_out, pre, teacher_weight, temperature
        )
        if weights_by_class is not None:  # by the true class: Keras would take the soft target's argmax
            sample_weight = np.array([weights_by_class[int(c)] for c in train.labels])
            weights_by_class = None
    check_config(out, config)
    (out / "split.json").write_text(json.dumps({"train": train.sources, "val": val.sources, "test": test.sources}))
    if camera is not None and weights_by_class is not None:
        sample_weight = np.array([weights_by_class[int(c)] for c in train.labels])
        weights_by_class = None
    cache = Path(settings.stream_cache) if settings.stream_cache else None
    if cache is not None and dist.workers > 1:  # every worker its own cache files
        cache = cache / f"worker{dist.worker_index}"
    if settings.stream:
        assert isinstance(train, FaceIndex) and isinstance(val, FaceIndex)
        train_ds = face_stream(train, pre, settings.batch_size, augment, stream, shuffle=True,
                               shard=(dist.workers, dist.worker_index), cache=cache, camera=camera,
                               sample_weight=sample_weight)
        val_ds = face_stream(val, pre, 512, cache=cache)
    elif camera is not None:
        framed = None
        if camera.detector_p > 0:  # the daemon's detector and crop, once per training face
            t1 = time.time()
            framed, found = detector_framed(train.images)
            console.print(f"detector framing: {found} of {len(framed)} training faces found "
                          f"({time.time() - t1:.0f}s)")
        train_ds = camera_dataset(train.images, train.labels if targets is None else targets, pre, camera,
                                  settings.batch_size, augment, stream, sample_weight, framed)
    else:
        train_ds = make_dataset(x_train, train.labels, settings.batch_size, augment, stream, targets=targets,
                                sample_weight=sample_weight)
    if not settings.stream:
        val_ds = make_dataset(x_val, val.labels, 512, None, settings.seed)
    steps = int(np.ceil(len(train) / settings.batch_size))
    model = fit(
        out,
        lambda: initialised(
            build_face_model(
                arch, pre.input_shape, len(EMOTIONS), weights, bn_momentum, dropout, block_dropout
            ),
            init_from,
        ),
        train_ds,
        val_ds,
        steps,
        settings,
        weights_by_class,
        title=f"{arch} on {split_desc['dataset']} ({split_desc['protocol']})",
        policy=policy,
        dist=dist,
    )
    if settings.stream:
        assert isinstance(test, FaceIndex)
        with clear_tf_errors(dist):
            probs = predict_stream(model, test, pre)
    else:
        probs = model.predict(x_test, batch_size=512, verbose=0)
    report = classification_report(test.labels, probs.argmax(1), EMOTIONS)
    report.update({"split": "test", "source": split_desc["test"]["source"], "params": int(model.count_params())})
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    console.print(
        f"test accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f} on {len(test)} faces; "
        f"run folder {out}"
    )
    return report
