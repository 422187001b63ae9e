"""Whole photos through the camera path: `edgeemo bench --detect`, `edgeemo predict face --detect`,
their bad inputs, and the detector they take from a device config."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from conftest import SHARED_DATA, one_line_error
from matplotlib import cbook
from typer.testing import CliRunner

from edgeemo.camera_bench import load_photos, run_detect_bench, score_through_camera
from edgeemo.cli import app
from edgeemo.errors import EdgeemoError
from edgeemo.face_detect import DetectorSettings
from edgeemo.labels import EMOTIONS

pytest.importorskip("ai_edge_litert")
runner = CliRunner()
WIDE = {"COLUMNS": "200", "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    photo = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    return cv2.resize(photo, (256, 320), interpolation=cv2.INTER_AREA)


@pytest.fixture()
def folders(tmp_path, portrait):
    """happy/: the portrait twice (a face); sad/: a blank wall (no face)."""
    for name in ("happy", "sad"):
        (tmp_path / name).mkdir()
    cv2.imwrite(str(tmp_path / "happy" / "a.jpg"), portrait)
    cv2.imwrite(str(tmp_path / "happy" / "b.png"), cv2.flip(portrait, 1))
    cv2.imwrite(str(tmp_path / "sad" / "wall.png"), np.full((240, 320, 3), 200, np.uint8))
    return tmp_path


def last_error_line(result) -> str:
    """Exit 1, no traceback, and the last line is the error."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    line = [x for x in result.output.splitlines() if x.strip()][-1]
    assert line.startswith("error: ")
    return line


def test_bench_detect_on_label_folders_counts_no_face_as_wrong(folders, tmp_path):
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["bench", "face", "--data", str(folders), "--detect", "--runs", "3", "--warmup", "1",
                                 "--json", str(out), "--no-plots"], env=WIDE)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["n"] == 3 and report["no_face"] == 1
    assert report["data"]["detector"]["detector"] == "blazeface" and report["data"]["detector"]["detect_ms"]["p50"] > 0
    (m,) = report["models"]
    assert m["n"] == 3
    assert m["per_class"]["sad"] == {**m["per_class"]["sad"], "recall": 0.0, "no_face": 1, "support": 1}
    happy = m["per_class"]["happy"]["recall"]
    assert m["accuracy"] == pytest.approx(2 * happy / 3)  # the wall is wrong whatever the model says
    assert len(m["confusion_matrix"]) == len(EMOTIONS) and sum(map(sum, m["confusion_matrix"])) == 2


def test_bench_detect_reads_labels_csv_and_ignores_other_columns(folders):
    (folders / "labels.csv").write_text("path,performer,label\nhappy/a.jpg,01,happy\nsad/wall.png,02,sad\n")
    photos = load_photos(folders)
    assert [p.name for p in photos.paths] == ["a.jpg", "wall.png"]
    assert [EMOTIONS[i] for i in photos.labels] == ["happy", "sad"]
    report = run_detect_bench(["face"], folders, DetectorSettings(detector="haar"), runs=2, warmup=0, threads=1)
    assert report.data["n"] == 2 and report.data["no_face"] == 1 and report.data["split"] == "labels.csv"
    assert report.to_dict()["no_face"] == 1


@pytest.mark.parametrize("rows, problem", [
    ("happy/a.jpg,happy\nhappy/missing.jpg,sad\n", "line 3: no such image file 'happy/missing.jpg'"),
    ("happy/a.jpg,joyful\n", "line 2: unknown label 'joyful'"),
])
def test_a_bad_labels_csv_row_is_one_line_naming_the_row(folders, rows, problem):
    (folders / "labels.csv").write_text("path,label\n" + rows)
    result = runner.invoke(app, ["bench", "face", "--data", str(folders), "--detect"], env=WIDE)
    line = one_line_error(result)
    assert problem in line and "labels.csv" in line


def test_labels_csv_without_its_columns_and_an_unknown_label_folder_are_errors(folders):
    (folders / "labels.csv").write_text("file,emotion\nhappy/a.jpg,happy\n")
    with pytest.raises(EdgeemoError, match="'path' and 'label' columns"):
        load_photos(folders)
    (folders / "labels.csv").unlink()
    (folders / "joyful").mkdir()
    with pytest.raises(EdgeemoError, match="unknown label 'joyful'"):
        load_photos(folders)


def test_bench_detect_on_a_corrupt_photo_names_the_file(folders):
    (folders / "happy" / "c.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    result = runner.invoke(app, ["bench", "face", "--data", str(folders), "--detect"], env=WIDE)
    assert "c.jpg" in last_error_line(result)


def test_score_through_camera_puts_no_face_in_recall_not_in_the_matrix():
    y = np.array([3, 3, 4])
    probs = np.eye(7, dtype=np.float32)[[3, 4]]
    found = np.array([True, False, True])
    report = score_through_camera(probs, found, y, np.arange(7))
    assert report["accuracy"] == pytest.approx(2 / 3)
    assert report["per_class"]["happy"]["recall"] == 0.5 and report["per_class"]["happy"]["no_face"] == 1
    assert np.array(report["confusion_matrix"]).sum() == 2


def test_the_detector_comes_from_the_config_and_detector_overrides_it(folders, tmp_path):
    config = tmp_path / "device.toml"
    config.write_text('[pipeline]\ndetector = "haar"\nface_margin = 0.2\n')
    for extra, expected in (([], "haar"), (["--detector", "blazeface"], "blazeface")):
        out = tmp_path / f"{expected}.json"
        result = runner.invoke(app, ["bench", "face", "--data", str(folders), "--detect", "--config", str(config),
                                     *extra, "--runs", "2", "--json", str(out), "--no-plots"], env=WIDE)
        assert result.exit_code == 0, result.output
        det = json.loads(out.read_text())["data"]["detector"]
        assert det["detector"] == expected and det["face_margin"] == 0.2


def test_the_daemons_defaults_are_the_bench_defaults():
    from edgeemo.device.pipeline import PipelineSettings

    assert PipelineSettings().detection() == DetectorSettings()


def test_an_unknown_detector_is_one_line(folders):
    result = runner.invoke(app, ["bench", "face", "--data", str(folders), "--detect", "--detector", "yolo"], env=WIDE)
    assert "blazeface, haar" in one_line_error(result)
    result = runner.invoke(app, ["bench", "face", "--data", str(folders), "--detector", "haar"], env=WIDE)
    assert "--detect" in one_line_error(result)


def test_predict_detect_prints_boxes_and_labels(folders, portrait, tmp_path):
    two = tmp_path / "two.png"
    cv2.imwrite(str(two), np.hstack([portrait, portrait]))
    files = [folders / "happy" / "a.jpg", two, folders / "sad" / "wall.png"]
    result = runner.invoke(app, ["predict", "face", *map(str, files), "--detect", "--json"], env=WIDE)
    assert result.exit_code == 0, result.output
    one, both, wall = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert one["faces"] == 1 and one["label"] in EMOTIONS
    x, y, w, h = one["detections"][0]["box"]
    assert 40 < x + w / 2 < 220 and 40 < y + h / 2 < 250 and w > 60  # the portrait's face
    assert both["faces"] == 2 and {d["box"][0] < 256 for d in both["detections"]} == {True, False}
    assert wall == {**wall, "faces": 0, "label": "no face", "detections": []}
    table = runner.invoke(app, ["predict", "face", *map(str, files), "--detect"], env=WIDE)
    assert table.exit_code == 0 and "no face" in table.output and "wall.png" in table.output


def test_predict_detect_takes_gray_rgba_16_bit_and_tiny_photos(portrait, tmp_path):
    gray = cv2.cvtColor(portrait, cv2.COLOR_BGR2GRAY)
    images = {"gray.png": gray, "rgba.png": cv2.cvtColor(portrait, cv2.COLOR_BGR2BGRA),
              "deep.png": portrait.astype(np.uint16) * 257, "tiny.png": np.zeros((2, 2, 3), np.uint8)}
    for name, img in images.items():
        cv2.imwrite(str(tmp_path / name), img)
    result = runner.invoke(app, ["predict", "face", *(str(tmp_path / n) for n in images), "--detect", "--json"],
                           env=WIDE)
    assert result.exit_code == 0, result.output
    found = {json.loads(line)["image"].rsplit("/", 1)[-1]: json.loads(line)["faces"]
             for line in result.output.splitlines() if line.startswith("{")}
    assert found["gray.png"] == found["rgba.png"] == found["deep.png"] == 1
    assert found["tiny.png"] == 0


HUGE_PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (100000).to_bytes(4, "big") * 2 + b"\x08\x02\x00\x00\x00"


@pytest.mark.parametrize("content, problem", [(b"GIF89a\x01", "not a decodable image"), (HUGE_PNG, "pixels")])
def test_predict_detect_on_a_corrupt_or_huge_file_is_one_line_naming_it(tmp_path, content, problem):
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    line = one_line_error(runner.invoke(app, ["predict", "face", str(bad), "--detect"], env=WIDE))
    assert "bad.png" in line and problem in line


@pytest.mark.skipif(not (SHARED_DATA / "taiwanese-faces").is_dir(), reason="no ../shared/data/taiwanese-faces")
def test_the_taiwanese_photos_go_through_the_camera_path():
    report = run_detect_bench(["face"], SHARED_DATA / "taiwanese-faces", limit_per_class=2, runs=2, warmup=0,
                              threads=1)
    assert report.data["n"] == 14 and report.data["no_face"] == 0
    assert 0.0 <= report.models[0].accuracy <= 1.0
