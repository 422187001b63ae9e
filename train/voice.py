"""``edgeemo train voice``: Conv1D / LSTM / Conv1D+LSTM on MFCCs from RAVDESS, TESS, CREMA-D, SAVEE.

Clips go through the core reader (edgeemo.voice_datasets) and THE core front end
(edgeemo.voice): VAD trim, fixed window, MFCC, then standardisation with statistics of
the training clips, stored in config.json and later in every exported manifest.
Splits are speaker-independent by default; ``--split random`` exists only to compare
with the seed papers and is labelled as such everywhere.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgeemo import __version__
from edgeemo.audio import AudioFeatures, RunningStats, clip_features, load_audio
from edgeemo.errors import EdgeemoError
from edgeemo.labels import EMOTIONS
from edgeemo.metrics import classification_report
from edgeemo.splits import group_split, stratified_split
from edgeemo.train.datasets import make_dataset
from edgeemo.train.run import (
    TrainSettings,
    check_config,
    class_weights,
    console,
    fit,
    read_history,
    setup_hardware,
    stream_seed,
)
from edgeemo.train.voice_augment import (
    FeatureMasking,
    VoiceAugmentation,
    augment_waveform,
    mask_features,
)
from edgeemo.train.voice_models import VOICE_ARCHS, build_voice_model
from edgeemo.voice import VoicePreprocessing
from edgeemo.voice_datasets import VoiceDataset, load_voice, speaker_split

CALM = ("neutral", "exclude")


def limit_classes(ds: VoiceDataset, limit: int | None, seed: int = 0) -> VoiceDataset:
    """``limit`` clips of each class drawn at random (seeded) across all speakers (quick runs, tests)."""
    if limit is None:
        return ds
    rng = np.random.default_rng(seed)
    idx = [rng.permutation(np.flatnonzero(ds.labels == c))[:limit] for c in np.unique(ds.labels)]
    return ds.subset(np.sort(np.concatenate(idx)))


def resolve_voice_splits(
    data: list[Path],
    split: str = "speaker",
    test_speakers: list[str] | None = None,
    test_fraction: float = 0.2,
    val_fraction: float = 0.15,
    seed: int = 0,
    calm: str = "neutral",
    limit_per_class: int | None = None,
    val_speakers: list[str] | None = None,
) -> tuple[VoiceDataset, VoiceDataset, VoiceDataset, dict[str, Any]]:
    """Load the corpora and cut train / val / test.

    ``speaker``: test = ``test_speakers`` (or whole speakers drawn at random up to
    ``test_fraction``), validation = ``val_speakers`` (or other whole speakers drawn at
    random up to ``val_fraction``); no speaker on two sides.
    ``random``: stratified clip-level split (speakers leak; for seed-paper comparison only).
    """
    if split not in ("speaker", "random"):
        raise EdgeemoError(f"unknown --split {split!r} (expected speaker or random)")
    if val_speakers and split != "speaker":
        raise EdgeemoError("--val-speakers needs --split speaker")
    if calm not in CALM:
        raise EdgeemoError(f"unknown --calm {calm!r} (expected neutral or exclude)")
    overrides = {"ravdess": {"02": None}} if calm == "exclude" else None
    pool = limit_classes(load_voice(data, overrides=overrides), limit_per_class, seed)
    if len(pool) == 0:
        raise EdgeemoError("no labelled clips found", data[0])
    by_speaker = split == "speaker"
    if by_speaker:
        n_speakers = len(pool.speakers())
        if test_speakers is None and n_speakers < 3:
            raise EdgeemoError(
                f"only {n_speakers} speaker(s) ({', '.join(pool.speakers())}): a speaker-independent split "
                "needs at least 3 (train, validation, test); add a corpus, or use --split random "
                "(speakers leak: for comparison with the seed papers only)",
                data[0],
            )
        keep, hold = speaker_split(pool, test_speakers, test_fraction, seed)
        rest = pool.subset(keep)
        if len(set(rest.groups)) < 2:
            raise EdgeemoError("after holding out the test speakers, fewer than 2 speakers are left for train and "
                               "validation", data[0])
        if val_speakers:
            tr, va = speaker_split(rest, val_speakers)
        else:
            tr, va = group_split(rest.groups, val_fraction, seed + 1)
    else:
        keep, hold = stratified_split(pool.labels, test_fraction, seed)
        rest = pool.subset(keep)
        tr, va = stratified_split(rest.labels, val_fraction, seed + 1)
    test = pool.subset(hold, f"{pool.name}-test")
    train, val = rest.subset(tr, f"{pool.name}-train"), rest.subset(va, f"{pool.name}-val")
    if by_speaker:
        overlap = set(train.groups) & (set(val.groups) | set(test.groups))
        assert not overlap, f"speaker leak: {sorted(overlap)[:5]}"
    protocol = "speaker-independent" if by_speaker else "random (LEAKY: speakers on both sides; seed-paper comparison)"
    held = ", ".join(sorted(set(map(str, test.groups))))
    desc = {
        "dataset": pool.name,
        "protocol": protocol,
        "calm": calm,
        "train": {"n": len(train), "classes": train.class_counts(), "speakers": sorted(set(map(str, train.groups)))},
        "val": {
            "n": len(val),
            "source": f"speakers {', '.join(val_speakers)}"
            if val_speakers
            else f"{val_fraction:.0%} of the training side ({'whole speakers' if by_speaker else 'stratified'})",
            "speakers": sorted(set(map(str, val.groups))),
        },
        "test": {
            "n": len(test),
            "source": (f"speakers {held}" if by_speaker else f"stratified random {test_fraction:.0%} of the clips"),
            "classes": test.class_counts(),
            "speakers": sorted(set(map(str, test.groups))),
        },
        "excluded": dict(pool.excluded),
    }
    return train, val, test, desc


def _features(
    ds: VoiceDataset, feats: AudioFeatures, aug: VoiceAugmentation | None, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Raw (unstandardised) MFCCs of every clip, plus ``aug.copies`` augmented versions of each.

    Returns (x, labels, sources of the rows, files without speech).
    """
    rng = np.random.default_rng(seed)
    copies = aug.copies if aug is not None else 0
    rows, labels, sources, silent = [], [], [], []
    with Progress(TextColumn(f"MFCC {what}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(what, total=len(ds))
        for item in ds:
            samples, _ = load_audio(item.path, feats.sample_rate)
            x = clip_features(samples, feats)
            if x is None:
                silent.append(item.path)
                progress.advance(task)
                continue
            rows.append(x)
            labels.append(item.label)
            sources.append(item.path)
            for _ in range(copies):
                assert aug is not None
                xa = clip_features(augment_waveform(samples, aug, rng, feats.sample_rate), feats)
                if xa is not None:
                    rows.append(xa)
                    labels.append(item.label)
                    sources.append(f"{item.path}#aug")
            progress.advance(task)
    frames, coeffs = feats.n_frames, feats.n_features
    x = np.stack(rows) if rows else np.zeros((0, frames, coeffs), np.float32)
    return x, np.asarray(labels, np.int64), sources, silent


def _load_or_compute(out: Path, train: VoiceDataset, val: VoiceDataset, test: VoiceDataset,
                     feats: AudioFeatures, aug: VoiceAugmentation, seed: int) -> dict[str, Any]:
    """Features of the three splits, cached in the run folder (``features.npz``) for resume.

    The cache carries a key (clips of each split, front end, augmentation, seed); a cache
    with another key (e.g. copied from a different run) is recomputed, never reused.
    """
    import hashlib

    key = hashlib.sha256(json.dumps({
        "train": train.paths, "val": val.paths, "test": test.paths,
        "features": feats.to_dict(), "augmentation": aug.to_dict(), "seed": seed,
    }).encode()).hexdigest()
    cache = out / "features.npz"
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            cached = {k: z[k] for k in z.files}
        if str(cached.pop("key", "")) == key:
            console.print(f"features from {cache}")
            return {k: (v.tolist() if v.dtype.kind in "UO" else v) for k, v in cached.items()}
        console.print(f"{cache} was made for other clips or settings; recomputing")
    t0 = time.time()
    parts: dict[str, Any] = {}
    for name, ds, a in (("train", train, aug), ("val", val, None), ("test", test, None)):
        x, y, sources, silent = _features(ds, feats, a if a is not None and a.copies else None, seed, name)
        parts.update({f"x_{name}": x, f"y_{name}": y, f"src_{name}": sources, f"silent_{name}": silent})
    console.print(f"features computed in {time.time() - t0:.0f}s")
    np.savez(cache, key=np.asarray(key), **{k: np.asarray(v) if isinstance(v, list) else v for k, v in parts.items()})
    return parts


def train_voice(
    data: list[Path],
    out: Path,
    arch: str = "crnn",
    split: str = "speaker",
    test_speakers: list[str] | None = None,
    test_fraction: float = 0.2,
    val_fraction: float = 0.15,
    calm: str = "neutral",
    features: AudioFeatures | None = None,
    augmentation: VoiceAugmentation | None = None,
    settings: TrainSettings | None = None,
    class_weight: str = "sqrt",
    dropout: float = 0.4,
    limit_per_class: int | None = None,
    val_speakers: list[str] | None = None,
    masking: FeatureMasking | None = None,
) -> dict[str, Any]:
    """Train (or resume) a voice model in ``out``; returns the test metrics of the best checkpoint."""
    if arch not in VOICE_ARCHS:
        raise EdgeemoError(f"unknown --arch {arch!r} for voice (expected {', '.join(VOICE_ARCHS)})")
    feats = features or AudioFeatures()
    augmentation = augmentation or VoiceAugmentation()
    settings = settings or TrainSettings(epochs=60, batch_size=32, patience=15, lr_patience=4)
    stream = stream_seed(settings.seed, len(read_history(Path(out) / "history.csv")))  # the split keeps seed
    hardware, policy = setup_hardware(stream, settings.precision, cpu_bfloat16=False)
    t0 = time.time()
    train, val, test, split_desc = resolve_voice_splits(
        data, split, test_speakers, test_fraction, val_fraction, settings.seed, calm, limit_per_class, val_speakers
    )
    console.print(f"loaded in {time.time() - t0:.1f}s on {hardware}: train {len(train)}, val {len(val)}, "
                  f"test {len(test)} clips ({split_desc['protocol']})")
    config: dict[str, Any] = {
        "task": "voice",
        "arch": arch,
        "data": [str(d) for d in data],
        "test_data": None,
        "split": split_desc,
        "labels": list(EMOTIONS),
        "input_shape": [feats.n_frames, feats.n_features],
        "preprocessing": VoicePreprocessing(feats).to_dict(),
        "augmentation": augmentation.to_dict(),
        "feature_masking": (masking or FeatureMasking(0, 0, 0, 0)).to_dict(),
        "settings": asdict(settings),
        "class_weight": class_weight,
        "dropout": dropout,
        "limit_per_class": limit_per_class,
        "edgeemo_version": __version__,
        "hardware": hardware,
    }
    check_config(out, config)
    parts = _load_or_compute(out, train, val, test, feats, augmentation, settings.seed)
    originals = [i for i, s in enumerate(parts["src_train"]) if not str(s).endswith("#aug")]
    stats = RunningStats().update(parts["x_train"][originals].reshape(-1, feats.n_features))
    pre = VoicePreprocessing.from_stats(feats, stats)
    config["preprocessing"] = pre.to_dict()
    silent = {k: list(parts[f"silent_{k}"]) for k in ("train", "val", "test")}
    config["split"]["no_speech"] = {k: len(v) for k, v in silent.items()}
    (out / "config.json").write_text(json.dumps(config, indent=2))
    # split.json lists the clips that reach the model (no-speech clips are left out and counted)
    (out / "split.json").write_text(json.dumps({
        "train": [s for s in parts["src_train"] if not str(s).endswith("#aug")],
        "val": list(parts["src_val"]),
        "test": list(parts["src_test"]),
        "no_speech": silent,
    }))
    x_train, x_val, x_test = (pre.standardize(parts[f"x_{k}"]) for k in ("train", "val", "test"))
    y_train, y_val, y_test = (np.asarray(parts[f"y_{k}"], np.int64) for k in ("train", "val", "test"))
    if len(x_val) == 0 or len(x_test) == 0:
        raise EdgeemoError("validation or test split is empty (too few clips with speech)", data[0])
    train_ds = make_dataset(x_train, y_train, settings.batch_size, None, stream, shuffle=True)
    if masking is not None and masking.active:
        train_ds = train_ds.map(lambda a, b: (mask_features(a, masking), b))
    val_ds = make_dataset(x_val, y_val, 256, None, settings.seed)
    steps = int(np.ceil(len(x_train) / settings.batch_size))
    model = fit(
        out,
        lambda: build_voice_model(arch, pre.input_shape, len(EMOTIONS), dropout),
        train_ds,
        val_ds,
        steps,
        settings,
        class_weights(y_train, len(EMOTIONS), class_weight),
        title=f"voice {arch} on {split_desc['dataset']} ({split_desc['protocol'].split(' (')[0]})",
        policy=policy,
    )
    probs = model.predict(x_test, batch_size=256, verbose=0)
    present = sorted(set(y_train.tolist()))
    report = classification_report(y_test, probs.argmax(1), EMOTIONS)
    report.update({
        "split": "test",
        "source": split_desc["test"]["source"],
        "protocol": split_desc["protocol"],
        "params": int(model.count_params()),
        "no_speech_test_clips": len(silent["test"]),
        "trained_classes": [EMOTIONS[i] for i in present],
    })
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    console.print(
        f"test accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}, UAR {report['uar']:.4f} on "
        f"{len(x_test)} clips ({split_desc['protocol']}); run folder {out}"
    )
    return report
