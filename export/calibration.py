"""Calibration and verification samples for an export, taken from the run that trained the model.

A run folder records which faces went to which split (``split.json`` sources). The
representative (calibration) set is a class-balanced sample of the run's TRAIN split,
the verification set is the run's TEST split: both are re-read with the core reader
(``load_faces``) and passed through THE core preprocessing with the run's own
parameters, exactly as in training. A bare ``.keras`` file has no run, so its data
comes from ``--data`` (and ``--verify-data``) instead.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeemo.errors import EdgeemoError
from edgeemo.face import FacePreprocessing, preprocess_faces
from edgeemo.face_datasets import FaceDataset, load_faces
from edgeemo.face_index import has_official_test
from edgeemo.labels import EMOTIONS
from edgeemo.splits import stratified_split
from edgeemo.voice import VoicePreprocessing, preprocess_files
from edgeemo.voice_datasets import VoiceDataset, load_voice

SEED = 0  # fixed: the same run always gets the same calibration and verification samples


@dataclass
class Samples:
    """Preprocessed model inputs with their labels and where they came from."""

    x: np.ndarray  # float32 model inputs from the core preprocessing: (N, 48, 48, 1) faces, (N, frames, coeffs) voice
    y: np.ndarray  # int64 class indices into the labels
    sources: list[str]
    description: str  # human-readable origin, e.g. "test split of run runs/fer (3589 faces)"
    class_balanced: bool = False

    def __len__(self) -> int:
        return len(self.y)

    def class_counts(self, labels: list[str] | tuple[str, ...] = EMOTIONS) -> dict[str, int]:
        counts = np.bincount(self.y, minlength=len(labels))
        return {name: int(c) for name, c in zip(labels, counts, strict=True)}


@dataclass
class ExportSource:
    """What is exported: the Keras file and everything known about how it was trained."""

    model_path: Path
    run_dir: Path | None  # None for a bare .keras file
    config: dict[str, Any]  # the run's config.json ({} for a bare .keras file)
    labels: list[str]
    preprocessing: FacePreprocessing | VoicePreprocessing
    task: str = "face"
    split_sources: dict[str, list[str]] = field(default_factory=dict)  # split.json
    run_metrics: dict[str, Any] = field(default_factory=dict)  # metrics.json
    data: Path | None = None  # where the training data is read from (after --data override)
    dataset: str = "auto"
    verify_data: Path | None = None
    limit_per_class: int | None = None
    notes: list[str] = field(default_factory=list)  # e.g. "trained with mixed_float16 ..."
    voice_roots: list[Path] = field(default_factory=list)  # voice: the corpus folders, in training order


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise EdgeemoError("file not found", path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EdgeemoError(f"not valid JSON ({exc})", path) from None


def resolve_source(
    path: str | Path,
    data: str | Path | None = None,
    dataset: str = "auto",
    verify_data: str | Path | None = None,
    limit_per_class: int | None = None,
) -> ExportSource:
    """A run folder (``best.keras`` + ``config.json`` + ``split.json``) or a ``.keras`` file.

    A ``.keras`` file that sits in a run folder (e.g. ``runs/x/last.keras``) uses that
    run's config and splits. ``data`` overrides where the run's training data is read
    from (the run's splits are matched by path relative to the data root).
    """
    path = Path(path)
    if not path.exists():
        raise EdgeemoError("no such run folder or .keras file", path)
    if path.is_dir():
        run_dir, model_path = path, path / "best.keras"
        if not model_path.is_file():
            raise EdgeemoError("not a training run folder (no best.keras inside)", path)
    elif path.suffix.lower() == ".keras":
        model_path = path
        run_dir = (
            path.parent if (path.parent / "config.json").is_file() and (path.parent / "split.json").is_file() else None
        )
    else:
        raise EdgeemoError("expected a training run folder or a .keras file", path)

    if run_dir is None:
        if data is None:
            raise EdgeemoError("a bare .keras file needs --data (calibration and verification faces)", path)
        return ExportSource(
            model_path=model_path,
            run_dir=None,
            config={},
            labels=list(EMOTIONS),
            preprocessing=FacePreprocessing(),
            data=Path(data),
            dataset=dataset,
            verify_data=None if verify_data is None else Path(verify_data),
            limit_per_class=limit_per_class,
        )

    config = _read_json(run_dir / "config.json")
    if not isinstance(config, dict) or "preprocessing" not in config or "data" not in config:
        raise EdgeemoError("config.json lacks 'preprocessing' or 'data'", run_dir / "config.json")
    task = config.get("task", "face")
    if task not in ("face", "voice"):
        raise EdgeemoError(f"unknown task {task!r} in config.json (face or voice)", run_dir / "config.json")
    try:
        pre: FacePreprocessing | VoicePreprocessing = (
            FacePreprocessing.from_dict(config["preprocessing"])
            if task == "face"
            else VoicePreprocessing.from_dict(config["preprocessing"])
        )
        if task == "voice" and not pre.count:
            raise EdgeemoError("voice preprocessing has no standardisation statistics (unfinished run?)")
    except (EdgeemoError, TypeError) as exc:
        raise EdgeemoError(f"bad preprocessing in config.json ({exc})", run_dir / "config.json") from None
    splits = _read_json(run_dir / "split.json")
    if not isinstance(splits, dict) or not all(isinstance(splits.get(k), list) for k in ("train", "test")):
        raise EdgeemoError("split.json must hold lists 'train' and 'test' of sources", run_dir / "split.json")
    metrics_path = run_dir / "metrics.json"
    run_metrics = _read_json(metrics_path) if metrics_path.is_file() else {}
    split_desc = config.get("split") or {}
    if task == "voice":
        return _voice_source(model_path, run_dir, config, pre, splits, run_metrics, data, limit_per_class)
    data_path = Path(data) if data is not None else Path(config["data"])
    if not data_path.exists():
        raise EdgeemoError(
            f"the run's training data {str(data_path)!r} is not there (relative paths are from "
            "the current folder); pass --data",
            run_dir / "config.json",
        )
    if verify_data is not None and not config.get("test_data"):
        raise EdgeemoError(
            "--verify-data is for a bare .keras file or a run trained with a separate test set; "
            "this run's test split is read from its data (use --data if it moved)",
            run_dir,
        )
    return ExportSource(
        model_path=model_path,
        run_dir=run_dir,
        config=config,
        labels=list(config.get("labels") or EMOTIONS),
        preprocessing=pre,
        task=task,
        split_sources=splits,
        run_metrics=run_metrics,
        data=data_path,
        dataset=dataset if dataset != "auto" else split_desc.get("dataset", "auto"),
        verify_data=None if verify_data is None else Path(verify_data),
        limit_per_class=limit_per_class if limit_per_class is not None else config.get("limit_per_class"),
    )


def balanced_indices(labels: np.ndarray, n: int, seed: int = SEED) -> np.ndarray:
    """Up to ``n`` indices, as equal per class as the class sizes allow (seeded, sorted)."""
    rng = np.random.default_rng(seed)
    pools = {int(c): rng.permutation(np.flatnonzero(labels == c)) for c in np.unique(labels)}
    quota = dict.fromkeys(pools, 0)
    remaining = min(n, len(labels))
    while remaining > 0:
        open_classes = [c for c in pools if quota[c] < len(pools[c])]
        share = max(1, remaining // len(open_classes))
        for c in open_classes:
            take = min(share, len(pools[c]) - quota[c], remaining)
            quota[c] += take
            remaining -= take
            if remaining == 0:
                break
    return np.sort(np.concatenate([pools[c][: quota[c]] for c in pools]))


def stratified_indices(labels: np.ndarray, n: int | None, seed: int = SEED) -> np.ndarray:
    """All indices, or about ``n`` of them keeping the class proportions (seeded, sorted)."""
    if n is None or n >= len(labels):
        return np.arange(len(labels))
    _, hold = stratified_split(labels, n / len(labels), seed)
    return hold


def _key(source: str, root: str | Path) -> str:
    """A source path relative to its data root, so a moved data folder still matches."""
    return os.path.normpath(os.path.relpath(str(source), str(root)))


def _select(
    pool: FaceDataset, pool_root: Path, wanted: list[str], wanted_root: str, what: str, hint: Path
) -> FaceDataset:
    index = {_key(s, pool_root): i for i, s in enumerate(pool.sources)}
    idx: list[int] = []
    missing: list[str] = []
    for s in wanted:
        i = index.get(_key(s, wanted_root))
        if i is None:
            missing.append(s)
        else:
            idx.append(i)
    if missing:
        raise EdgeemoError(
            f"{len(missing)} of {len(wanted)} {what} faces listed in split.json are not in "
            f"{pool_root} (first: {missing[0]}); point --data at the run's training data",
            hint,
        )
    return pool.subset(idx, f"{pool.name}-{what}")


def load_run_split(source: ExportSource, which: str) -> FaceDataset:
    """Re-read the run's ``train`` or ``test`` split (split.json sources) with the core reader."""
    assert source.run_dir is not None and source.data is not None
    config, data = source.config, source.data
    wanted = source.split_sources[which]
    extra = config.get("extra_train")
    if which == "train" and extra:  # calibrate on the main dataset's faces; the extra subjects are few
        wanted = [w for w in wanted if not str(w).startswith(str(extra))]
    if not wanted:
        raise EdgeemoError(f"split.json has an empty {which!r} split", source.run_dir / "split.json")
    limit = source.limit_per_class
    if source.task == "voice":
        raise EdgeemoError("internal: voice runs are read by voice_split")
    if which == "test":
        if config.get("test_data"):
            root = source.verify_data or Path(config["test_data"])
            pool = load_faces(root, source.dataset, split="publictest", limit_per_class=limit)
            return _select(pool, root, wanted, config["test_data"], which, source.run_dir)
        if has_official_test(data):  # FER2013's publictest/, or FER+'s PublicTest rows
            pool = load_faces(data, source.dataset, split="publictest", limit_per_class=limit)
            return _select(pool, data, wanted, config["data"], which, source.run_dir)
    pool = load_faces(data, source.dataset, split="train", limit_per_class=limit)
    return _select(pool, data, wanted, config["data"], which, source.run_dir)


def _to_samples(ds: FaceDataset, idx: np.ndarray, pre: FacePreprocessing, description: str, balanced: bool) -> Samples:
    sub = ds.subset(idx)
    return Samples(preprocess_faces(sub.images, pre), sub.labels, sub.sources, description, balanced)


def export_samples(
    source: ExportSource, calib_size: int = 500, verify_size: int | None = None, seed: int = SEED
) -> tuple[Samples, Samples]:
    """(calibration, verification) samples, both through THE core preprocessing.

    Run: calibration = class-balanced ``calib_size`` faces of the TRAIN split;
    verification = the TEST split (all, or ``verify_size`` class-stratified).
    Bare .keras: calibration from ``data`` (its train/ split), verification from
    ``verify_data``, else ``data``'s publictest/, else a stratified 20% of ``data``
    held out from calibration.
    """
    if calib_size < 1:
        raise EdgeemoError(f"--calib-size must be at least 1, got {calib_size}")
    if verify_size is not None and verify_size < 1:
        raise EdgeemoError(f"--verify-size must be at least 1, got {verify_size}")
    pre = source.preprocessing
    if source.task == "voice":
        return voice_samples(source, calib_size, verify_size, seed)
    assert isinstance(pre, FacePreprocessing)
    if source.run_dir is not None:
        train = load_run_split(source, "train")
        test = load_run_split(source, "test")
        train_desc = f"train split of run {source.run_dir} ({len(train)} faces from {source.config['data']})"
        origin = (source.config.get("split") or {}).get("test", {}).get("source", "held out")
        test_desc = f"test split of run {source.run_dir} ({origin})"
    else:
        assert source.data is not None
        pool = load_faces(source.data, source.dataset, split="train", limit_per_class=source.limit_per_class)
        verify_root = source.verify_data
        if verify_root is None and has_official_test(source.data):  # FER2013's publictest/ or FER+'s PublicTest
            verify_root = source.data / "publictest" if (source.data / "publictest").is_dir() else source.data
        if verify_root is not None:
            train = pool
            test = load_faces(
                verify_root,
                source.dataset,
                split="publictest",
                limit_per_class=source.limit_per_class,
            )
            test_desc = f"{verify_root} ({len(test)} faces)"
        else:
            keep, hold = stratified_split(pool.labels, 0.2, seed)
            train, test = pool.subset(keep), pool.subset(hold)
            test_desc = f"stratified 20% of {source.data} held out from calibration ({len(test)} faces)"
        train_desc = f"{source.data} ({len(train)} faces)"
    calib_idx = balanced_indices(train.labels, calib_size, seed)
    verify_idx = stratified_indices(test.labels, verify_size, seed)
    calib = _to_samples(train, calib_idx, pre, f"class-balanced sample of the {train_desc}", True)
    if len(verify_idx) < len(test):
        test_desc = f"class-stratified {len(verify_idx)} of the {test_desc}"
    verify = _to_samples(test, verify_idx, pre, test_desc, False)
    return calib, verify


# ----------------------------------------------------------------------------- voice


def _voice_source(
    model_path: Path,
    run_dir: Path,
    config: dict[str, Any],
    pre: VoicePreprocessing,
    splits: dict[str, Any],
    run_metrics: dict[str, Any],
    data: str | Path | None,
    limit_per_class: int | None,
) -> ExportSource:
    """A voice run: its corpus folders (``--data`` may replace them, comma-separated, same order)."""
    roots = [Path(p) for p in (str(data).split(",") if data is not None else config["data"])]
    if len(roots) != len(config["data"]):
        raise EdgeemoError(
            f"--data names {len(roots)} folders but the run was trained on {len(config['data'])}", run_dir
        )
    missing = [r for r in roots if not r.exists()]
    if missing:
        raise EdgeemoError(
            f"the run's corpus folder {str(missing[0])!r} is not there (relative paths are from the current "
            "folder); pass --data",
            run_dir / "config.json",
        )
    return ExportSource(
        model_path=model_path,
        run_dir=run_dir,
        config=config,
        labels=list(config.get("labels") or EMOTIONS),
        preprocessing=pre,
        task="voice",
        split_sources=splits,
        run_metrics=run_metrics,
        data=roots[0],
        dataset=(config.get("split") or {}).get("dataset", "auto"),
        limit_per_class=limit_per_class,
        voice_roots=roots,
    )


def voice_split(source: ExportSource, which: str) -> VoiceDataset:
    """Re-read a voice run's ``train`` or ``test`` clips (split.json) with the core corpus reader."""
    assert source.run_dir is not None
    calm = (source.config.get("split") or {}).get("calm", "neutral")
    pool = load_voice(source.voice_roots, overrides={"ravdess": {"02": None}} if calm == "exclude" else None)
    trained_roots = source.config["data"]

    def key(path: str, roots: list[str] | list[Path]) -> str:
        for root in roots:
            rel = os.path.relpath(path, str(root))
            if not rel.startswith(".."):
                return f"{roots.index(root)}:{os.path.normpath(rel)}"  # type: ignore[arg-type]
        return os.path.normpath(path)

    index = {key(p, list(source.voice_roots)): i for i, p in enumerate(pool.paths)}
    wanted = source.split_sources[which]
    if not wanted:
        raise EdgeemoError(f"split.json has an empty {which!r} split", source.run_dir / "split.json")
    idx, missing = [], []
    for p in wanted:
        i = index.get(key(p, trained_roots))
        (missing if i is None else idx).append(p if i is None else i)
    if missing:
        raise EdgeemoError(
            f"{len(missing)} of {len(wanted)} {which} clips listed in split.json are not in "
            f"{', '.join(map(str, source.voice_roots))} (first: {missing[0]}); point --data at the run's corpora",
            source.run_dir,
        )
    return pool.subset(idx, f"{pool.name}-{which}").first_per_class(source.limit_per_class)


def voice_samples(
    source: ExportSource, calib_size: int = 500, verify_size: int | None = None, seed: int = SEED
) -> tuple[Samples, Samples]:
    """(calibration, verification) for a voice run: class-balanced TRAIN clips, the TEST clips
    (held-out speakers), both through THE core voice front end (``edgeemo.voice``)."""
    if source.run_dir is None:
        raise EdgeemoError("a voice model is exported from its training run folder (it holds the statistics)")
    pre = source.preprocessing
    assert isinstance(pre, VoicePreprocessing)
    train, test = voice_split(source, "train"), voice_split(source, "test")
    calib_idx = balanced_indices(train.labels, calib_size, seed)
    verify_idx = stratified_indices(test.labels, verify_size, seed)
    origin = (source.config.get("split") or {}).get("test", {}).get("source", "held out")
    out = []
    for ds, idx, desc, balanced in (
        (train, calib_idx, f"class-balanced sample of the train split of run {source.run_dir}", True),
        (test, verify_idx, f"test split of run {source.run_dir} ({origin})", False),
    ):
        sub = ds.subset(idx)
        # an adapting model hears each speaker's clips in a seeded order, as bench and the device do
        x, kept = preprocess_files(sub.paths, pre, speakers=[str(g) for g in sub.groups], seed=seed)
        if len(kept) == 0:
            raise EdgeemoError(f"no clip with speech in the {desc}", source.run_dir)
        out.append(Samples(x, sub.labels[kept], [sub.paths[i] for i in kept], desc, balanced))
    return out[0], out[1]
