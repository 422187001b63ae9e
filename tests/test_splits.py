"""Reproducible splits: group-wise (subject-independent) and stratified."""

import numpy as np
import pytest

from edgeemo.errors import EdgeemoError
from edgeemo.splits import group_split, stratified_split


def _random_groups(seed, n_groups=40):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 12, n_groups)
    return np.repeat(np.array([f"S{i:03d}" for i in range(n_groups)]), sizes)[rng.permutation(sizes.sum())]


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
def test_group_split_never_puts_a_group_on_both_sides(fraction):
    for seed in range(40):
        groups = _random_groups(seed)
        keep, hold = group_split(groups, fraction, seed)
        assert len(hold) > 0 and len(keep) > 0
        assert not set(groups[keep]) & set(groups[hold])
        # a partition of all samples, sorted
        np.testing.assert_array_equal(np.sort(np.concatenate([keep, hold])), np.arange(len(groups)))
        assert np.all(np.diff(keep) > 0) and np.all(np.diff(hold) > 0)
        # the fraction is reached, overshooting by less than one (largest) group
        largest = max(np.sum(groups == g) for g in np.unique(groups))
        assert fraction * len(groups) <= len(hold) < fraction * len(groups) + largest


def test_group_split_is_deterministic_for_a_seed():
    groups = _random_groups(7)
    a, b = group_split(groups, 0.2, 3), group_split(groups, 0.2, 3)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    others = [group_split(groups, 0.2, s)[1] for s in range(4, 10)]
    assert any(not np.array_equal(a[1], o) for o in others)


def test_group_split_keeps_at_least_one_group():
    groups = np.array(["a", "a", "b"])
    keep, hold = group_split(groups, 1.0, 0)
    assert len(keep) > 0 and len(hold) > 0


def test_group_split_needs_two_groups():
    with pytest.raises(EdgeemoError):
        group_split(np.array(["S1", "S1", "S1"]), 0.2, 0)


def test_stratified_split_keeps_every_class_on_both_sides_in_proportion():
    counts = [100, 20, 60, 300, 45, 10, 90]
    labels = np.random.default_rng(0).permutation(np.repeat(np.arange(7), counts))
    for seed in range(10):
        keep, hold = stratified_split(labels, 0.2, seed)
        np.testing.assert_array_equal(np.sort(np.concatenate([keep, hold])), np.arange(len(labels)))
        assert not set(keep) & set(hold)
        held = np.bincount(labels[hold], minlength=7)
        kept = np.bincount(labels[keep], minlength=7)
        assert held.tolist() == [round(0.2 * c) for c in counts]
        assert (kept > 0).all() and (held > 0).all()


def test_stratified_split_is_deterministic_for_a_seed():
    labels = np.repeat(np.arange(3), 50)
    a, b = stratified_split(labels, 0.3, 11), stratified_split(labels, 0.3, 11)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], stratified_split(labels, 0.3, 12)[1])
