"""``edgeemo train ensemble``: average the softmax outputs of finished runs into one model.

The members (all face or all voice) must share everything the device sees (labels, input
shape, THE preprocessing, for voice with its standardisation statistics) and the same
validation and test samples, so the
ensemble is one ordinary Keras model in an ordinary run folder: ``edgeemo export`` turns it
into one int8 TFLite / ONNX file with one manifest. The graph is flat (each member's layers
are re-created on the shared input under a ``mN_`` prefix), so recurrent members unroll for
full-integer TFLite like a single model does.

Choosing which runs to combine is a validation-set decision: ``scores`` prints validation
accuracy for every combination (``--search``), and the test split is only reported.

Faces can also be averaged with their mirror image (``mirror=True``, ``--mirror``): the
model runs on the face and on the face flipped left-right, with the same weights, so the
parameters and the file size stay those of the members and the compute doubles.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import keras
import numpy as np

from edgeemo import __version__
from edgeemo.errors import EdgeemoError
from edgeemo.face import FacePreprocessing, preprocess_faces
from edgeemo.face_datasets import load_faces
from edgeemo.face_index import has_official_test
from edgeemo.labels import EMOTIONS
from edgeemo.metrics import classification_report, per_corpus
from edgeemo.train.run import console
from edgeemo.train.voice_inputs import adaptation_note
from edgeemo.voice import VoicePreprocessing

# What every member must agree on for one manifest to describe the ensemble.
SHARED_KEYS = ("task", "labels", "input_shape")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise EdgeemoError("not a finished training run (file missing)", path) from None
    except (OSError, ValueError) as exc:
        raise EdgeemoError(f"cannot read JSON ({exc})", path) from None


class Member:
    """One finished run folder: its config, split and best model."""

    def __init__(self, run: Path) -> None:
        self.run = Path(run)
        self.config = read_json(self.run / "config.json")
        self.split = read_json(self.run / "split.json")
        self.task = self.config.get("task")
        if self.task not in ("face", "voice"):
            raise EdgeemoError(f"unknown task {self.task!r} (face or voice)", self.run / "config.json")
        if not (self.run / "best.keras").is_file():
            raise EdgeemoError("not a finished training run (no best.keras inside)", self.run)
        try:
            kind = VoicePreprocessing if self.task == "voice" else FacePreprocessing
            self.pre: Any = kind.from_dict(self.config["preprocessing"])
        except (KeyError, TypeError) as exc:
            raise EdgeemoError(f"bad preprocessing in config.json ({exc})", self.run / "config.json") from None
        self._model: keras.Model | None = None
        self.x: dict[str, np.ndarray] = {}  # model inputs of the val and test samples (shared by members)
        self.y: dict[str, np.ndarray] = {}
        self.speakers: dict[str, np.ndarray] = {}  # voice: the reader's speaker name of each val/test clip
        self._probs: dict[tuple[str, bool], np.ndarray] = {}

    @property
    def name(self) -> str:
        return self.run.name

    @property
    def model(self) -> keras.Model:
        if self._model is None:
            self._model = keras.models.load_model(self.run / "best.keras", compile=False)
        return self._model

    def probs(self, split: str, mirror: bool = False) -> np.ndarray:
        """Softmax outputs on the run's validation or test samples (computed once); with
        ``mirror``, the mean of the outputs on the faces and on their mirror images."""
        if (split, mirror) not in self._probs:
            x = self.x[split]
            views = [x, x[:, :, ::-1]] if mirror else [x]
            self._probs[split, mirror] = np.mean(
                [self.model.predict(v, batch_size=256, verbose=0) for v in views], axis=0
            )
        return self._probs[split, mirror]

    def read_inputs(self) -> None:
        """Val and test model inputs through THE core preprocessing (voice: the cached MFCCs)."""
        if self.task == "voice":
            cache = self.run / "features.npz"
            try:
                with np.load(cache) as d:
                    if "inputs_val" in d.files:  # model inputs as training made them (adapted per speaker)
                        self.x = {k: np.asarray(d[f"inputs_{k}"], np.float32) for k in ("val", "test")}
                    else:  # older runs: raw MFCCs, standardised with the run's statistics
                        self.x = {k: self.pre.standardize(d[f"x_{k}"]) for k in ("val", "test")}
                    self.y = {k: np.asarray(d[f"y_{k}"], np.int64) for k in ("val", "test")}
                    if "speakers_test" in d.files:  # runs since the seed ensembles: the corpus of each clip
                        self.speakers = {k: np.asarray(d[f"speakers_{k}"]) for k in ("val", "test")}
            except FileNotFoundError:
                raise EdgeemoError("no cached features (features.npz): re-run the run's training command without "
                                   "--stream (a streamed run keeps no copy of its inputs)", cache) from None
            except (OSError, KeyError, ValueError) as exc:
                raise EdgeemoError(f"unreadable feature cache ({exc})", cache) from None
            return
        faces = split_faces(self.config, self.split, self.run, ("val", "test"))
        self.x = {name: preprocess_faces(images, self.pre) for name, (images, _) in faces.items()}
        self.y = {name: labels for name, (_, labels) in faces.items()}


def split_faces(config: dict[str, Any], split: dict[str, list[str]], run: Path,
                names: tuple[str, ...] = ("train", "val", "test")) -> dict[str, tuple[list, np.ndarray]]:
    """A face run's images and labels per split, by the sources listed in its split.json."""
    data = Path(config["data"])
    test_root = Path(config["test_data"]) if config.get("test_data") else data
    pools = [load_faces(data, split="train")]
    if test_root != data or has_official_test(data):
        pools.append(load_faces(test_root, split="publictest"))
    if config.get("extra_train"):  # a second dataset's training subjects (train face --extra-train)
        pools.append(load_faces(Path(config["extra_train"]), split="train"))
    index = {src: (pool, i) for pool in pools for i, src in enumerate(pool.sources)}
    out = {}
    for name in names:
        wanted = list(split.get(name, []))
        missing = [src for src in wanted if src not in index]
        if missing or not wanted:
            raise EdgeemoError(
                f"{len(missing)} of {len(wanted)} {name} faces in split.json are not in {data} "
                f"(first: {missing[0] if missing else 'none listed'})", run / "split.json")
        images = [index[src][0].images[index[src][1]] for src in wanted]
        labels = np.asarray([index[src][0].labels[index[src][1]] for src in wanted], np.int64)
        out[name] = (images, labels)
    return out


def load_members(runs: list[Path], mirror: bool = False) -> list[Member]:
    """Read the runs and check they can form one model (same inputs, same val/test samples)."""
    if len(runs) < (1 if mirror else 2):
        raise EdgeemoError("an ensemble needs at least two run folders (or one with mirror averaging)")
    members = [Member(r) for r in runs]
    first = members[0]
    if mirror and first.task != "face":
        raise EdgeemoError("mirror averaging is for faces only", first.run / "config.json")
    for m in members[1:]:
        for key in SHARED_KEYS:
            if m.config.get(key) != first.config.get(key):
                raise EdgeemoError(f"'{key}' differs from {first.run}'s", m.run / "config.json")
        if m.pre.to_dict() != first.pre.to_dict():  # parsed: older runs lack keys that now have defaults
            raise EdgeemoError(
                f"preprocessing differs from {first.run}'s: members must share the front end and its statistics",
                m.run / "config.json",
            )
        for split in ("val", "test"):
            if list(m.split.get(split, [])) != list(first.split.get(split, [])):
                raise EdgeemoError(f"its {split} samples differ from {first.run}'s", m.run / "split.json")
    first.read_inputs()
    for m in members[1:]:
        if m.task == "voice":  # each run's own cache: check it holds the same labels
            m.read_inputs()
            if any(not np.array_equal(m.y[k], first.y[k]) for k in ("val", "test")):
                raise EdgeemoError(f"its cached labels differ from {first.run}'s", m.run / "features.npz")
        m.x, m.y = first.x, first.y
    return members


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float((probs.argmax(1) == y).mean())


def scores(
    members: list[Member], sizes: tuple[int, ...] = (1, 2, 3), max_params: int | None = None, mirror: bool = False
) -> list[dict[str, Any]]:
    """Validation and test accuracy of every combination of ``sizes`` members (mean of softmax;
    with ``mirror``, of each member on the faces and their mirror images) with at most
    ``max_params`` parameters in all, sorted by validation accuracy alone (ties: fewer members
    first); test is only reported."""
    cached = {m.name: {s: m.probs(s, mirror) for s in ("val", "test")} for m in members}
    y = members[0].y
    rows = []
    for n in sizes:
        for combo in itertools.combinations(members, n):
            params = sum(int(m.model.count_params()) for m in combo)
            if max_params is not None and params > max_params:
                continue
            mean = {s: np.mean([cached[m.name][s] for m in combo], axis=0) for s in ("val", "test")}
            rows.append({
                "members": [m.name for m in combo],
                "mirror": mirror,
                "params": params,
                "val_accuracy": accuracy(mean["val"], y["val"]),
                "test_accuracy": accuracy(mean["test"], y["test"]),
            })
    rows.sort(key=lambda r: (-r["val_accuracy"], len(r["members"])))
    return rows


def search_ensemble(runs: list[Path], out: Path, max_params: int, mirror: bool = False) -> list[Path]:
    """Score every combination of 1-3 of ``runs`` on validation (``scores``), print the best 10,
    keep all in ``out/search.json``; returns the runs of the best combination."""
    from rich.table import Table

    members = load_members(runs, mirror)
    rows = scores(members, tuple(n for n in (1, 2, 3) if n <= len(members)), max_params, mirror)
    if not rows:
        raise EdgeemoError(f"no combination of the runs has at most {max_params:,} parameters")
    table = Table(title=f"best 10 of {len(rows)} (mean of softmax; chosen by validation, test only reported; "
                  f"all in {out / 'search.json'})")
    for col in ("members", "parameters", "val accuracy", "test accuracy"):
        table.add_column(col)
    for row in rows[:10]:
        numbers = (f"{row['params']:,}", f"{row['val_accuracy']:.4f}", f"{row['test_accuracy']:.4f}")
        table.add_row(" + ".join(row["members"]), *numbers)
    console.print(table)
    best = rows[0]["members"]
    if len(best) < 2 and not mirror:
        raise EdgeemoError(f"the best validation score is a single run ({best[0]}): nothing to ensemble")
    out.mkdir(parents=True, exist_ok=True)
    (out / "search.json").write_text(json.dumps(rows, indent=2))
    by_name = {r.name: r for r in runs}
    return [by_name[name] for name in best]


def average_model(models: list[keras.Model], name: str = "ensemble") -> keras.Model:
    """One flat functional model: the members' layers on a shared input, softmax outputs averaged."""
    inputs = keras.Input(shape=models[0].input_shape[1:], name="input")
    outputs = []
    for i, member in enumerate(models, 1):
        prefix = f"m{i}_"

        def rename(layer: keras.layers.Layer, prefix: str = prefix) -> keras.layers.Layer:
            config = layer.get_config()
            config["name"] = prefix + layer.name
            return layer.__class__.from_config(config)

        clone = keras.models.clone_model(member, input_tensors=inputs, clone_function=rename)
        for layer in member.layers:
            if layer.weights:
                clone.get_layer(prefix + layer.name).set_weights(layer.get_weights())
        outputs.append(clone.output)
    averaged = keras.layers.Average(name="average")(outputs)
    return keras.Model(inputs, averaged, name=name)


def mirrored(image: keras.KerasTensor) -> keras.KerasTensor:
    """The (height, width, 1) image flipped left-right, as a fixed permutation of the width:
    the width is moved into the channels and a frozen 1x1 convolution with the exchange matrix
    as its kernel reverses it. Plain layers with static shapes only, so the .keras file loads
    anywhere and converts to full-integer TFLite (TRANSPOSE + CONV_2D, no shape-computing ops
    for the dynamic batch) and to ONNX; the 0/1 weights quantize exactly."""
    height, width, channels = image.shape[1:]
    if channels != 1:
        raise EdgeemoError(f"mirror averaging expects one-channel images, not {channels} channels")
    columns = keras.layers.Permute((1, 3, 2), name="mirror_columns")(image)  # (height, 1, width)
    flip = keras.layers.Conv2D(width, 1, use_bias=False, trainable=False, name="mirror")
    flipped = flip(columns)
    flip.set_weights([np.eye(width, dtype=np.float32)[::-1].reshape(1, 1, width, width)])
    return keras.layers.Permute((1, 3, 2), name="mirror_image")(flipped)


def mirror_averaged(model: keras.Model) -> keras.Model:
    """Mean of ``model`` on the image and on its mirror image; the two calls share weights."""
    inputs = keras.Input(shape=model.input_shape[1:], name="face")
    averaged = keras.layers.Average(name="mirror_average")([model(inputs), model(mirrored(inputs))])
    return keras.Model(inputs, averaged, name=f"{model.name}_mirror")


def build_ensemble(runs: list[Path], out: Path, mirror: bool = False) -> dict[str, Any]:
    """Write a run folder in ``out`` (best.keras, config.json, split.json, metrics.json) that
    export reads like any training run; returns the test metrics. ``mirror``: faces only,
    average every member over the face and its mirror image."""
    members = load_members(runs, mirror)
    out = Path(out)
    if out.resolve() in {m.run.resolve() for m in members}:
        raise EdgeemoError("--out must be a new folder, not one of the members", out)
    out.mkdir(parents=True, exist_ok=True)
    archs = [m.config["arch"] for m in members]
    name = "ensemble_" + "_".join(archs).replace("-", "_")
    model = average_model([m.model for m in members], name=name) if len(members) > 1 else members[0].model
    if mirror:
        model = mirror_averaged(model)
    first = members[0]
    probs = {s: model.predict(first.x[s], batch_size=256, verbose=0) for s in ("val", "test")}
    member_mean = {s: np.mean([m.probs(s, mirror) for m in members], axis=0) for s in ("val", "test")}
    gap = max(float(np.abs(probs[s] - member_mean[s]).max()) for s in ("val", "test"))
    if gap > 1e-4:
        raise EdgeemoError(f"the rebuilt ensemble differs from its members' mean by {gap:.2g}", out)
    config = dict(first.config)
    arch = "ensemble(" + "+".join(archs) + ")" if len(members) > 1 else archs[0]
    config.update({
        "arch": arch + ("+mirror" if mirror else ""),
        "ensemble": {
            "combine": "mean of softmax outputs" + (" over each face and its mirror image" if mirror else ""),
            "mirror": mirror,
            "members": [
                {
                    "run": str(m.run),
                    "arch": m.config["arch"],
                    "augmentation": m.config.get("augmentation"),
                    "params": int(m.model.count_params()),
                    "val_accuracy": accuracy(m.probs("val", mirror), m.y["val"]),
                }
                for m in members
            ],
        },
        "edgeemo_version": __version__,
    })
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "split.json").write_text(json.dumps(first.split))
    model.save(out / "best.keras")
    y = first.y
    report = classification_report(y["test"], probs["test"].argmax(1), EMOTIONS)
    report.update({
        "split": "test",
        "source": first.config["split"]["test"]["source"],
        "protocol": first.config["split"]["protocol"],
        "params": int(model.count_params()),
        "val_accuracy": accuracy(probs["val"], y["val"]),
    })
    if first.task == "voice":  # how the members' inputs were made (the same for all: checked above)
        report["adaptation"] = adaptation_note(first.pre.adaptation is not None)
    if first.speakers:  # voice: accuracy, UAR and majority class per corpus, as `train voice` reports them
        report["per_corpus"] = per_corpus(y["test"], probs["test"].argmax(1), first.speakers["test"])
        report["val_per_corpus"] = per_corpus(y["val"], probs["val"].argmax(1), first.speakers["val"])
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    console.print(
        f"ensemble of {len(members)}{' with mirror averaging' if mirror else ''} "
        f"({config['arch']}, {report['params']:,} parameters): "
        f"val accuracy {report['val_accuracy']:.4f}, test accuracy {report['accuracy']:.4f}, "
        f"UAR {report['uar']:.4f} ({report['protocol']}); run folder {out}"
    )
    return report
