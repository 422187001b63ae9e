"""`edgeemo bench` as a newcomer runs it on the real data: the split it names, the data a model trained on,
the order of the models, and no files left in the working directory."""

from __future__ import annotations

import json

from conftest import SHARED_DATA, one_line_error, requires_data
from typer.testing import CliRunner

from edgeemo.cli import app

runner = CliRunner()
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
FER = SHARED_DATA / "fer2013"
QUICK = ["--runs", "1", "--warmup", "0", "--limit-per-class", "2"]


@requires_data("fer2013", "publictest")
def test_a_missing_split_folder_is_named_with_the_ones_present():
    result = runner.invoke(app, ["bench", "face", "--data", str(FER), "--split", "privatetest", *QUICK], env=ENV)
    line = one_line_error(result)
    assert "no 'privatetest' split folder" in line and "publictest" in line and "train" in line


@requires_data("fer2013", "train")
def test_bench_on_the_training_faces_says_so_in_the_table_and_the_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "report" / "bench.json"
    result = runner.invoke(app, ["bench", "face-float", "face", "--data", str(FER), "--split", "train", *QUICK,
                                 "--json", str(out), "--no-plots"], env=ENV)
    assert result.exit_code == 0, result.output
    assert "face scores data it was trained on" in result.output
    assert "trained on this data" in result.output and "fer2013 train," in result.output
    report = json.loads(out.read_text())
    assert report["data"]["split"] == "train"
    assert set(report["data"]["trained_on_this_data"]) == {"face-float", "face"}
    assert [m["model"] for m in report["models"]] == ["face-float", "face"]  # the order given
    header = next(line for line in result.output.splitlines() if "face-float" in line and "face " in line)
    assert header.index("face-float") < header.rindex(" face ")


@requires_data("fer2013", "publictest")
def test_the_held_out_split_is_not_flagged_and_nothing_lands_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["bench", "face", "--data", str(FER), *QUICK], env=ENV)
    assert result.exit_code == 0, result.output
    assert "trained on" not in result.output and "fer2013 publictest," in result.output
    assert list(tmp_path.iterdir()) == []  # no confusion-*.png without --json or --plot-dir
