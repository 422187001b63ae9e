"""Streaming training data (--stream): what the stream hands the model is what the in-memory path hands it,
faces (THE preprocessing, cache, shards) and voices (speaker adaptation, statistics), and a bad file in the
stream is one line naming it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import soundfile as sf

from edgeemo.errors import EdgeemoError
from edgeemo.face import FacePreprocessing, preprocess_faces
from edgeemo.face_datasets import load_faces
from edgeemo.face_index import index_faces

RATE = 16000


def _faces(root: Path, n_per_class: int = 5) -> Path:
    """Label folders of faces in the sizes and colours a dataset has (gray 48 px, larger BGR, smaller)."""
    rng = np.random.default_rng(0)
    for label in ("angry", "happy", "surprise"):
        (root / label).mkdir(parents=True)
        for i in range(n_per_class):
            shape = [(48, 48), (96, 80, 3), (40, 40)][i % 3]
            assert cv2.imwrite(str(root / label / f"{label}{i}.png"), rng.integers(0, 256, shape, dtype=np.uint8))
    return root


def _batches(ds) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


@pytest.mark.parametrize("equalize", ["none", "hist"])
def test_a_streamed_face_batch_is_the_in_memory_preprocessed_batch(tmp_path, equalize):
    from edgeemo.train.face_stream import face_stream

    root = _faces(tmp_path / "faces")
    pre = FacePreprocessing(equalize=equalize)
    index = index_faces(root)
    expected = preprocess_faces(load_faces(root).images, pre)
    x, y = _batches(face_stream(index, pre, batch=4))
    np.testing.assert_array_equal(x, expected)  # bit for bit: the same core decoder and preprocessing
    assert y.argmax(1).tolist() == index.labels.tolist()
    cached = face_stream(index, pre, batch=4, cache=tmp_path / "cache")
    first, again = _batches(cached)[0], _batches(cached)[0]  # the second pass reads the cache on disk
    np.testing.assert_array_equal(first, expected)
    np.testing.assert_array_equal(again, expected)
    assert list((tmp_path / "cache").glob("faces-*.index"))


def test_each_worker_streams_its_own_files_and_shuffles_them_every_epoch(tmp_path):
    from edgeemo.train.face_stream import face_stream

    index = index_faces(_faces(tmp_path / "faces"))
    pre = FacePreprocessing()
    everything = preprocess_faces(load_faces(tmp_path / "faces").images, pre)
    shards = [_batches(face_stream(index, pre, 4, seed=1, shuffle=True, shard=(2, k)))[0] for k in (0, 1)]
    assert len(shards[0]) + len(shards[1]) == len(index)
    seen = sorted(map(bytes, np.concatenate(shards)))
    assert seen == sorted(map(bytes, everything))  # together: every face once
    ds = face_stream(index, pre, len(index), seed=1, shuffle=True)
    epoch1, epoch2 = (_batches(ds)[0] for _ in range(2))
    assert not np.array_equal(epoch1, epoch2) and sorted(map(bytes, epoch1)) == sorted(map(bytes, epoch2))


def test_a_corrupt_image_in_the_stream_is_one_line_naming_it(tmp_path):
    from edgeemo.train.distribute import clear_tf_errors
    from edgeemo.train.face_stream import face_stream

    root = _faces(tmp_path / "faces")
    index = index_faces(root)
    bad = root / "happy" / "happy2.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(EdgeemoError) as exc, clear_tf_errors():
        _batches(face_stream(index, FacePreprocessing(), 4))
    assert str(bad) in str(exc.value) and "\n" not in str(exc.value)


def _speech(seconds: float, f0: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3))
    gap = np.zeros(RATE // 5)
    return np.concatenate([gap, 0.1 * x, gap]).astype(np.float32)


def test_streamed_voice_rows_are_the_in_memory_rows(tmp_path):
    from edgeemo.audio import AudioFeatures
    from edgeemo.train.voice_augment import ChannelAugmentation
    from edgeemo.train.voice_bank import FeatureBank
    from edgeemo.train.voice_inputs import adaptation_orders, causal_inputs, training_statistics
    from edgeemo.train.voice_stream import VoiceStream
    from edgeemo.voice import SpeakerAdaptation, VoicePreprocessing
    from edgeemo.voice_datasets import load_voice

    root = tmp_path / "ravdess"
    for actor in (1, 2, 3):
        (root / f"Actor_{actor:02d}").mkdir(parents=True)
        for k, code in enumerate(("01", "03", "05", "04")):
            sf.write(root / f"Actor_{actor:02d}" / f"03-01-{code}-01-01-01-{actor:02d}.wav",
                     _speech(0.4 + 0.1 * k, 140 + 40 * k + 7 * actor), RATE)
    ds = load_voice(root)
    feats = AudioFeatures(window_s=1.0)
    bank = FeatureBank(tmp_path / "cache", feats, ChannelAugmentation(copies=1, p_reverb=0.0), None, seed=0,
                       babble_sources=ds.paths, workers=1)
    memory, lazy = bank.rows(ds, copies=True), bank.rows(ds, copies=True, load=False)
    assert lazy.x is None and len(lazy) == len(memory)
    stats = training_statistics(memory, feats, adaptive=True)
    streamed_stats = training_statistics(lazy, feats, adaptive=True, bank=bank)
    np.testing.assert_allclose(streamed_stats.mean, stats.mean, rtol=1e-12)
    pre = VoicePreprocessing.from_stats(feats, stats, SpeakerAdaptation())
    channels = np.char.add(np.char.add(memory.speakers, "#"), memory.copy.astype(str))
    expected = causal_inputs(memory, pre, 7, channels)
    stream = VoiceStream(bank, lazy, pre, adaptation_orders(channels, 7))
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in stream.dataset(batch=5)], strict=True)
    order = stream.order()
    np.testing.assert_array_equal(np.concatenate(xs), expected[order])
    assert np.concatenate(ys).argmax(1).tolist() == memory.labels[order].tolist()
    shuffled = np.concatenate([x.numpy() for x, _ in stream.dataset(batch=5, seed=3, shuffle=True, shard=(2, 1))])
    assert 0 < len(shuffled) < len(expected)  # worker 1 of 2: some speakers, not all
    assert {bytes(r) for r in shuffled} <= {bytes(r) for r in expected}


@pytest.mark.slow
def test_train_face_streams_fer_plus_with_a_cache_that_a_resume_reads_again(tmp_path):
    from typer.testing import CliRunner

    from edgeemo.cli import app
    from edgeemo.face_index import FERPLUS_VOTES

    rng = np.random.default_rng(0)
    lines = ["Usage,Image name," + ",".join(FERPLUS_VOTES)]
    for k in range(70):
        usage, folder = ("PublicTest", "FER2013Valid") if k % 5 == 0 else ("Training", "FER2013Train")
        name = f"fer{k:07d}.png"
        (tmp_path / "ferplus" / folder).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "ferplus" / folder / name), rng.integers(0, 256, (48, 48), dtype=np.uint8))
        votes = [0] * len(FERPLUS_VOTES)
        votes[k % 7] = 9  # neutral, happiness, ..., fear
        lines.append(f"{usage},{name}," + ",".join(map(str, votes)))
    (tmp_path / "ferplus" / "fer2013new.csv").write_text("\n".join(lines) + "\n")
    run, cache = tmp_path / "run", tmp_path / "cache"
    args = ["train", "face", "--data", str(tmp_path / "ferplus"), "--out", str(run), "--stream", "--stream-cache",
            str(cache), "--batch-size", "8", "--arch", "custom-cnn"]
    first = CliRunner().invoke(app, [*args, "--epochs", "1"], env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    config = __import__("json").loads((run / "config.json").read_text())
    assert config["split"]["dataset"] == "ferplus" and config["split"]["test"]["source"].endswith("(PublicTest)")
    assert config["split"]["test"]["n"] == 14 and config["data_pipeline"]["stream"]
    written = sorted(p.name for p in cache.iterdir())
    assert len(written) == 4  # the training and the validation stream: an index and a data file each
    second = CliRunner().invoke(app, [*args, "--epochs", "2"], env={"COLUMNS": "200"})
    assert second.exit_code == 0 and "resuming" in second.output, second.output
    assert sorted(p.name for p in cache.iterdir()) == written  # read again, not decoded again


def test_detector_framing_is_refused_with_a_stream_in_one_line(tmp_path):
    from conftest import one_line_error
    from typer.testing import CliRunner

    from edgeemo.cli import app

    data = _faces(tmp_path / "faces")
    args = ["train", "face", "--data", str(data), "--out", str(tmp_path / "run"), "--stream",
            "--detector-crop-p", "0.5"]
    line = one_line_error(CliRunner().invoke(app, args, env={"COLUMNS": "200"}))
    assert "--detector-crop-p" in line and "--stream" in line
