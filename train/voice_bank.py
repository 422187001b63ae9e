"""The voice feature cache: raw MFCCs of every clip and of its augmented copies, per speaker, on disk.

Features are computed once through THE core front end (``edgeemo.audio.clip_features_span``)
and kept as float16 in one ``.npz`` per speaker under a folder named by the front end,
the augmentation and the seed. Every run that uses the same settings reuses them, whatever
its split, so leave-one-corpus-out folds and held-out-speaker runs cost no DSP after the
first. Augmented copies draw their channel per (speaker, copy) and their per-clip noise
from a seed made of the clip's name, so a clip's features never depend on the split or on
the order of work. Nothing is held as one array for all clips until a run asks for its rows.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgeemo.audio import AudioFeatures, clip_features_span, load_audio
from edgeemo.errors import EdgeemoError
from edgeemo.train.voice_augment import (
    ChannelAugmentation,
    VoiceAugmentation,
    apply_channel,
    augment_waveform,
    draw_channel,
    make_babble,
    room_impulse_response,
)
from edgeemo.voice_datasets import VoiceDataset

N_ROOMS = 48  # rooms simulated once per seed; each (speaker, copy) draws one
BABBLE_SECONDS = 60.0


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "little")


@dataclass
class Rows:
    """Feature rows of some clips: x (rows, frames, coeffs) float16, speech spans, the clip each
    row comes from (index into ``paths``), the copy (0 = clean), labels and speakers. Rows for a
    stream leave x out (None) and say where each row is in its speaker's file (``file_row``)."""

    x: np.ndarray | None
    span: np.ndarray
    clip: np.ndarray
    copy: np.ndarray
    labels: np.ndarray
    speakers: np.ndarray
    paths: list[str]
    silent: list[str]
    file_row: np.ndarray | None = None

    @property
    def nbytes(self) -> int:
        return 0 if self.x is None else int(self.x.nbytes)

    def __len__(self) -> int:
        return len(self.labels)


def _speaker_rows(job: dict[str, Any]) -> dict[str, Any]:
    """Features of one speaker's clips and copies (runs in a worker process)."""
    feats: AudioFeatures = job["features"]
    channel: ChannelAugmentation | None = job["channel"]
    clip_aug: VoiceAugmentation | None = job["clip_aug"]
    copies = job["copies"]
    channels = [None] + [
        draw_channel(channel, np.random.default_rng(_seed(job["seed"], job["speaker"], k)), job["rirs"])
        if channel is not None else None
        for k in range(1, copies + 1)
    ]
    xs, spans, clips, copy_idx, silent = [], [], [], [], []
    for i, path in enumerate(job["paths"]):
        samples, _ = load_audio(path, feats.sample_rate)
        for k in range(copies + 1):
            y = samples
            if k:
                rng = np.random.default_rng(_seed(job["seed"], Path(path).name, k))
                if clip_aug is not None:
                    y = augment_waveform(y, clip_aug, rng, feats.sample_rate)
                if channels[k] is not None:
                    y = apply_channel(y, channels[k], rng, job["babble"], feats.sample_rate)
            out = clip_features_span(y, feats)
            if out is None:
                if k == 0:
                    silent.append(path)
                    break  # a clip with no speech has no copies either
                continue
            xs.append(out[0].astype(np.float16))
            spans.append(out[1])
            clips.append(i)
            copy_idx.append(k)
    frames, coeffs = feats.n_frames, feats.n_features
    return {
        "x": np.stack(xs) if xs else np.zeros((0, frames, coeffs), np.float16),
        "span": np.asarray(spans, np.int16).reshape(-1, 2),
        "clip": np.asarray(clips, np.int32),
        "copy": np.asarray(copy_idx, np.int8),
        "silent": np.asarray(silent, dtype=str),
    }


class FeatureBank:
    """Per-speaker feature files under ``root/<key>/`` for one front end, augmentation and seed."""

    def __init__(self, root: Path, features: AudioFeatures, channel: ChannelAugmentation | None = None,
                 clip_aug: VoiceAugmentation | None = None, seed: int = 0,
                 babble_sources: Sequence[str] = (), workers: int | None = None,
                 console: Console | None = None) -> None:
        self.features, self.channel, self.clip_aug, self.seed = features, channel, clip_aug, seed
        self.copies = max(channel.copies if channel else 0, clip_aug.copies if clip_aug else 0)
        self.babble_sources = sorted(babble_sources)
        self.settings = {
            "features": features.to_dict(),
            "channel": channel.to_dict() if channel else None,
            "clip_augmentation": clip_aug.to_dict() if clip_aug else None,
            "seed": seed,
            "rooms": N_ROOMS if channel and channel.copies and channel.p_reverb > 0 else 0,
            "babble_sources": self.babble_sources if channel and channel.copies and channel.p_noise > 0 else [],
        }
        self.key = hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode()).hexdigest()[:16]
        self.folder = Path(root) / self.key
        self.workers = workers or min(2, os.cpu_count() or 1)
        self.console = console or Console(stderr=True)
        self._extras: dict[str, Any] | None = None

    def _speaker_file(self, speaker: str) -> Path:
        return self.folder / f"{speaker.replace(':', '_').replace('/', '_')}.npz"

    def _extras_for_workers(self) -> dict[str, Any]:
        """The simulated rooms and the babble noise (made once, the same for every speaker)."""
        if self._extras is None:
            rirs: list[np.ndarray] = []
            babble = None
            channel = self.channel if self.channel is not None and self.channel.copies > 0 else None
            if channel is not None and channel.p_reverb > 0:
                rng = np.random.default_rng(_seed(self.seed, "rooms"))
                rirs = [room_impulse_response(float(rng.uniform(*channel.rt60)), rng) for _ in range(N_ROOMS)]
            if channel is not None and channel.p_noise > 0 and self.babble_sources:
                rng = np.random.default_rng(_seed(self.seed, "babble"))
                picked = rng.choice(self.babble_sources, min(60, len(self.babble_sources)), replace=False)
                clips = [load_audio(p, self.features.sample_rate)[0] for p in picked]
                babble = make_babble(clips, 5, BABBLE_SECONDS, rng, self.features.sample_rate)
            self._extras = {"rirs": rirs, "babble": babble}
        return self._extras

    def rows(self, ds: VoiceDataset, copies: bool = True, what: str = "", load: bool = True) -> Rows:
        """The rows of ``ds``'s clips (with augmented copies if ``copies``), computing missing speakers;
        ``load=False``: without their features (x), which a stream reads speaker by speaker (``read_x``)."""
        by_speaker: dict[str, list[int]] = {}
        for i, g in enumerate(ds.groups):
            by_speaker.setdefault(str(g), []).append(i)
        todo = []
        for speaker in by_speaker:
            paths = sorted(p for p, g in zip(ds.paths, ds.groups, strict=True) if str(g) == speaker)
            cached = self._load(speaker, ("paths",))
            if cached is None or not set(paths) <= set(cached["paths"]):
                todo.append(speaker)
        if todo:
            self._compute(todo, ds, what)
        else:
            self.console.print(f"features from {self.folder} ({what}: {len(by_speaker)} speakers, cached)")
        parts = []
        for speaker, idx in by_speaker.items():
            data = self._load(speaker, None if load else ("paths", "clip", "copy", "span", "silent"))
            assert data is not None
            pos = {p: j for j, p in enumerate(data["paths"])}
            wanted = {pos[ds.paths[i]]: i for i in idx}
            keep = np.isin(data["clip"], list(wanted)) & ((data["copy"] == 0) | copies)
            ds_index = np.asarray([wanted[int(c)] for c in data["clip"][keep]], np.int64)
            parts.append((data["x"][keep] if load else None, data["span"][keep], ds_index, data["copy"][keep],
                          [p for p in data["silent"] if p in {ds.paths[i] for i in idx}], np.flatnonzero(keep)))
        x = (np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, 1, 1), np.float16)) if load else None
        clip = np.concatenate([p[2] for p in parts]).astype(np.int64)
        return Rows(
            x=x,
            span=np.concatenate([p[1] for p in parts]).astype(np.int64),
            clip=clip,
            copy=np.concatenate([p[3] for p in parts]).astype(np.int64),
            labels=np.asarray(ds.labels)[clip],
            speakers=np.asarray(ds.groups)[clip].astype(str),
            paths=list(ds.paths),
            silent=[s for p in parts for s in p[4]],
            file_row=None if load else np.concatenate([p[5] for p in parts]).astype(np.int64),
        )

    def read_x(self, speaker: str, file_row: np.ndarray) -> np.ndarray:
        """The features (float16) of rows ``file_row`` of one speaker's file."""
        data = self._load(speaker, ("x",))
        if data is None:
            raise EdgeemoError("the feature cache lost this speaker's file while training read it",
                               self._speaker_file(speaker))
        return data["x"][file_row]

    def _load(self, speaker: str, keys: tuple[str, ...] | None = None) -> dict[str, Any] | None:
        """A speaker's file (``keys`` of it; all by default), or None if missing or cut off."""
        path = self._speaker_file(speaker)
        if not path.exists():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: (z[k].tolist() if k in ("paths", "silent") else z[k]) for k in keys or z.files}
        except (OSError, ValueError, KeyError):
            return None  # a cut-off file from an interrupted run: computed again

    def _compute(self, speakers: list[str], ds: VoiceDataset, what: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "settings.json").write_text(json.dumps(self.settings, indent=2))
        extras = self._extras_for_workers()
        # every clip of the speaker that the reader found, so other runs' splits find them too
        jobs = []
        for speaker in speakers:
            paths = sorted(p for p, g in zip(ds.paths, ds.groups, strict=True) if str(g) == speaker)
            jobs.append({"speaker": speaker, "paths": paths, "features": self.features, "channel": self.channel,
                         "clip_aug": self.clip_aug, "copies": self.copies, "seed": self.seed, **extras})
        total = sum(len(j["paths"]) for j in jobs)
        with Progress(TextColumn(f"MFCC {what} ({self.copies} augmented copies)"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=self.console) as progress:
            task = progress.add_task("clips", total=total)
            # spawned, not forked: a fork of a process where TensorFlow runs (a tf.distribute strategy, an
            # earlier tf.data pipeline) can deadlock in the child on a lock another thread held
            with ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                for job, result in zip(jobs, pool.map(_speaker_rows, jobs), strict=True):
                    tmp = self._speaker_file(job["speaker"]).with_suffix(f".tmp{os.getpid()}.npz")  # workers race
                    np.savez(tmp, paths=np.asarray(job["paths"], dtype=str), **result)
                    tmp.replace(self._speaker_file(job["speaker"]))
                    progress.advance(task, len(job["paths"]))

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.folder.glob("*.npz")) if self.folder.exists() else 0


def require_rows(rows: Rows, what: str, where: Path) -> None:
    if len(rows) == 0:
        raise EdgeemoError(f"no {what} clips with speech", where)
