"""The one-command benchmark suite (`benchmarks/run_all.py --quick`), as CI runs it: every expected
table, JSON file and plot is written, and the numbers in the generated README are those of the JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import requires_data

ROOT = Path(__file__).resolve().parents[1]
RUN_ALL = ROOT / "benchmarks" / "run_all.py"

pytestmark = [requires_data("fer2013", "publictest"), requires_data("ravdess")]

SUITE = [
    "face_fer2013_publictest.json", "face_fer2013_publictest.md",
    "voice_ravdess_17-20.json", "voice_ravdess_17-20.md",
    "latency.json", "latency.md", "latency/latency-face.png", "latency/latency-voice.png",
    "voice_transfer.json", "voice_transfer.md",
    "fusion_pseudo_paired.json", "fusion_pseudo_paired.md", "fusion/fusion-weight.png", "fusion/fusion-weight-ood.png",
    "plots/pareto-face.png", "plots/pareto-voice.png", "plots/int8-per-class.png",
    *[f"face_fer2013/confusion-{m}.png" for m in ("face-float", "face", "face-float-onnx", "face-onnx")],
    *[f"voice/ravdess_17-20/confusion-{m}.png" for m in ("voice-float", "voice", "voice-float-onnx", "voice-onnx")],
]
EXPECTED = [
    "README.md", "suite.json", *[f"suite/{f}" for f in SUITE],
    # release steps are not re-run by --quick, but their committed results are included
    "experiments/peer_fer.json", "release/calibration_sensitivity.json", "robustness/device_pipeline.json",
]


PARENT = {"face": "face-float", "face-onnx": "face-float-onnx",
          "voice": "voice-float", "voice-onnx": "voice-float-onnx"}


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run([sys.executable, str(RUN_ALL), "--quick", "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def table_after(text: str, heading: str) -> list[dict[str, str]]:
    """Rows (header -> cell) of the first markdown table after the line starting with ``heading``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    header = [c.strip() for c in lines[first].strip("|").split("|")]
    rows = []
    for line in lines[first + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True)))
    return rows


def test_quick_suite_writes_every_table_json_and_plot(suite: Path) -> None:
    missing = [f for f in EXPECTED if not (suite / f).is_file()]
    assert not missing
    for png in suite.rglob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000, png
    info = json.loads((suite / "suite.json").read_text())
    status = {s["key"]: s["status"] for s in info["steps"]}
    assert all(status[k] == "ran" for k in ("face", "voice", "voice_transfer", "latency", "fusion"))
    assert all("not re-run" in v for k, v in status.items() if k.startswith("release:"))
    assert all("skipped (--quick)" in v for k, v in status.items() if k.startswith("trained:"))
    readme = (suite / "README.md").read_text()
    assert "QUICK smoke run" in readme and info["git"]["commit"][:12] in readme
    assert info["machine"]["cpu"] in readme and "onnxruntime" in readme
    # every result JSON records the sha256 of the models it measured; those on models no longer shipped
    # (or measured before stamping) are listed, the ones this run measured are not
    stale = {s["file"] for s in info["stale_results"]}
    assert "suite/face_fer2013_publictest.json" not in stale and "suite/latency.json" not in stale
    assert json.loads((suite / "suite/face_fer2013_publictest.json").read_text())["models_sha256"]["face"]
    assert "## Results on models no longer shipped" in readme and all(f"`{f}`" in readme for f in stale)


def test_readme_numbers_are_the_json_numbers(suite: Path) -> None:
    readme = (suite / "README.md").read_text()
    for heading, file in (("### Face: FER2013", "suite/face_fer2013_publictest.json"),
                          ("### Voice: RAVDESS", "suite/voice_ravdess_17-20.json")):
        report = json.loads((suite / file).read_text())
        rows = {r["model"]: r for r in table_after(readme, heading)}
        assert list(rows) == [m["model"] for m in report["models"]]
        assert len(rows) == 4  # float TFLite, int8 TFLite, float ONNX, int8 ONNX
        for m in report["models"]:
            row = rows[m["model"]]
            assert float(row["accuracy"].rstrip("%")) == pytest.approx(100 * m["accuracy"], abs=0.005)
            assert float(row["macro-F1"]) == pytest.approx(m["macro_f1"], abs=0.0005)
            assert float(row["p50 latency, 1 thread (ms)"]) == pytest.approx(m["latency_ms"]["p50"], abs=0.0005)
            if m["quantization"] == "int8":
                parent = PARENT[m["model"]]
                agree = row["top-1 agreement with float parent"]
                assert agree.endswith(f"vs {parent}")
                assert float(agree.split("%")[0]) == pytest.approx(100 * m["top1_agreement"][parent], abs=0.005)

    latency = json.loads((suite / "suite/latency.json").read_text())
    rows = table_after(readme, "## Speed and size")
    assert len(rows) == len(latency["models"]) == 8  # 4 files per task; LiteRT or onnxruntime (no venv in --quick)
    for row, r in zip(rows, latency["models"], strict=True):
        assert row["model"] == r["model"] and row["backend"].startswith(r["backend"])
        for t in latency["threads"]:
            p50, p99 = (float(v) for v in row[f"p50 / p99 ms, {t} thr"].split(" / "))
            lat = next(x for x in r["rows"] if x["threads"] == t)["latency_ms"]
            assert p50 == pytest.approx(lat["p50"], abs=0.0005) and p99 == pytest.approx(lat["p99"], abs=0.0005)

    fusion = json.loads((suite / "suite/fusion_pseudo_paired.json").read_text())
    rows = {r[""]: r for r in table_after(readme, "## Fusion")}
    for name, key in (("face only", "face_accuracy"), ("voice only", "voice_accuracy"),
                      ("fused, daemon default weights (1, 1)", "fused_accuracy_default")):
        cell = rows[name]["accuracy (mean of draws)"]
        assert float(cell.rstrip("%")) == pytest.approx(100 * fusion[key]["mean"], abs=0.005)


def test_transfer_table_in_the_readme_is_the_json(suite: Path) -> None:
    readme = (suite / "README.md").read_text()
    t = json.loads((suite / "suite/voice_transfer.json").read_text())
    rows = {r["model"]: r for r in table_after(readme, "## Voice transfer")}
    assert list(rows) == list(t["results"]) and any(m["previous"] for m in t["models"].values())
    assert all(len(m["sha256"]) == 64 for m in t["models"].values())
    for label, res in t["results"].items():
        for corpus, r in res.items():
            cell = rows[label][t["sets"][corpus]["title"]]
            if "skipped" in r:
                assert cell == "skipped"
            else:
                acc, uar, majority = (c.strip() for c in cell.split("(")[0].split("/"))
                assert float(acc.rstrip("%")) == pytest.approx(100 * r["accuracy"], abs=0.005)
                assert float(uar) == pytest.approx(r["uar"], abs=0.0005)
                assert float(majority.rstrip("%")) == pytest.approx(100 * r["majority"], abs=0.005)


def test_transfer_holds_out_what_the_manifest_says_the_model_never_heard() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks" / "suite"))
    from voice_transfer import held_out

    multi = {"training": {"data": [f"../shared/data/{c}" for c in ("ravdess", "cremad", "tess", "savee")],
                          "split": {"train": {"speakers": ["ravdess:01", "cremad:1001", "savee:DC", "tess:YAF"]},
                                    "val": {"speakers": ["cremad:1008"]}}}}
    assert held_out(multi, "cremad", ["1008", "1009", "1010"])[0] == ["1009", "1010"]
    assert held_out(multi, "savee", ["DC", "JE"]) == (["JE"], "DC left out: it trained on them")
    assert held_out(multi, "tess", ["YAF"]) == ([], "trained on the only TESS speaker (YAF): see the random-split row")
    no_list = {"training": {"data": ["../shared/data/tess"], "split": {"dataset": "tess"}}}
    assert held_out(no_list, "tess", ["YAF"])[0] == []


def test_quick_refuses_to_overwrite_the_committed_results() -> None:
    proc = subprocess.run([sys.executable, str(RUN_ALL), "--quick"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "--out" in proc.stderr
