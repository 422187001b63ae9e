"""`train face --extra-train CK+48 --extra-repeat N`: the second dataset's training subjects join N times,
its held-out subjects never, and the record says how many distinct faces were added."""

from __future__ import annotations

from collections import Counter

import cv2
import numpy as np
import pytest

from edgeemo.errors import EdgeemoError
from edgeemo.face_datasets import FaceDataset, load_faces


def _ckplus(root, subjects=6, per_class=2):
    for label in ("anger", "fear"):
        (root / label).mkdir(parents=True)
        for s in range(subjects):
            for i in range(per_class):
                img = np.full((48, 48), 10 * s + i, np.uint8)
                assert cv2.imwrite(str(root / label / f"S{100 + s:03d}_{i:03d}_{i:08d}.png"), img)
    return root


def _fer(n=5) -> FaceDataset:
    images = [np.zeros((48, 48), np.uint8)] * n
    return FaceDataset("fer2013", images, np.zeros(n, np.int64), np.array(["fer"] * n),
                       [f"fer/angry/Training_{i}.jpg" for i in range(n)], Counter(), False)


@pytest.mark.parametrize("repeat", [1, 3])
def test_extra_subjects_join_repeat_times_and_held_out_subjects_never(tmp_path, repeat):
    pytest.importorskip("keras")
    from edgeemo.train.face import add_extra_subjects

    root = _ckplus(tmp_path / "CK+48")
    merged, record = add_extra_subjects(_fer(), root, 0.3, seed=0, repeat=repeat)
    pool = load_faces(root, split="train")
    held = set(record["held_out_subjects"])
    added = [s for s in merged.sources if "CK+48" in s]
    assert held and not held & {str(g) for g, s in zip(merged.groups, merged.sources, strict=True) if "CK+48" in s}
    distinct = Counter(added)
    assert len(distinct) == record["train"]["n"] == len(pool) - record["held_out_n"]
    assert set(distinct.values()) == {repeat}  # every training face exactly `repeat` times
    assert record["repeat"] == repeat and sum(record["train"]["classes"].values()) == record["train"]["n"]
    assert len(merged) == 5 + repeat * record["train"]["n"]
    for img, src in zip(merged.images, merged.sources, strict=True):  # images stay with their files
        if "CK+48" in src:
            assert np.array_equal(img, cv2.imread(src, cv2.IMREAD_GRAYSCALE))


def test_extra_repeat_below_one_is_refused(tmp_path):
    pytest.importorskip("keras")
    from edgeemo.train.face import add_extra_subjects

    with pytest.raises(EdgeemoError, match="at least 1"):
        add_extra_subjects(_fer(), _ckplus(tmp_path / "CK+48"), 0.3, seed=0, repeat=0)
