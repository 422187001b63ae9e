"""Reproducible splits: stratified random, and group-wise (subject/speaker-independent)."""

from __future__ import annotations

import numpy as np

from edgeemo.errors import EdgeemoError


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``fraction`` of each class at random. Returns (keep_idx, holdout_idx), sorted."""
    rng = np.random.default_rng(seed)
    keep, hold = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        k = int(round(len(idx) * fraction))
        hold.append(idx[:k])
        keep.append(idx[k:])
    return np.sort(np.concatenate(keep)), np.sort(np.concatenate(hold))


def group_split(groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out whole groups (subjects, speakers) until ``fraction`` of the samples is reached.

    No group appears on both sides. Returns (keep_idx, holdout_idx), sorted.
    """
    unique = np.unique(groups)
    if len(unique) < 2:
        raise EdgeemoError(f"a group split needs at least 2 groups, got {len(unique)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(unique)
    target = fraction * len(groups)
    held: list = []
    count = 0
    for g in order[:-1]:  # always keep at least one group
        if count >= target:
            break
        held.append(g)
        count += int(np.sum(groups == g))
    mask = np.isin(groups, held)
    return np.flatnonzero(~mask), np.flatnonzero(mask)
