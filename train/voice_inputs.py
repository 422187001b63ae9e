"""What a voice model sees of its rows: inputs adapted to the speaker as a device makes them, without
future clips (``causal_inputs``), and the training statistics; for rows in memory and, speaker by
speaker, for a stream (``edgeemo.train.voice_stream``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edgeemo.audio import AudioFeatures, RunningStats
from edgeemo.train.voice_bank import FeatureBank, Rows
from edgeemo.voice import VoicePreprocessing, adapted_input, clip_moments, shrunk_stats, summarize


def adaptation_note(adapting: bool) -> str:
    """How a report's inputs were made, in the words every voice metrics.json uses."""
    return "causal per speaker, seeded order" if adapting else "none (per clip)"


def adaptation_orders(groups: np.ndarray, seed: int) -> list[np.ndarray]:
    """For each group (a speaker, or a speaker's augmented copy: one channel), its rows in a seeded
    random order: the order a device hears them in."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(np.flatnonzero(groups == g)) for g in np.unique(groups)]


def causal_inputs(rows: Rows, pre: VoicePreprocessing, seed: int, groups: np.ndarray | None = None,
                  orders: list[np.ndarray] | None = None) -> np.ndarray:
    """Model inputs of ``rows`` as a device would make them, without future clips.

    Without adaptation: the training statistics. With adaptation: the rows of each group are
    taken in their order (``orders``, else ``adaptation_orders(groups, seed)``; indices into
    ``rows``) and each is standardised with the running statistics of its group's rows up to and
    including itself, as ``edgeemo.voice.SpeakerState`` does on the device and in bench.
    """
    x = np.asarray(rows.x, np.float32)
    if pre.adaptation is None:
        return pre.standardize(x)
    if orders is None:
        orders = adaptation_orders(rows.speakers if groups is None else groups, seed)
    out = np.empty_like(x)
    mean, std = np.asarray(pre.mean), np.asarray(pre.std)
    first, last = rows.span[:, 0], rows.span[:, 1]
    for order in orders:
        moments = [clip_moments(x[i], (first[i], last[i])) for i in order]
        sum_mean = np.cumsum([m[0] for m in moments], axis=0)
        sum_sq = np.cumsum([m[1] for m in moments], axis=0)
        for j, i in enumerate(order):
            n = j + 1
            if n > pre.adaptation.memory_clips:  # the device forgets old clips; training keeps it simple:
                n = pre.adaptation.memory_clips  # the mean over the memory, as many clips' weight
                sm, sq = sum_mean[j] / (j + 1) * n, sum_sq[j] / (j + 1) * n
            else:
                sm, sq = sum_mean[j], sum_sq[j]
            m, s = shrunk_stats(sm, sq, n, mean, std, pre.adaptation.prior_clips)
            out[i] = adapted_input(x[i], (first[i], last[i]), m, s)
    return out


def summarized_rows(rows: Rows, summary: str, features: AudioFeatures) -> Rows:
    """``rows`` as the model's summary sees them (``edgeemo.voice.summarize``): unchanged for frames,
    one (1, functionals) row per clip with span (0, 1) for functionals (rows in memory only)."""
    if summary == "frames":
        return rows
    x = np.stack([summarize(rows.x[i], tuple(rows.span[i]), summary, features)[0] for i in range(len(rows.x))]) \
        if len(rows.x) else np.zeros((0, 1, 0), np.float32)
    return replace(rows, x=x.astype(np.float32), span=np.tile(np.array([[0, 1]]), (len(x), 1)))


def training_statistics(rows: Rows, features: AudioFeatures, adaptive: bool,
                        bank: FeatureBank | None = None) -> RunningStats:
    """The training statistics: over every frame of the clean rows (global standardisation, as
    before), or over the speech frames of all rows (the prior of an adapting model). Rows without
    their features (a stream) are read from ``bank`` speaker by speaker."""
    if rows.x is None:
        assert bank is not None and rows.file_row is not None
        parts = ((bank.read_x(speaker, rows.file_row[sel]), sel) for speaker, sel in speaker_rows(rows).items())
    else:
        parts = iter([(rows.x, np.arange(len(rows)))])
    stats = RunningStats()
    for x, sel in parts:
        if not adaptive:
            stats.update(x[rows.copy[sel] == 0].astype(np.float32).reshape(-1, x.shape[-1]))
            continue
        for k, i in enumerate(sel):
            stats.update(x[k, rows.span[i, 0]:rows.span[i, 1]].astype(np.float32))
    return stats


def speaker_rows(rows: Rows) -> dict[str, np.ndarray]:
    """Each speaker's rows (indices into ``rows``), speakers in the order they first appear."""
    names, first = np.unique(rows.speakers, return_index=True)
    return {str(name): np.flatnonzero(rows.speakers == name) for name in names[np.argsort(first)]}
