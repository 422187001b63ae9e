"""Training helpers that need Keras installed (the [train] extra)."""

import numpy as np
import pytest

pytest.importorskip("keras")

from edgeemo.errors import EdgeemoError
from edgeemo.train.run import class_weights

LABELS = np.repeat(np.arange(7), [400, 40, 300, 800, 350, 200, 0])  # class 6 absent


def test_balanced_weights_times_counts_are_equal():
    w = class_weights(LABELS, 7, "balanced")
    counts = np.bincount(LABELS, minlength=7)
    products = [w[c] * counts[c] for c in range(6)]
    np.testing.assert_allclose(products, products[0])
    # balanced: n / (k * count) with k the number of present classes
    assert w[1] == pytest.approx(len(LABELS) / (6 * 40))
    assert w[1] > w[0] > w[3]  # rarer classes weigh more
    assert w[6] == 1.0  # an absent class gets a neutral weight, not inf/0
    assert set(w) == set(range(7))


def test_sqrt_is_the_square_root_of_balanced():
    balanced = class_weights(LABELS, 7, "balanced")
    soft = class_weights(LABELS, 7, "sqrt")
    for c in range(6):
        assert soft[c] == pytest.approx(np.sqrt(balanced[c]))
    assert soft[6] == 1.0


def test_none_means_no_weights():
    assert class_weights(LABELS, 7, "none") is None


def test_unknown_mode_is_an_error():
    with pytest.raises(EdgeemoError, match="inverse"):
        class_weights(LABELS, 7, "inverse")


def test_cosine_schedule_runs_from_the_learning_rate_to_the_floor_by_epoch_index():
    import pytest

    from edgeemo.errors import EdgeemoError
    from edgeemo.train.run import TrainSettings, learning_rate_callback

    cb = learning_rate_callback(TrainSettings(epochs=11, learning_rate=1e-3, min_lr=1e-5, schedule="cosine"))
    lrs = [cb.schedule(e, 0.0) for e in range(11)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-5) and lrs[5] == pytest.approx(5.05e-4)
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))  # a resume at epoch k gets lrs[k] again
    with pytest.raises(EdgeemoError, match="plateau, cosine, constant"):
        learning_rate_callback(TrainSettings(schedule="step"))


def test_constant_schedule_keeps_the_learning_rate_whatever_keras_passes_in():
    from edgeemo.train.run import TrainSettings, learning_rate_callback

    cb = learning_rate_callback(TrainSettings(epochs=30, learning_rate=3e-4, schedule="constant"))
    assert [cb.schedule(e, 1e-6) for e in (0, 7, 29)] == [3e-4, 3e-4, 3e-4]


def test_a_resume_gets_random_draws_of_its_own_and_a_fresh_run_keeps_its_seed():
    from edgeemo.train.run import stream_seed

    assert stream_seed(7, 0) == 7
    resumed = [stream_seed(7, k) for k in range(1, 60)]
    assert len(set(resumed)) == len(resumed) and 7 not in resumed
    assert resumed == [stream_seed(7, k) for k in range(1, 60)]  # the same resume point, the same draws
    assert all(0 <= s < 2**31 for s in resumed) and stream_seed(8, 1) != stream_seed(7, 1)


def test_auto_precision_follows_the_hardware():
    from edgeemo.train.hardware import resolve_precision

    assert resolve_precision("auto", gpus=1, flags=set()) == "mixed_float16"
    assert resolve_precision("auto", gpus=0, flags={"avx512f", "amx_bf16", "amx_tile"}) == "mixed_bfloat16"
    assert resolve_precision("auto", gpus=0, flags={"avx2", "avx512f", "avx512_bf16"}) == "mixed_bfloat16"  # Zen 4
    assert resolve_precision("auto", gpus=0, flags={"avx2", "avx512f", "avx512_vnni"}) == "float32"  # no bfloat16 math
    assert resolve_precision("float32", gpus=1, flags={"amx_bf16"}) == "float32"  # asked for: as asked
    with pytest.raises(EdgeemoError, match="--precision 'fp8'"):
        resolve_precision("fp8", gpus=0, flags=set())
    # voice models gained nothing from bfloat16 on the CPU: auto keeps them float32 there
    assert resolve_precision("auto", gpus=0, flags={"amx_bf16"}, cpu_bfloat16=False) == "float32"
    assert resolve_precision("auto", gpus=1, flags=set(), cpu_bfloat16=False) == "mixed_float16"


def test_dtype_policy_is_restored_after_the_block_even_on_error():
    import keras

    from edgeemo.train.run import dtype_policy

    before = keras.config.dtype_policy().name
    with pytest.raises(RuntimeError), dtype_policy("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        assert keras.layers.Dense(2).compute_dtype == "bfloat16"
        raise RuntimeError("training failed")
    assert keras.config.dtype_policy().name == before
    assert keras.layers.Dense(2).compute_dtype == "float32"


def test_optimizer_warm_up_fills_adams_moments_and_keeps_the_weights():
    import keras
    import tensorflow as tf

    from edgeemo.train.run import TrainSettings, compile_model, warm_up_optimizer

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    settings = TrainSettings(learning_rate=1e-3, label_smoothing=0.0)
    compile_model(model, settings)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(64) % 3]
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16).repeat()
    before = [w.copy() for w in model.get_weights()]
    warm_up_optimizer(model, ds, 5, None)
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)
    assert int(model.optimizer.iterations.numpy()) == 5
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(1e-3)  # restored
    # Adam's variables hold the moments of the gradients seen: none may still be all zero
    moments = [v.numpy() for v in model.optimizer.variables if v.name.endswith(("_momentum", "_velocity"))]
    assert moments and all(np.abs(m).max() > 0 for m in moments)


def test_weights_file_round_trips_and_refuses_another_model_or_a_bad_file(tmp_path):
    import keras

    from edgeemo.train.run import load_weights_npz, save_weights_npz

    def model(width: int) -> keras.Model:
        inputs = keras.Input((4,))
        x = keras.layers.BatchNormalization()(keras.layers.Dense(width)(inputs))
        return keras.Model(inputs, keras.layers.Dense(3)(x))

    source, target = model(5), model(5)
    path = tmp_path / "last.weights.npz"
    save_weights_npz(source, path)
    load_weights_npz(target, path)
    for a, b in zip(source.get_weights(), target.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(EdgeemoError, match="do not fit") as e:
        load_weights_npz(model(6), path)
    assert str(path) in str(e.value)
    bad = tmp_path / "bad.weights.npz"
    bad.write_text("not an archive")
    with pytest.raises(EdgeemoError, match="not a weights file"):
        load_weights_npz(target, bad)


def test_the_gpu_path_scales_the_loss_of_float16_models_and_uses_xla_on_one_gpu():
    # no GPU here: what the GPU path decides, and Keras' loss scaling, checked on the CPU
    import keras

    from edgeemo.train.distribute import Distribution
    from edgeemo.train.run import TrainSettings, compile_model, dtype_policy

    assert Distribution(gpus=1).xla and not Distribution().xla
    assert not Distribution("mirrored", strategy=object(), gpus=2).xla  # Keras' own rule: no XLA under tf.distribute
    with dtype_policy("mixed_float16"):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(7, activation="softmax", dtype="float32")])
    compile_model(model, TrainSettings(), xla=False)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert Distribution(gpus=1).record(128, "mixed_float16")["loss_scaling"] is True
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(7)])
    compile_model(plain, TrainSettings())
    assert not isinstance(plain.optimizer, keras.optimizers.LossScaleOptimizer)  # float32: no scaling needed


def test_voice_balance_weights_every_corpus_or_speaker_class_pair_the_same():
    from types import SimpleNamespace

    from edgeemo.train.voice import balance_weights

    # corpus a: 2 speakers x 2 classes (a:1 has 3 clips of class 0); corpus b: 1 speaker, class 0 only
    speakers = np.array(["a:1"] * 3 + ["a:1"] + ["a:2", "a:2"] + ["b:9"] * 6)
    labels = np.array([0, 0, 0, 1, 0, 1] + [0] * 6)
    rows = SimpleNamespace(speakers=speakers, labels=labels)
    assert balance_weights(rows, "none") is None

    def totals(w, keys):
        return {k: round(float(w[keys == k].sum()), 6) for k in np.unique(keys)}

    w = balance_weights(rows, "corpus-class")
    corpus = np.array([s.split(":")[0] for s in speakers])
    by_corpus = totals(w, np.char.add(np.char.add(corpus, "/"), labels.astype(str)))
    assert len(set(by_corpus.values())) == 1 and len(by_corpus) == 3  # a/0, a/1, b/0
    w = balance_weights(rows, "speaker-class")
    by_speaker = totals(w, np.char.add(np.char.add(speakers, "/"), labels.astype(str)))
    assert len(set(by_speaker.values())) == 1 and len(by_speaker) == 5  # a:1/0, a:1/1, a:2/0, a:2/1, b:9/0
    # corpus b (one speaker) now weighs one fifth, not one third
    assert w[corpus == "b"].sum() == pytest.approx(len(w) / 5)
    assert w.mean() == pytest.approx(1.0)


def test_speaker_bag_leaves_out_a_seeded_fraction_of_speakers_with_no_weight():
    from edgeemo.train.voice import bag_speakers, bag_weights

    speakers = [f"ravdess:{i:02d}" for i in range(1, 17)] + ["tess:YAF", "savee:DC"]
    out = bag_speakers(speakers, 0.25, seed=3)
    assert len(out) == 4 and set(out) <= set(speakers)  # round(0.25 * 18) = round(4.5) = 4
    assert out == bag_speakers(list(reversed(speakers)), 0.25, seed=3)  # the seed decides, not the order
    assert out != bag_speakers(speakers, 0.25, seed=4)
    rows = np.array([s for s in speakers for _ in range(3)])
    w = bag_weights(np.linspace(0.5, 2.0, len(rows)), rows, out)
    left = np.isin(rows, out)
    assert np.all(w[left] == 0) and np.all(w[~left] > 0) and np.isclose(w[~left].mean(), 1.0)
    with pytest.raises(EdgeemoError, match="leave out at least one"):
        bag_speakers(speakers[:3], 0.1, seed=0)  # rounds to none left out
