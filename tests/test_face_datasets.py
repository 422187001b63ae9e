"""Face dataset readers: image folders (FER2013, CK+48) and the original fer2013.csv."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED_DATA, requires_data

from edgeemo.errors import EdgeemoError
from edgeemo.face_datasets import load_faces, load_fer2013_csv, load_image_folders
from edgeemo.labels import EMOTIONS

DATA = SHARED_DATA
needs_data = requires_data()


def _write_folders(root, counts, name="fer", ext=".png"):
    """root/<label>/<file><ext>; every image is filled with 30 * (folder index) + 1."""
    root.mkdir(parents=True, exist_ok=True)
    for k, (label, n) in enumerate(counts.items()):
        (root / label).mkdir()
        for i in range(n):
            stem = f"S{10 + i % 3:03d}_{i:03d}_{i:08d}" if name == "ckplus" else f"Training_{k}{i}"
            img = np.full((48, 48), 30 * k + 1, np.uint8)
            assert cv2.imwrite(str(root / label / f"{stem}{ext}"), img)
    return root


# ---------------------------------------------------------------- image folders


def test_image_folders_read_with_correct_labels_and_counts(tmp_path):
    counts = {"angry": 2, "happy": 3, "neutral": 1}
    root = _write_folders(tmp_path / "fer", counts)
    (root / "happy" / "notes.txt").write_text("not an image, ignored")
    ds = load_faces(root)
    assert ds.name == "fer2013"
    assert len(ds) == 6 and len(ds.labels) == len(ds.groups) == len(ds.sources) == 6
    assert ds.class_counts() == {e: counts.get(e, 0) for e in EMOTIONS}
    for img, label, src in zip(ds.images, ds.labels, ds.sources, strict=True):
        folder = Path(src).parent.name
        assert EMOTIONS[label] == folder
        assert img.dtype == np.uint8 and img.shape == (48, 48)
        assert int(img[0, 0]) == 30 * list(counts).index(folder) + 1  # the image of that file
    assert not ds.excluded


def test_limit_per_class_keeps_the_first_files(tmp_path):
    root = _write_folders(tmp_path / "fer", {"sad": 5, "fear": 2})
    ds = load_faces(root, limit_per_class=3)
    assert ds.class_counts()["sad"] == 3 and ds.class_counts()["fear"] == 2


def test_jpg_folders_read(tmp_path):
    root = _write_folders(tmp_path / "fer", {"surprise": 2}, ext=".jpg")
    ds = load_image_folders(root)
    assert len(ds) == 2 and set(ds.labels) == {EMOTIONS.index("surprise")}


def test_ckplus_names_give_subject_groups(tmp_path):
    root = _write_folders(tmp_path / "CK+48", {"anger": 4, "contempt": 2, "sadness": 3}, name="ckplus")
    ds = load_faces(root)  # auto-detected from the S###_###_######## names
    assert ds.name == "ckplus"
    assert len(ds) == 7 and dict(ds.excluded) == {"contempt": 2}
    for group, src in zip(ds.groups, ds.sources, strict=True):
        assert Path(src).name.startswith(f"{group}_")
    assert set(ds.groups) == {"S010", "S011", "S012"}
    assert ds.class_counts()["angry"] == 4 and ds.class_counts()["sad"] == 3


def test_ckplus_file_name_without_subject_is_an_error(tmp_path):
    root = _write_folders(tmp_path / "ck", {"anger": 1}, name="ckplus")
    bad = root / "anger" / "face.png"
    cv2.imwrite(str(bad), np.zeros((48, 48), np.uint8))
    with pytest.raises(EdgeemoError, match="face.png"):
        load_faces(root, dataset="ckplus")


def test_split_folder_is_picked_from_a_fer2013_root(tmp_path):
    _write_folders(tmp_path / "fer2013" / "train", {"angry": 3})
    _write_folders(tmp_path / "fer2013" / "publictest", {"angry": 1, "disgust": 1})
    assert len(load_faces(tmp_path / "fer2013", split="train")) == 3
    assert len(load_faces(tmp_path / "fer2013", split="publictest")) == 2


def test_wrong_label_folder_names_the_folder(tmp_path):
    root = _write_folders(tmp_path / "fer", {"angry": 1, "happiness": 1})
    with pytest.raises(EdgeemoError) as exc:
        load_faces(root, dataset="fer2013")
    assert str(root / "happiness") in str(exc.value)
    assert "happiness" in str(exc.value)


def test_empty_root_names_the_root(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(EdgeemoError, match=str(root)):
        load_faces(root)


def test_label_folders_without_images_name_the_root(tmp_path):
    root = _write_folders(tmp_path / "fer", {"angry": 0, "happy": 0})
    with pytest.raises(EdgeemoError, match=str(root)):
        load_faces(root)


def test_missing_path_is_named(tmp_path):
    with pytest.raises(EdgeemoError, match=str(tmp_path / "nope")):
        load_faces(tmp_path / "nope")


def _bad_files():
    ok, jpg = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 256, (48, 48), np.uint8))
    return {
        "truncated.jpg": jpg.tobytes()[: len(jpg) // 2],
        "zero.png": b"",
        "text.png": b"this is not a PNG file\n",
    }


@pytest.mark.parametrize("name", sorted(_bad_files()))
def test_unreadable_image_raises_naming_the_file(tmp_path, name):
    root = _write_folders(tmp_path / "fer", {"angry": 2, "happy": 2})
    bad = root / "happy" / name
    bad.write_bytes(_bad_files()[name])
    with pytest.raises(EdgeemoError) as exc:
        load_faces(root)
    assert str(bad) in str(exc.value)
    assert exc.value.path == bad


# ---------------------------------------------------------------- fer2013.csv

HEADER = "emotion,pixels,Usage"


def _pixels(value, n=48 * 48):
    return " ".join([str(value)] * n)


def _write_csv(path, rows, header=HEADER, prefix=""):
    path.write_text(prefix + "\n".join([header, *rows]) + "\n")
    return path


ROWS = [
    f"3,{_pixels(10)},Training",
    f"0,{_pixels(20)},PublicTest",
    f"6,{_pixels(30)},Training",
    f"5,{_pixels(40)},PrivateTest",
    f"1,{_pixels(50)},PublicTest",
    f"2,{_pixels(60)},Training",
]


def test_csv_reads_only_the_requested_usage(tmp_path):
    path = _write_csv(tmp_path / "fer2013.csv", ROWS)
    train = load_fer2013_csv(path, "train")
    assert train.labels.tolist() == [3, 6, 2]
    assert [int(im[0, 0]) for im in train.images] == [10, 30, 60]
    assert all(im.shape == (48, 48) and im.dtype == np.uint8 for im in train.images)
    assert train.sources == [f"{path}:2", f"{path}:4", f"{path}:7"]
    public = load_fer2013_csv(path, "publictest")
    assert public.labels.tolist() == [0, 1]
    assert [int(im[0, 0]) for im in public.images] == [20, 50]
    via_load_faces = load_faces(path, split="publictest")
    assert via_load_faces.labels.tolist() == [0, 1]


def test_csv_with_byte_order_mark_and_crlf(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_bytes(("\ufeff" + "\r\n".join([HEADER, *ROWS]) + "\r\n").encode("utf-8"))
    assert load_fer2013_csv(path, "train").labels.tolist() == [3, 6, 2]


def test_csv_unknown_split_and_empty_split(tmp_path):
    path = _write_csv(tmp_path / "fer2013.csv", ROWS[:3])
    with pytest.raises(EdgeemoError, match="validation"):
        load_fer2013_csv(path, "validation")
    with pytest.raises(EdgeemoError, match="PrivateTest"):
        load_fer2013_csv(path, "privatetest")


@pytest.mark.parametrize(
    "bad_row",
    [
        f"3,{_pixels(10)},Training,extra",  # wrong field count
        f"3,{_pixels(10)}",  # wrong field count
        f"3,{_pixels(10, 2303)},Training",  # one pixel short
        f"3,{_pixels(10, 2305)},Training",  # one pixel too many
        f"3,{_pixels(10, 2303)} 1.5,Training",  # non-integer pixel
        f"3,{_pixels(10, 2303)} x,Training",  # non-integer pixel
        f"3,{_pixels(10, 2303)} {'9' * 30},Training",  # absurdly large integer
        f"3,{_pixels(10, 2303)} 300,Training",  # out of range
        f"3,{_pixels(10, 2303)} -1,Training",  # out of range
        f"9,{_pixels(10)},Training",  # emotion 9
        f"angry,{_pixels(10)},Training",  # emotion not a code
    ],
    ids=[
        "4-fields",
        "2-fields",
        "2303-pixels",
        "2305-pixels",
        "float-pixel",
        "text-pixel",
        "huge-pixel",
        "pixel-300",
        "pixel-negative",
        "emotion-9",
        "emotion-name",
    ],
)
def test_csv_malformed_row_names_file_and_line(tmp_path, bad_row):
    path = _write_csv(tmp_path / "fer2013.csv", [ROWS[0], ROWS[1], bad_row, ROWS[2]])
    with pytest.raises(EdgeemoError) as exc:
        load_fer2013_csv(path, "train")
    message = str(exc.value)
    assert str(path) in message
    assert "line 4" in message


@pytest.mark.parametrize("header", ["pixels,emotion,Usage", "emotion,pixels", "", "a,b,c"])
def test_csv_bad_header_names_the_file(tmp_path, header):
    path = _write_csv(tmp_path / "fer2013.csv", ROWS, header=header)
    with pytest.raises(EdgeemoError, match="header") as exc:
        load_fer2013_csv(path, "train")
    assert str(path) in str(exc.value)


def test_csv_binary_garbage_names_the_file(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_bytes(b"\xff\xfe\x00\x81" * 100)
    with pytest.raises(EdgeemoError, match=str(path)):
        load_faces(path)


def test_non_csv_file_is_refused(tmp_path):
    path = tmp_path / "faces.zip"
    path.write_bytes(b"PK")
    with pytest.raises(EdgeemoError, match=str(path)):
        load_faces(path)


# ---------------------------------------------------------------- the real datasets


@needs_data
def test_real_fer2013_publictest():
    ds = load_faces(DATA / "fer2013", split="publictest")
    assert ds.name == "fer2013"
    assert len(ds) == 3589
    assert ds.class_counts() == {
        "angry": 467,
        "disgust": 56,
        "fear": 496,
        "happy": 895,
        "sad": 653,
        "surprise": 415,
        "neutral": 607,
    }
    assert all(im.shape == (48, 48) for im in ds.images[:50])
    assert not ds.excluded


@needs_data
def test_real_ckplus48():
    ds = load_faces(DATA / "ckplus" / "CK+48")
    assert ds.name == "ckplus"
    assert len(ds) == 981 - 54 == 927
    assert dict(ds.excluded) == {"contempt": 54}
    assert "contempt 54" in ds.summary()
    assert ds.class_counts() == {
        "angry": 135,
        "disgust": 177,
        "fear": 75,
        "happy": 207,
        "sad": 84,
        "surprise": 249,
        "neutral": 0,
    }
    # 118 subjects in CK+48, but 12 of them appear only in contempt: 106 remain.
    assert len(set(ds.groups)) == 106
    assert all(g.startswith("S") and len(g) == 4 for g in ds.groups)
