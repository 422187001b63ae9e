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

import keras
import numpy as np

from edgeemo import __version__
from edgeemo.audio import AudioFeatures
from edgeemo.errors import EdgeemoError
from edgeemo.labels import EMOTIONS
from edgeemo.metrics import classification_report, per_corpus
from edgeemo.splits import group_split, stratified_split
from edgeemo.train.datasets import give_back_large_buffers, make_dataset
from edgeemo.train.distribute import clear_tf_errors
from edgeemo.train.hardware import setup_hardware
from edgeemo.train.options import ADVERSARY_ON, BALANCE, HEAD_UNITS, check_choice
from edgeemo.train.run import TrainSettings, check_config, class_weights, console, fit, read_history, stream_seed
from edgeemo.train.voice_adversary import DomainAdversarial, domain_targets
from edgeemo.train.voice_augment import (
    ChannelAugmentation,
    FeatureMasking,
    VoiceAugmentation,
    mask_features,
)
from edgeemo.train.voice_bank import FeatureBank, Rows, require_rows
from edgeemo.train.voice_inputs import (
    adaptation_note,
    adaptation_orders,
    causal_inputs,
    summarized_rows,
    training_statistics,
)
from edgeemo.train.voice_models import VOICE_ARCHS, build_voice_model
from edgeemo.train.voice_stream import VoiceStream
from edgeemo.voice import SpeakerAdaptation, VoicePreprocessing
from edgeemo.voice_datasets import VoiceDataset, drop_speakers, load_voice, speaker_split

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
    hold_out: bool = True,
    exclude_speakers: list[str] | None = None,
) -> tuple[VoiceDataset, VoiceDataset, VoiceDataset, dict[str, Any]]:
    """Load the corpora and cut train / val / test.

    ``speaker``: test = ``test_speakers`` (or whole speakers drawn at random up to
    ``test_fraction``), validation = ``val_speakers`` (or other whole speakers drawn at
    random up to ``val_fraction``); no speaker on two sides.
    ``random``: stratified clip-level split (speakers leak; for seed-paper comparison only).
    ``hold_out=False``: no test side (the test set comes from other corpora).
    ``exclude_speakers``: left out of every side (another protocol's held-out speakers).
    """
    if split not in ("speaker", "random"):
        raise EdgeemoError(f"unknown --split {split!r} (expected speaker or random)")
    if val_speakers and split != "speaker":
        raise EdgeemoError("--val-speakers needs --split speaker")
    if calm not in CALM:
        raise EdgeemoError(f"unknown --calm {calm!r} (expected neutral or exclude)")
    overrides = {"ravdess": {"02": None}} if calm == "exclude" else None
    pool = drop_speakers(limit_classes(load_voice(data, overrides=overrides), limit_per_class, seed),
                         exclude_speakers)
    if len(pool) == 0:
        raise EdgeemoError("no labelled clips found", data[0])
    by_speaker = split == "speaker"
    if by_speaker:
        n_speakers = len(pool.speakers())
        if test_speakers is None and n_speakers < (3 if hold_out else 2):
            raise EdgeemoError(
                f"only {n_speakers} speaker(s) ({', '.join(pool.speakers())}): a speaker-independent split "
                "needs at least 3 (train, validation, test); add a corpus, or use --split random "
                "(speakers leak: for comparison with the seed papers only)",
                data[0],
            )
        if hold_out:
            keep, hold = speaker_split(pool, test_speakers, test_fraction, seed)
        else:
            keep, hold = np.arange(len(pool)), np.zeros(0, np.int64)
        rest = pool.subset(keep)
        if len(set(rest.groups)) < 2:
            raise EdgeemoError("after holding out the test speakers, fewer than 2 speakers are left for train and "
                               "validation", data[0])
        if val_speakers:
            tr, va = speaker_split(rest, val_speakers)
        else:
            tr, va = group_split(rest.groups, val_fraction, seed + 1)
    else:
        if hold_out:
            keep, hold = stratified_split(pool.labels, test_fraction, seed)
        else:
            keep, hold = np.arange(len(pool)), np.zeros(0, np.int64)
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


def balance_weights(rows: Rows, mode: str) -> np.ndarray | None:
    """Per-row weights: 'corpus-class' gives every (corpus, class) pair present the same total
    weight (a corpus without a class, e.g. CREMA-D surprise, simply has none); 'speaker-class' every
    (speaker, class) pair, so a corpus weighs as many speakers as it has; 'none' = None."""
    if mode == "none":
        return None
    group = rows.speakers if mode == "speaker-class" else [s.split(":", 1)[0] for s in rows.speakers]
    keys = np.asarray([f"{g}/{y}" for g, y in zip(group, rows.labels, strict=True)])
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    return (w / w.mean()).astype(np.float32)


def bag_speakers(speakers: list[str], fraction: float, seed: int) -> list[str]:
    """The training speakers a bagged ensemble member leaves out: ``round(fraction * n)`` of them, drawn by
    ``seed`` (at least one is left out and one kept)."""
    n = len(speakers)
    k = int(round(fraction * n))
    if n < 2 or not 1 <= k < n:
        raise EdgeemoError(f"--speaker-bag {fraction} leaves out {k} of {n} training speakers: it must leave out "
                           "at least one and keep one")
    return sorted(np.random.default_rng(seed).choice(sorted(speakers), size=k, replace=False).tolist())


def bag_weights(weights: np.ndarray, speakers: np.ndarray, left_out: list[str]) -> np.ndarray:
    """Row weights with the bag's left-out speakers at 0 and the kept rows renormalised to a mean of 1."""
    kept = ~np.isin(speakers, left_out)
    return (weights * kept / weights[kept].mean()).astype(np.float32)


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
    channel: ChannelAugmentation | None = None,
    adaptation: SpeakerAdaptation | None = None,
    balance: str = "none",
    test_data: list[Path] | None = None,
    feature_cache: Path | None = None,
    exclude_speakers: list[str] | None = None,
    summary: str = "frames",
    data_seed: int | None = None,
    head_units: int = HEAD_UNITS,
    adversary: float = 0.0,
    adversary_on: str = "corpus",
    speaker_bag: float = 0.0,
) -> dict[str, Any]:
    """Train (or resume) a voice model in ``out``; returns the test metrics of the best checkpoint.

    ``test_data``: corpora tested as a whole (leave-one-corpus-out); ``data`` is then cut into
    train and validation only. ``feature_cache``: the shared per-speaker feature folder
    (default: ``voice-features`` beside the run folder). ``summary``: what the model sees of a
    clip (``edgeemo.voice.SUMMARIES``: the frames, or one vector of utterance functionals).
    ``adversary``: weight of the adversary (``voice_adversary``; 0 = none) on ``adversary_on``: the
    corpus, or the sentence a clip says within its corpus. ``speaker_bag``:
    this fraction of the training speakers, drawn by the seed, gets no weight (bagging for ensembles).
    """
    if arch not in VOICE_ARCHS:
        raise EdgeemoError(f"unknown --arch {arch!r} for voice (expected {', '.join(VOICE_ARCHS)})")
    if (arch == "mlp") != (summary == "functionals"):
        raise EdgeemoError("--summary functionals goes with --arch mlp (a vector per clip), and only with it")
    if summary == "functionals" and masking is not None and masking.active:
        raise EdgeemoError("--time-masks/--coeff-masks mask frames: not with --summary functionals")
    if summary == "functionals" and settings is not None and settings.stream:
        raise EdgeemoError("--stream reads frames speaker by speaker; --summary functionals keeps one small vector "
                           "per clip in memory: train it without --stream")
    if adversary < 0 or (adversary > 0 and (arch != "mlp" or balance == "none" or (settings and settings.stream))):
        raise EdgeemoError("--adversary is a weight >= 0, for --arch mlp with --balance and without --stream")
    if not 0.0 <= speaker_bag < 1.0 or (speaker_bag > 0 and (balance == "none" or (settings and settings.stream))):
        raise EdgeemoError("--speaker-bag is a fraction in [0, 1), with --balance and without --stream")
    check_choice("--adversary-on", adversary_on, ADVERSARY_ON)
    if adversary > 0 and adversary_on == "corpus" and len(data) < 2:
        raise EdgeemoError("--adversary needs at least two training corpora to tell apart (--data A,B)", Path(data[0]))
    feats = features or AudioFeatures()
    if balance not in BALANCE:
        raise EdgeemoError(f"unknown --balance {balance!r} (expected {' or '.join(BALANCE)})")
    settings = settings or TrainSettings(epochs=60, batch_size=32, patience=15, lr_patience=4)
    stream = stream_seed(settings.seed, len(read_history(Path(out) / "history.csv")))  # the split keeps seed
    data_seed = settings.seed if data_seed is None else data_seed  # split, features, val/test order
    hardware, policy, dist = setup_hardware(stream, settings, cpu_bfloat16=False)
    feature_cache = feature_cache or Path(out).parent / "voice-features"  # beside the run folder, shared by runs
    out = dist.run_folder(Path(out))
    t0 = time.time()
    if test_data:
        pool = drop_speakers(limit_classes(load_voice(test_data), limit_per_class, data_seed), exclude_speakers)
        train, val, _, split_desc = resolve_voice_splits(
            data, split, None, test_fraction, val_fraction, data_seed, calm,
            limit_per_class, val_speakers, hold_out=False, exclude_speakers=exclude_speakers,
        )
        test = pool
        left_out = f" without speakers {', '.join(exclude_speakers)}" if exclude_speakers else ""
        split_desc["test"] = {"n": len(test), "source": "whole corpora " + ", ".join(map(str, test_data)) + left_out,
                              "classes": test.class_counts(), "speakers": test.speakers()}
        split_desc["protocol"] = "leave-corpus-out (test corpora never seen in training)"
    else:
        train, val, test, split_desc = resolve_voice_splits(
            data, split, test_speakers, test_fraction, val_fraction, data_seed, calm, limit_per_class,
            val_speakers, exclude_speakers=exclude_speakers,
        )
    console.print(f"loaded in {time.time() - t0:.1f}s on {hardware}: train {len(train)}, val {len(val)}, "
                  f"test {len(test)} clips ({split_desc['protocol']})")
    bagged_out = bag_speakers(train.speakers(), speaker_bag, settings.seed) if speaker_bag else []
    config: dict[str, Any] = {
        "task": "voice",
        "arch": arch,
        "data": [str(d) for d in data],
        "test_data": [str(d) for d in test_data] if test_data else None,
        "exclude_speakers": exclude_speakers,
        "split": split_desc,
        "labels": list(EMOTIONS),
        "input_shape": list(VoicePreprocessing(feats, summary=summary).input_shape),
        "preprocessing": VoicePreprocessing(feats, adaptation=adaptation, summary=summary).to_dict(),  # stats later
        "augmentation": augmentation.to_dict() if augmentation else None,
        "channel_augmentation": channel.to_dict() if channel else None,
        "adaptation": adaptation.to_dict() if adaptation else None,
        "balance": balance,
        "feature_masking": (masking or FeatureMasking(0, 0, 0, 0)).to_dict(),
        "settings": asdict(settings),
        "class_weight": class_weight,
        "dropout": dropout,
        **({"head_units": head_units} if head_units != HEAD_UNITS else {}),  # recorded when not the default
        **({"adversary": {"weight": adversary, "domain": adversary_on}} if adversary else {}),
        **({"speaker_bag": {"fraction": speaker_bag, "left_out": bagged_out}} if speaker_bag else {}),
        "limit_per_class": limit_per_class,
        "data_seed": data_seed,
        "edgeemo_version": __version__,
        "hardware": hardware,
        "distribution": dist.record(settings.batch_size, policy),
    }
    check_config(out, config)
    babble = [p for p, g in zip(train.paths, train.groups, strict=True)]  # babble noise from training voices only
    bank = FeatureBank(feature_cache, feats, channel, augmentation,
                       data_seed, babble, console=console)
    load = not settings.stream  # a stream reads the features speaker by speaker, when it needs them
    if settings.stream:
        give_back_large_buffers()
    rows = {"train": bank.rows(train, True, "train", load), "val": bank.rows(val, False, "val", load),
            "test": bank.rows(test, False, "test", load)}
    console.print(f"feature cache {bank.folder}: {bank.size_bytes() / 2**20:.0f} MB (float16)")
    for name, r in rows.items():
        require_rows(r, name, Path(data[0]))
    rows = {k: summarized_rows(r, summary, feats) for k, r in rows.items()}
    stats = training_statistics(rows["train"], feats, adaptation is not None, bank)
    pre = VoicePreprocessing.from_stats(feats, stats, adaptation, summary)
    config["preprocessing"] = pre.to_dict()
    silent = {k: list(r.silent) for k, r in rows.items()}
    config["split"]["no_speech"] = {k: len(v) for k, v in silent.items()}
    config["data_pipeline"] = {"stream": settings.stream} | (
        {"read": "speaker by speaker from the feature cache", "cache": settings.stream_cache, "shards": dist.workers}
        if settings.stream else {})
    (out / "config.json").write_text(json.dumps(config, indent=2))
    # split.json lists the clips that reach the model (no-speech clips are left out and counted)
    clean = {k: r.copy == 0 for k, r in rows.items()}
    (out / "split.json").write_text(json.dumps({
        "train": [r for r in np.asarray(rows["train"].paths)[rows["train"].clip[clean["train"]]].tolist()],
        "val": np.asarray(rows["val"].paths)[rows["val"].clip].tolist(),
        "test": np.asarray(rows["test"].paths)[rows["test"].clip].tolist(),
        "no_speech": silent,
    }))
    # training rows: each (speaker, copy) is one channel, adapted on its own; val/test as bench does it
    r = rows["train"]
    channels = np.char.add(np.char.add(r.speakers, "#"), r.copy.astype(str))
    y_train = r.labels.astype(np.int64)
    weights = balance_weights(r, balance)
    if bagged_out and weights is not None:
        weights = bag_weights(weights, r.speakers, bagged_out)
    if settings.stream:
        streams = {"train": VoiceStream(bank, r, pre, adaptation_orders(channels, stream), weights)}
        for k in ("val", "test"):
            streams[k] = VoiceStream(bank, rows[k], pre, adaptation_orders(rows[k].speakers, data_seed))
        cache = Path(settings.stream_cache) if settings.stream_cache else None
        if cache is not None and dist.workers > 1:  # every worker its own cache files
            cache = cache / f"worker{dist.worker_index}"
        train_ds = streams["train"].dataset(settings.batch_size, stream, shuffle=True,
                                            shard=(dist.workers, dist.worker_index), masking=masking, cache=cache)
        val_ds = streams["val"].dataset(256, cache=cache)
    else:
        x_train = causal_inputs(r, pre, stream, channels)
        x_val = causal_inputs(rows["val"], pre, data_seed)
        x_test = causal_inputs(rows["test"], pre, data_seed)
        np.savez(out / "features.npz", inputs_val=x_val.astype(np.float16), y_val=rows["val"].labels.astype(np.int64),
                 inputs_test=x_test.astype(np.float16), y_test=rows["test"].labels.astype(np.int64),
                 speakers_val=rows["val"].speakers.astype(str), speakers_test=rows["test"].speakers.astype(str))
        targets, domains = (domain_targets(y_train, r.speakers, [r.paths[c] for c in r.clip], adversary_on)
                            if adversary else (None, []))
        if adversary and len(domains) < 2:
            raise EdgeemoError(f"--adversary needs at least two training {adversary_on}s to tell apart", Path(data[0]))
        train_ds = make_dataset(x_train, y_train, settings.batch_size, None, stream, shuffle=True,
                                targets=targets, sample_weight=weights)
        del x_train
        if masking is not None and masking.active:
            train_ds = train_ds.map(lambda a, *rest: (mask_features(a, masking), *rest))
        val_ds = make_dataset(x_val, rows["val"].labels, 256, None, data_seed)
    steps = int(np.ceil(len(y_train) / settings.batch_size))

    def build() -> keras.Model:
        model = build_voice_model(arch, pre.input_shape, len(EMOTIONS), dropout, units=head_units)
        if not adversary:
            return model
        wrapped = DomainAdversarial(model, len(domains), adversary)
        wrapped(np.zeros((1, *pre.input_shape), np.float32))  # built, so saved weights can load into it
        return wrapped

    model = fit(
        out,
        build,
        train_ds,
        val_ds,
        steps,
        settings,
        None if weights is not None else class_weights(y_train, len(EMOTIONS), class_weight),
        title=f"voice {arch} on {split_desc['dataset']} ({split_desc['protocol'].split(' (')[0]})",
        policy=policy,
        dist=dist,
    )
    if isinstance(model, DomainAdversarial):  # only the emotion model leaves training
        model = model.emotion
        model.save(out / "best.keras")
    order = {k: streams[k].order() if settings.stream else np.arange(len(rows[k])) for k in ("val", "test")}
    y_val, y_test = (rows[k].labels[order[k]].astype(np.int64) for k in ("val", "test"))
    with clear_tf_errors(dist):
        if settings.stream:
            probs, val_probs = streams["test"].predict(model), streams["val"].predict(model)
        else:
            probs = model.predict(x_test, batch_size=256, verbose=0)
            val_probs = model.predict(x_val, batch_size=256, verbose=0)
    present = sorted(set(y_train.tolist()))
    report = classification_report(y_test, probs.argmax(1), EMOTIONS)
    report.update({
        "split": "test",
        "source": split_desc["test"]["source"],
        "protocol": split_desc["protocol"],
        "adaptation": adaptation_note(adaptation is not None),
        "per_corpus": per_corpus(y_test, probs.argmax(1), rows["test"].speakers[order["test"]]),
        "params": int(model.count_params()),
        "no_speech_test_clips": len(silent["test"]),
        "trained_classes": [EMOTIONS[i] for i in present],
    })
    report["val_per_corpus"] = per_corpus(y_val, val_probs.argmax(1), rows["val"].speakers[order["val"]])
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    console.print(
        f"test accuracy {report['accuracy']:.4f}, macro-F1 {report['macro_f1']:.4f}, UAR {report['uar']:.4f} on "
        f"{len(y_test)} clips ({split_desc['protocol']}); run folder {out}"
    )
    for c, m in report["per_corpus"].items():
        console.print(f"  {c}: accuracy {m['accuracy']:.4f}, UAR {m['uar']:.4f} (majority {m['majority']:.4f}, "
                      f"{m['n']} clips)")
    return report
