"""The canonical label set and every dataset's map onto it."""

import cv2
import numpy as np
import pytest

from edgeemo.face_datasets import load_faces
from edgeemo.labels import (
    DATASET_LABELS,
    EMOTIONS,
    UnknownLabelError,
    class_counts,
    index_of,
    to_canonical,
)


def test_canonical_order_is_the_fer2013_code_order():
    # FER2013 codes: 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral.
    assert EMOTIONS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    for code, name in enumerate(EMOTIONS):
        assert to_canonical("fer2013", str(code)) == name
        assert to_canonical("fer2013", name) == name
        assert index_of(name) == code


@pytest.mark.parametrize("dataset", sorted(DATASET_LABELS))
def test_every_dataset_map_targets_only_canonical_labels_or_none(dataset):
    targets = set(DATASET_LABELS[dataset].values())
    assert targets - {None} <= set(EMOTIONS), f"{dataset} maps to non-canonical {targets}"
    for raw in DATASET_LABELS[dataset]:
        assert to_canonical(dataset, raw) in (*EMOTIONS, None)


def test_ckplus_contempt_is_excluded_not_mapped():
    assert to_canonical("ckplus", "contempt") is None
    assert to_canonical("ckplus", "anger") == "angry"
    assert to_canonical("ckplus", "sadness") == "sad"


def test_ckplus_contempt_is_counted_and_reported(tmp_path):
    # CK+48 layout with a contempt folder: the faces are left out but reported.
    faces = {"anger": 3, "contempt": 2, "happy": 4}
    for label, n in faces.items():
        (tmp_path / label).mkdir()
        for i in range(n):
            img = np.full((48, 48), 40 * i, np.uint8)
            cv2.imwrite(str(tmp_path / label / f"S{100 + i:03d}_001_{i:08d}.png"), img)
    ds = load_faces(tmp_path)
    assert ds.name == "ckplus"
    assert len(ds) == 7
    assert dict(ds.excluded) == {"contempt": 2}
    assert "contempt 2" in ds.summary()
    assert ds.class_counts()["angry"] == 3 and ds.class_counts()["happy"] == 4


def test_ravdess_calm_maps_to_neutral_and_can_be_overridden():
    assert to_canonical("ravdess", "02") == "neutral"
    assert to_canonical("ravdess", "01") == "neutral"
    assert to_canonical("ravdess", "08") == "surprise"
    assert to_canonical("ravdess", "02", overrides={"02": None}) is None


def test_tess_pleasant_surprise_maps_to_surprise():
    assert to_canonical("tess", "ps") == "surprise"
    assert to_canonical("tess", "PS") == "surprise"  # case-insensitive
    assert to_canonical("tess", "pleasant_surprised") == "surprise"


def test_cremad_has_no_surprise():
    assert "surprise" not in DATASET_LABELS["cremad"].values()
    assert set(DATASET_LABELS["cremad"].values()) == set(EMOTIONS) - {"surprise"}
    with pytest.raises(UnknownLabelError):
        to_canonical("cremad", "SUR")


@pytest.mark.parametrize(
    ("dataset", "raw"),
    [("fer2013", "happiness"), ("ckplus", "joy"), ("savee", "x"), ("fer2013", "7")],
)
def test_unknown_label_raises_naming_it(dataset, raw):
    with pytest.raises(UnknownLabelError, match=repr(raw)):
        to_canonical(dataset, raw)


def test_index_of_a_non_canonical_label_raises():
    with pytest.raises(UnknownLabelError, match="contempt"):
        index_of("contempt")


def test_class_counts_counts_every_class_including_empty_ones():
    assert class_counts([0, 3, 3, 6]) == [1, 0, 0, 2, 0, 0, 1]
