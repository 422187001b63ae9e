"""Training options for several corpora, on two small generated ones (RAVDESS and SAVEE names):
the adversary (`--adversary W`: gradient reversal trains the hidden layer against telling the
training corpora apart, or with `--adversary-on sentence` the sentences within a corpus; only the
emotion model leaves training, so export and the device see the same model as without it) and
bagging by speaker (`--speaker-bag F`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import one_line_error
from typer.testing import CliRunner

from edgeemo.cli import app
from edgeemo.labels import EMOTIONS

pytest.importorskip("tensorflow")
pytestmark = pytest.mark.slow

ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
runner = CliRunner()
RATE = 16000
RAVDESS = {"01": 0, "03": 1, "04": 2, "05": 3, "06": 4, "07": 5, "08": 6}  # emotion code -> tone
SAVEE = {"n": 0, "h": 1, "sa": 2, "a": 3, "f": 4, "d": 5, "su": 6}


def _tone(index: int, speaker: int, rep: int, corpus_shift: float) -> np.ndarray:
    t = np.arange(int(0.8 * RATE)) / RATE
    f0 = (110 + 45 * index + 4 * speaker + 2 * rep) * corpus_shift
    tone = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3))
    tone *= 0.6 + 0.4 * np.sin(2 * np.pi * (2 + index) * t)
    gap = np.zeros(int(0.2 * RATE))
    return np.concatenate([gap, 0.2 * tone / np.max(np.abs(tone)), gap]).astype(np.float32)


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("corpora")
    for actor in range(1, 4):
        folder = root / "ravdess" / f"Actor_{actor:02d}"
        folder.mkdir(parents=True)
        for code, index in RAVDESS.items():
            for rep in range(1, 4):
                sf.write(folder / f"03-01-{code}-01-0{1 + rep % 2}-0{1 + rep // 3}-{actor:02d}.wav",
                         _tone(index, actor, rep, 1.0), RATE, subtype="PCM_16")
    for speaker in ("DC", "JE"):
        folder = root / "savee" / "AudioData" / speaker
        folder.mkdir(parents=True)
        for code, index in SAVEE.items():
            for rep in range(1, 4):
                sf.write(folder / f"{code}{rep:02d}.wav", _tone(index, len(speaker), rep, 1.3), RATE, subtype="PCM_16")
    return root / "ravdess", root / "savee"


def _train(data: str, run: Path, *extra: str):
    args = ["train", "voice", "--data", data, "--out", str(run), "--arch", "mlp", "--summary", "functionals",
            "--window", "1.0", "--epochs", "2", "--batch-size", "16", "--aug-copies", "1", "--augment", "clip",
            "--pitch", "0", "--stretch", "0", "--seed", "0", *extra]
    return runner.invoke(app, args, env=ENV)


def test_gradient_reversal_is_identity_forward_and_negated_backward():
    import tensorflow as tf

    from edgeemo.train.voice_adversary import GradientReversal

    x = tf.constant([[1.0, -2.0, 3.0]])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = GradientReversal(0.5)(x)
        loss = tf.reduce_sum(3.0 * y)
    np.testing.assert_allclose(y.numpy(), x.numpy())
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), [[-1.5, -1.5, -1.5]])


def test_adversary_changes_training_but_leaves_the_plain_emotion_model_to_export(corpora, tmp_path):
    import keras

    data = ",".join(str(c) for c in corpora)
    common = ("--test-speakers", "03,JE", "--balance", "speaker-class")
    for name, extra in (("plain", ()), ("adv", ("--adversary", "1.0"))):
        result = _train(data, tmp_path / name, *common, *extra)
        assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "adv" / "config.json").read_text())
    assert config["adversary"] == {"weight": 1.0, "domain": "corpus"}
    assert "adversary" not in json.loads((tmp_path / "plain" / "config.json").read_text())
    plain, adv = (keras.models.load_model(tmp_path / n / "best.keras") for n in ("plain", "adv"))
    assert type(adv) is type(plain) and adv.count_params() == plain.count_params()  # the emotion model alone
    assert not np.allclose(adv.get_weights()[0], plain.get_weights()[0])  # same seed, another gradient
    result = runner.invoke(app, ["export", str(tmp_path / "adv"), "--out", str(tmp_path / "m"), "--name", "a",
                                 "--force", "--format", "tflite"], env=ENV)
    assert result.exit_code == 0, result.output


def test_adversary_needs_two_corpora_and_balanced_weights(corpora, tmp_path):
    line = one_line_error(_train(str(corpora[0]), tmp_path / "one", "--test-speakers", "03", "--balance",
                                 "speaker-class", "--adversary", "0.5"))
    assert "at least two training corpora" in line
    line = one_line_error(_train(",".join(map(str, corpora)), tmp_path / "w", "--test-speakers", "03,JE",
                                 "--balance", "none", "--adversary", "0.5"))
    assert "--adversary" in line and "--balance" in line


def test_sentence_targets_are_one_softmax_per_corpus_and_none_where_the_name_does_not_say():
    from edgeemo.train.voice_adversary import domain_targets

    speakers = np.array(["ravdess:17", "ravdess:18", "cremad:1001", "cremad:1002", "savee:DC"])
    paths = ["03-01-05-01-01-01-17.wav", "03-01-05-01-02-01-18.wav", "1001_DFA_ANG_XX.wav", "1002_IEO_SAD_LO.wav",
             "DC/a01.wav"]
    labels = np.array([3, 3, 3, 4, 3])
    targets, names = domain_targets(labels, speakers, paths, "sentence")
    assert names == ["cremad:dfa", "cremad:ieo", "ravdess:01", "ravdess:02"]
    k, n = len(EMOTIONS), len(names)
    emotion, domain, mask = targets[:, :k], targets[:, k:k + n], targets[:, k + n:]
    np.testing.assert_array_equal(emotion.argmax(1), labels)
    np.testing.assert_array_equal(domain[:4].argmax(1), [2, 3, 0, 1])
    np.testing.assert_array_equal(mask[0], [0, 0, 1, 1])  # a RAVDESS clip: RAVDESS' statements only
    np.testing.assert_array_equal(mask[2], [1, 1, 0, 0])
    assert not domain[4].any() and not mask[4].any()  # SAVEE: no target, no loss
    corpus, corpus_names = domain_targets(labels, speakers)
    assert corpus_names == ["cremad", "ravdess", "savee"] and corpus[:, k + 3:].all()  # one softmax over all


def test_the_sentence_adversary_trains_on_one_corpus_and_leaves_the_emotion_model(corpora, tmp_path):
    import keras

    result = _train(str(corpora[0]), tmp_path / "s", "--test-speakers", "03", "--balance", "speaker-class",
                    "--adversary", "1.0", "--adversary-on", "sentence")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "s" / "config.json").read_text())["adversary"] == {"weight": 1.0,
                                                                                    "domain": "sentence"}
    model = keras.models.load_model(tmp_path / "s" / "best.keras")
    assert type(model).__name__ != "DomainAdversarial" and model.output_shape == (None, len(EMOTIONS))
    line = one_line_error(_train(str(corpora[0]), tmp_path / "x", "--test-speakers", "03", "--balance",
                                 "speaker-class", "--adversary", "1.0", "--adversary-on", "words"))
    assert "--adversary-on" in line and "sentence" in line


def test_speaker_bag_lists_the_speakers_it_left_out_and_needs_balanced_weights(corpora, tmp_path):
    data = ",".join(str(c) for c in corpora)
    result = _train(data, tmp_path / "bag", "--test-speakers", "03,JE", "--balance", "speaker-class",
                    "--speaker-bag", "0.4")
    assert result.exit_code == 0, result.output
    bag = json.loads((tmp_path / "bag" / "config.json").read_text())["speaker_bag"]
    assert bag["fraction"] == 0.4 and len(bag["left_out"]) == 1  # round(0.4 * 3 training speakers)
    assert set(bag["left_out"]) <= {"ravdess:01", "ravdess:02", "savee:DC"}
    line = one_line_error(_train(data, tmp_path / "w", "--test-speakers", "03,JE", "--balance", "none",
                                 "--speaker-bag", "0.4"))
    assert "--speaker-bag" in line and "--balance" in line
