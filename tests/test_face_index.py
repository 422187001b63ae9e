"""The face dataset layouts a user can point training at: labels.csv (with or without subjects), FER+
majority-vote labels, FER2013/CK+ folders; read without decoding (the index) and decoded (load_faces)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeemo.errors import EdgeemoError
from edgeemo.face_datasets import load_faces
from edgeemo.face_index import FERPLUS_VOTES, ferplus_label, has_official_test, index_faces
from edgeemo.labels import EMOTIONS


def _image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((48, 48), value, np.uint8))


def _labels_csv(root: Path, rows: list[str], header: str = "path,label,subject") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.csv").write_text("\n".join([header, *rows]) + "\n")
    return root


def test_labels_csv_with_subjects_gives_subject_groups_and_decodes_the_listed_files(tmp_path):
    for i in range(4):
        _image(tmp_path / "d" / "img" / f"{i}.png", 10 * i)
    root = _labels_csv(tmp_path / "d", ["img/0.png,happy,p1", "img/1.png,3,p1", "img/2.png,sad,p2",
                                        "img/3.png,neutral,p3"])
    index = index_faces(root)
    assert index.name == "labels-csv" and index.subjects
    assert [EMOTIONS[y] for y in index.labels] == ["happy", "happy", "sad", "neutral"]  # 3 is FER2013's happy
    assert index.groups.tolist() == ["p1", "p1", "p2", "p3"]
    faces = load_faces(root / "labels.csv")  # the CSV itself works as well as its folder
    assert [int(im[0, 0]) for im in faces.images] == [0, 10, 20, 30] and faces.subjects


def test_labels_csv_without_subjects_has_none(tmp_path):
    _image(tmp_path / "a.png", 1)
    index = index_faces(_labels_csv(tmp_path, ["a.png,fear"], header="path,label"))
    assert not index.subjects and index.labels.tolist() == [EMOTIONS.index("fear")]


@pytest.mark.parametrize(("row", "problem"), [
    ("missing.png,happy,p1", "line 2: no such image file 'missing.png'"),
    ("a.png,joy,p1", "line 2: unknown label 'joy'"),
    ("a.png,happy,", "line 2: empty subject"),
])
def test_a_bad_labels_csv_row_names_the_file_and_line(tmp_path, row, problem):
    _image(tmp_path / "a.png", 1)
    root = _labels_csv(tmp_path, [row])
    with pytest.raises(EdgeemoError, match=problem) as exc:
        index_faces(root)
    assert exc.value.path == root / "labels.csv"


def _ferplus(root: Path, rows: list[tuple[str, str, list[int]]]) -> Path:
    """fer2013new.csv and the image folders FER+'s generate_training_data.py writes."""
    folders = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
    lines = ["Usage,Image name," + ",".join(FERPLUS_VOTES)]
    for k, (usage, name, votes) in enumerate(rows):
        lines.append(f"{usage},{name}," + ",".join(map(str, votes)))
        if name:
            _image(root / folders[usage] / name, k)
    root.mkdir(parents=True, exist_ok=True)
    (root / "fer2013new.csv").write_text("\n".join(lines) + "\n")
    return root


#        neutral happiness surprise sadness anger disgust fear contempt unknown NF
HAPPY = [0, 8, 1, 0, 0, 0, 1, 0, 0, 0]
SAD_AFTER_OUTLIERS = [3, 1, 1, 4, 0, 0, 0, 0, 1, 0]  # 4 of 7 votes once the single votes are dropped
TIE = [5, 0, 0, 5, 0, 0, 0, 0, 0, 0]
NOT_A_FACE = [0, 0, 0, 0, 0, 0, 0, 0, 0, 10]
UNKNOWN = [1, 0, 0, 2, 0, 0, 0, 0, 7, 0]
CONTEMPT = [2, 0, 0, 0, 0, 0, 0, 8, 0, 0]


def test_ferplus_majority_vote_follows_ferplus_rules():
    assert ferplus_label(HAPPY) == "happiness"  # 8 of 8 after the two single votes are dropped
    assert ferplus_label(SAD_AFTER_OUTLIERS) == "sadness"
    assert ferplus_label(TIE) == "no majority"


def test_ferplus_relabels_fer2013_and_counts_what_it_leaves_out(tmp_path):
    root = _ferplus(tmp_path / "ferplus", [
        ("Training", "fer0000000.png", HAPPY),
        ("Training", "fer0000001.png", SAD_AFTER_OUTLIERS),
        ("Training", "fer0000002.png", TIE),
        ("Training", "fer0000003.png", NOT_A_FACE),
        ("Training", "fer0000004.png", UNKNOWN),
        ("Training", "fer0000005.png", CONTEMPT),
        ("Training", "", HAPPY),  # FER+ drops some FER2013 images: no name
        ("PublicTest", "fer0000007.png", [0, 0, 9, 0, 0, 0, 1, 0, 0, 0]),
    ])
    train = index_faces(root)
    assert train.name == "ferplus" and not train.subjects
    assert [EMOTIONS[y] for y in train.labels] == ["happy", "sad"]
    assert dict(train.excluded) == {"no majority": 1, "NF": 1, "unknown": 1, "contempt": 1, "no image": 1}
    assert [Path(s).name for s in train.sources] == ["fer0000000.png", "fer0000001.png"]
    test = load_faces(root / "fer2013new.csv", split="publictest")
    assert [EMOTIONS[y] for y in test.labels] == ["surprise"] and int(test.images[0][0, 0]) == 7
    assert has_official_test(root) and has_official_test(root / "fer2013new.csv")


def test_ferplus_without_its_images_says_where_they_belong(tmp_path):
    root = _ferplus(tmp_path, [("Training", "fer0000000.png", HAPPY)])
    (root / "FER2013Train" / "fer0000000.png").unlink()
    with pytest.raises(EdgeemoError, match="line 2: no such image file FER2013Train/fer0000000.png"):
        index_faces(root)


def test_streaming_refuses_the_pixel_csv_with_a_reason(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\n3," + " ".join(["1"] * 2304) + ",Training\n")
    with pytest.raises(EdgeemoError, match="holds pixels, not image files"):
        index_faces(path)
    assert len(load_faces(path)) == 1  # in memory it still reads


def test_folders_index_matches_the_decoded_dataset(tmp_path):
    for label, n in (("happy", 3), ("sad", 2)):
        for i in range(n):
            _image(tmp_path / "fer" / "train" / label / f"{label}{i}.png", i)
    (tmp_path / "fer" / "publictest" / "happy").mkdir(parents=True)
    _image(tmp_path / "fer" / "publictest" / "happy" / "p.png", 0)
    index, faces = index_faces(tmp_path / "fer"), load_faces(tmp_path / "fer")
    assert index.sources == faces.sources and index.labels.tolist() == faces.labels.tolist()
    assert has_official_test(tmp_path / "fer") and not has_official_test(tmp_path / "fer" / "train")
