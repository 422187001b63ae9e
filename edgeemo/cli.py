"""The ``edgeemo`` command line. Stage modules are imported inside commands, so
``edgeemo bench`` / ``predict`` never import TensorFlow."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from edgeemo import __version__
from edgeemo.errors import EdgeemoError

err = Console(stderr=True)

app = typer.Typer(
    help="edgeemo: emotion recognition from faces and voices on the edge. "
    "Train on a workstation, export int8 TFLite/ONNX, benchmark, run on a Pi or Jetson.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# "\\[" escapes rich markup: typer renders help text as rich markup, which ate "[train]".
train_app = typer.Typer(help="Train a model (needs the \\[train] extra: TensorFlow + Keras).", no_args_is_help=True)
app.add_typer(train_app, name="train")


def clean_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn EdgeemoError into one red line and exit code 1: no traceback for user mistakes."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EdgeemoError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def version_callback(value: bool) -> None:
    if value:
        print(f"edgeemo {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """edgeemo command line."""


@train_app.command("face")
@clean_errors
def train_face_cmd(
    data: Annotated[
        Path,
        typer.Option(
            help="FER2013 root (with train/ and publictest/), a <label>/*.jpg folder such as CK+48, or fer2013.csv."
        ),
    ],
    out: Annotated[
        Path, typer.Option(help="Run folder: config, history, curves, checkpoints, metrics. Re-run to resume.")
    ] = Path("runs/face"),
    arch: Annotated[str, typer.Option(help="custom-cnn (1.2M params) or mobilenetv3-small.")] = "custom-cnn",
    dataset: Annotated[str, typer.Option(help="auto, fer2013 or ckplus.")] = "auto",
    test_data: Annotated[
        Path | None,
        typer.Option(
            help="Held-out test folder/CSV. Default: publictest/ beside train/, else a held-out part of --data."
        ),
    ] = None,
    split: Annotated[
        str, typer.Option(help="subject (no CK+ subject on both sides) or random (leaky for CK+; for comparison only).")
    ] = "subject",
    epochs: Annotated[int, typer.Option(help="Maximum epochs (EarlyStopping may stop sooner).")] = 40,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 128,
    lr: Annotated[float, typer.Option(help="Adam learning rate (the start of the schedule).")] = 1e-3,
    schedule: Annotated[
        str,
        typer.Option(
            help="plateau (halve the rate when val loss stalls), cosine (decay to 1e-5 over --epochs) or constant."
        ),
    ] = "plateau",
    label_smoothing: Annotated[float, typer.Option(help="Label smoothing of the cross-entropy.")] = 0.1,
    patience: Annotated[int, typer.Option(help="EarlyStopping patience in epochs (val accuracy).")] = 8,
    class_weight: Annotated[
        str, typer.Option(help="none, balanced, or sqrt (softened balance) class weights.")
    ] = "sqrt",
    rotation: Annotated[float, typer.Option(help="Augmentation: max rotation in degrees (0 = off).")] = 10.0,
    shift: Annotated[float, typer.Option(help="Augmentation: max shift as a fraction of the size.")] = 0.1,
    zoom: Annotated[float, typer.Option(help="Augmentation: max zoom fraction.")] = 0.1,
    flip: Annotated[bool, typer.Option(help="Augmentation: random horizontal flip.")] = True,
    brightness: Annotated[float, typer.Option(help="Augmentation: max brightness change (fraction of range).")] = 0.2,
    contrast: Annotated[float, typer.Option(help="Augmentation: max contrast change.")] = 0.2,
    noise: Annotated[float, typer.Option(help="Augmentation: Gaussian noise std in [0,1] pixel units.")] = 0.02,
    val_fraction: Annotated[float, typer.Option(help="Fraction of the training side kept for validation.")] = 0.1,
    test_fraction: Annotated[
        float, typer.Option(help="Fraction held out as test when there is no separate test set.")
    ] = 0.2,
    limit_per_class: Annotated[
        int | None, typer.Option(help="Use only the first N images per class (quick runs, tests).")
    ] = None,
    weights: Annotated[
        Path | None, typer.Option(help="Local ImageNet weights file for mobilenetv3-small (nothing is downloaded).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (splits, init, augmentation).")] = 0,
    split_seed: Annotated[
        int | None,
        typer.Option(help="Seed of the train/val cut alone (default: --seed): same validation set, other init."),
    ] = None,
    bn_momentum: Annotated[
        float, typer.Option(help="BatchNorm moving-average momentum (0.9 for small sets like CK+).")
    ] = 0.99,
    dropout: Annotated[float, typer.Option(help="Dropout before the classifier.")] = 0.5,
    block_dropout: Annotated[float, typer.Option(help="Dropout after each conv block (custom-cnn).")] = 0.2,
    init_from: Annotated[
        Path | None, typer.Option(help="Start from the weights of a trained .keras model of the same architecture.")
    ] = None,
    teacher: Annotated[
        Path | None,
        typer.Option(
            help="Distil a finished face run (e.g. an ensemble): train on its softened outputs mixed with the labels. "
            "It must share this run's validation split."
        ),
    ] = None,
    teacher_weight: Annotated[float, typer.Option(help="--teacher: weight of its outputs in the targets.")] = 0.5,
    temperature: Annotated[float, typer.Option(help="--teacher: softening temperature of its outputs.")] = 2.0,
    precision: Annotated[
        str,
        typer.Option(
            help="auto (mixed_float16 on a GPU, mixed_bfloat16 on a CPU with AMX-BF16, else float32), float32, "
            "mixed_bfloat16 or mixed_float16. Exported models are float32 either way."
        ),
    ] = "auto",
    keep_epoch_weights: Annotated[
        bool,
        typer.Option(
            help="Also keep each epoch's weights (epochs/NNN.weights.npz in the run folder) for `edgeemo train "
            "average`: weight averaging over a --schedule constant continuation."
        ),
    ] = False,
    equalize: Annotated[
        str, typer.Option(help="Illumination normalisation in THE preprocessing (training and device alike): "
                          "none, hist (histogram equalisation) or clahe.")
    ] = "none",
    camera_p: Annotated[
        float, typer.Option(help="Camera augmentation: probability of each of exposure, blur, small face, sensor "
                            "noise and JPEG on the raw crop, before the preprocessing (0 = off).")
    ] = 0.0,
) -> None:
    """Train a face emotion model (48x48 gray) and report held-out test metrics."""
    from edgeemo.face import EQUALIZE
    from edgeemo.train.augment import CameraAugmentation, FaceAugmentation

    if equalize not in EQUALIZE:
        raise EdgeemoError(f"unknown --equalize {equalize!r} (expected {', '.join(EQUALIZE)})")
    if not 0.0 <= camera_p <= 1.0:
        raise EdgeemoError(f"--camera-p must be in [0, 1], got {camera_p}")
    from edgeemo.train.face import train_face
    from edgeemo.train.run import TrainSettings

    train_face(
        data,
        out,
        arch=arch,
        dataset=dataset,
        test_data=test_data,
        split=split,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        class_weight=class_weight,
        augmentation=FaceAugmentation(rotation, shift, zoom, flip, brightness, contrast, noise),
        settings=TrainSettings(
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=lr,
            schedule=schedule,
            label_smoothing=label_smoothing,
            patience=patience,
            seed=seed,
            precision=precision,
            keep_epoch_weights=keep_epoch_weights,
        ),
        limit_per_class=limit_per_class,
        weights=None if weights is None else str(weights),
        bn_momentum=bn_momentum,
        dropout=dropout,
        block_dropout=block_dropout,
        init_from=init_from,
        split_seed=split_seed,
        teacher=teacher,
        teacher_weight=teacher_weight,
        temperature=temperature,
        equalize=equalize,
        camera=CameraAugmentation(p=camera_p) if camera_p > 0 else None,
    )


@train_app.command("voice")
@clean_errors
def train_voice_cmd(
    data: Annotated[
        str,
        typer.Option(
            help="Corpus folder(s), comma-separated (RAVDESS, TESS, CREMA-D, SAVEE; recognised by file names)."
        ),
    ],
    out: Annotated[
        Path, typer.Option(help="Run folder: config, features, history, curves, checkpoints. Re-run to resume.")
    ] = Path("runs/voice"),
    arch: Annotated[str, typer.Option(help="conv1d, lstm or crnn (Conv1D front + LSTM).")] = "crnn",
    split: Annotated[
        str, typer.Option(help="speaker (no speaker on two sides) or random (speakers leak; seed comparison only).")
    ] = "speaker",
    test_speakers: Annotated[
        str | None,
        typer.Option(help="Speakers held out as test, comma-separated (e.g. 17,18,19,20 or 1009,1010). "
                     "Default: whole speakers at random up to --test-fraction."),
    ] = None,
    val_speakers: Annotated[
        str | None,
        typer.Option(help="Speakers held out for validation (checkpoints, early stopping), comma-separated. "
                     "Default: whole speakers at random up to --val-fraction."),
    ] = None,
    test_fraction: Annotated[float, typer.Option(help="Test fraction without --test-speakers.")] = 0.2,
    val_fraction: Annotated[float, typer.Option(help="Validation fraction of the training side.")] = 0.15,
    calm: Annotated[str, typer.Option(help="RAVDESS calm: neutral (merge) or exclude.")] = "neutral",
    window: Annotated[float, typer.Option(help="Analysis window in seconds (pad/crop after VAD trim).")] = 3.0,
    n_mfcc: Annotated[int, typer.Option(help="MFCC coefficients per frame.")] = 40,
    deltas: Annotated[bool, typer.Option(help="Append delta and delta-delta coefficients.")] = False,
    cmn: Annotated[
        bool, typer.Option(help="Cepstral mean normalisation per clip (removes microphone/speaker offsets).")
    ] = False,
    epochs: Annotated[int, typer.Option(help="Maximum epochs (EarlyStopping may stop sooner).")] = 60,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 32,
    lr: Annotated[float, typer.Option(help="Adam learning rate (the start of the schedule).")] = 1e-3,
    schedule: Annotated[str, typer.Option(help="plateau, cosine or constant learning-rate schedule.")] = "plateau",
    patience: Annotated[int, typer.Option(help="EarlyStopping patience in epochs (val accuracy).")] = 15,
    label_smoothing: Annotated[float, typer.Option(help="Label smoothing of the cross-entropy.")] = 0.1,
    class_weight: Annotated[str, typer.Option(help="none, balanced or sqrt class weights.")] = "sqrt",
    dropout: Annotated[float, typer.Option(help="Dropout in the classifier head.")] = 0.4,
    aug_copies: Annotated[int, typer.Option(help="Augmented copies per training clip (0 = no augmentation).")] = 4,
    augment: Annotated[
        str, typer.Option(help="What the copies simulate: channel (room, noise, microphone, telephone, gain, "
                          "talker speed; one channel per speaker and copy), clip (pitch, stretch, shift, white "
                          "noise per clip), channel+clip, or none.")
    ] = "channel",
    adapt: Annotated[
        bool, typer.Option(help="Standardise each clip by the running statistics of its speaker (no labels), as "
                           "the device does online; bench applies it per speaker. --no-adapt: training statistics.")
    ] = True,
    prior_clips: Annotated[
        float, typer.Option(help="Adaptation: clips' worth of training statistics a new speaker starts from.")
    ] = 5.0,
    balance: Annotated[
        str, typer.Option(help="corpus-class: every (corpus, class) pair weighs the same (sample weights); "
                          "none: --class-weight only.")
    ] = "corpus-class",
    test_data: Annotated[
        str | None, typer.Option(help="Corpora tested whole (leave-one-corpus-out), comma-separated; --data is "
                                 "then cut into train and validation only.")
    ] = None,
    exclude_speakers: Annotated[
        str | None, typer.Option(help="Speakers left out of training, validation and test (e.g. another "
                                 "protocol's held-out speakers), comma-separated.")
    ] = None,
    feature_cache: Annotated[
        Path | None, typer.Option(help="Shared per-speaker feature folder (float16), reused by every run with the "
                                  "same front end, augmentation and seed. Default: voice-features beside --out.")
    ] = None,
    noise_snr: Annotated[
        str, typer.Option(help="Augmentation: white-noise SNR range in dB, MIN,MAX.")
    ] = "15,30",
    shift: Annotated[float, typer.Option(help="Augmentation: max time shift in seconds.")] = 0.25,
    pitch: Annotated[float, typer.Option(help="Augmentation: max pitch shift in semitones (0 = off).")] = 4.0,
    stretch: Annotated[float, typer.Option(help="Augmentation: max time-stretch (0.15 = rate 0.85-1.15).")] = 0.15,
    time_masks: Annotated[
        int, typer.Option(help="Feature masking (SpecAugment): masked spans of up to 20 frames per clip (0 = off).")
    ] = 0,
    coeff_masks: Annotated[
        int, typer.Option(help="Feature masking: masked spans of up to 4 MFCC coefficients per clip (0 = off).")
    ] = 0,
    limit_per_class: Annotated[
        int | None,
        typer.Option(help="Use only N clips per class, drawn at random (seeded) across speakers (quick runs, tests)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (splits, init, augmentation).")] = 0,
    precision: Annotated[
        str,
        typer.Option(
            help="auto (mixed_float16 on a GPU, else float32: bfloat16 gave these models no speed-up), float32, "
            "mixed_bfloat16 or mixed_float16. Exported models are float32 either way."
        ),
    ] = "auto",
) -> None:
    """Train a voice emotion model on MFCCs and report speaker-independent test metrics."""
    from edgeemo.audio import AudioFeatures
    from edgeemo.train.run import TrainSettings
    from edgeemo.train.voice import train_voice
    from edgeemo.train.voice_augment import ChannelAugmentation, FeatureMasking, VoiceAugmentation
    from edgeemo.voice import SpeakerAdaptation

    if augment not in ("channel", "clip", "channel+clip", "none"):
        raise EdgeemoError(f"unknown --augment {augment!r} (expected channel, clip, channel+clip or none)")
    try:
        snr_lo, snr_hi = (float(v) for v in noise_snr.split(","))
    except ValueError:
        raise EdgeemoError(f"--noise-snr must be MIN,MAX in dB, got {noise_snr!r}") from None
    paths = [Path(p.strip()) for p in data.split(",") if p.strip()]
    if not paths:
        raise EdgeemoError("--data names no folder")
    speakers = [s.strip() for s in test_speakers.split(",") if s.strip()] if test_speakers else None
    train_voice(
        paths,
        out,
        arch=arch,
        split=split,
        test_speakers=speakers,
        val_speakers=[s.strip() for s in val_speakers.split(",") if s.strip()] if val_speakers else None,
        masking=FeatureMasking(time_masks, 20, coeff_masks, 4),
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        calm=calm,
        features=AudioFeatures(window_s=window, n_mfcc=n_mfcc, n_mels=max(40, n_mfcc), deltas=deltas, cmn=cmn),
        augmentation=VoiceAugmentation(aug_copies, (snr_lo, snr_hi), shift, pitch, stretch)
        if "clip" in augment else None,
        channel=ChannelAugmentation(copies=aug_copies) if "channel" in augment else None,
        adaptation=SpeakerAdaptation(prior_clips=prior_clips) if adapt else None,
        balance=balance,
        test_data=[Path(p.strip()) for p in test_data.split(",") if p.strip()] if test_data else None,
        feature_cache=feature_cache,
        exclude_speakers=[s.strip() for s in exclude_speakers.split(",") if s.strip()] if exclude_speakers else None,
        settings=TrainSettings(
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=lr,
            schedule=schedule,
            label_smoothing=label_smoothing,
            patience=patience,
            lr_patience=4,
            seed=seed,
            precision=precision,
        ),
        class_weight=class_weight,
        dropout=dropout,
        limit_per_class=limit_per_class,
    )


@train_app.command("ensemble")
@clean_errors
def train_ensemble_cmd(
    runs: Annotated[
        list[Path], typer.Argument(help="Finished face or voice run folders with the same preprocessing and split.")
    ],
    out: Annotated[Path, typer.Option(help="New run folder for the ensemble (export it like any run).")] = Path(
        "runs/ensemble"
    ),
    search: Annotated[
        bool,
        typer.Option(help="Score every combination of 1-3 of RUNS on their validation samples and build the best one."),
    ] = False,
    max_params: Annotated[
        int, typer.Option(help="--search: leave out combinations with more parameters than this in all.")
    ] = 500_000,
    mirror: Annotated[
        bool,
        typer.Option(
            help="Faces: also average each model over the mirror image (same weights and size, twice the compute)."
        ),
    ] = False,
) -> None:
    """Average the softmax outputs of runs into one model (one int8 file after export).

    With --mirror a single face run is enough: the model is then averaged over the face and
    its left-right mirror image."""
    import json

    from rich.table import Table

    from edgeemo.train.ensemble import build_ensemble, load_members, scores
    from edgeemo.train.run import console

    chosen = list(runs)
    if search:
        members = load_members(chosen, mirror)
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
        by_name = {r.name: r for r in chosen}
        chosen = [by_name[name] for name in best]
        out.mkdir(parents=True, exist_ok=True)
        (out / "search.json").write_text(json.dumps(rows, indent=2))
    build_ensemble(chosen, out, mirror)


@train_app.command("recalibrate")
@clean_errors
def train_recalibrate_cmd(
    run: Annotated[Path, typer.Argument(help="Finished face run folder (best.keras, config.json, split.json).")],
    out: Annotated[Path, typer.Option(help="New run folder for the recalibrated model (export it like any run).")],
    faces: Annotated[
        int, typer.Option(help="Training faces (a seeded sample of the run's own) to measure the statistics on.")
    ] = 8192,
    seed: Annotated[int, typer.Option(help="Seed of that sample.")] = 0,
    keep_worse: Annotated[
        bool, typer.Option(help="Write the model even if its validation accuracy dropped.")
    ] = False,
) -> None:
    """Re-estimate a face model's BatchNorm statistics on un-augmented training faces.

    Training leaves BatchNorm averages of augmented faces seen with dropout on; inference
    sees neither. Same weights, size and speed; validation decides, test is only reported."""
    from edgeemo.train.recalibrate import recalibrate_run

    recalibrate_run(run, out, faces=faces, seed=seed, keep_worse=keep_worse)


@train_app.command("average")
@clean_errors
def train_average_cmd(
    run: Annotated[Path, typer.Argument(help="Finished run folder whose architecture, config and split to use.")],
    weights: Annotated[
        list[Path], typer.Argument(help="Weights to average: epochs/NNN.weights.npz of a run, or .keras models.")
    ],
    out: Annotated[Path, typer.Option(help="New run folder for the averaged model (then `train recalibrate` it).")],
) -> None:
    """Average the weights of several epochs of one run into one model (stochastic weight averaging).

    Same size and speed as one model. Its BatchNorm statistics are stale: recalibrate it next,
    which also checks it on validation."""
    from edgeemo.train.average import average_run

    average_run(run, weights, out)


@app.command("demo")
@clean_errors
def demo_cmd(
    image: Annotated[
        Path | None, typer.Option(help="A photo with a face. Default: the Grace Hopper portrait that matplotlib ships.")
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "-m", help="Shipped model name or model file; repeat for several. Default: face and face-float."
        ),
    ] = None,
    threads: Annotated[int | None, typer.Option(help="Interpreter threads (default: the runtime's choice).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run the shipped face models on a photo: no camera, microphone or dataset needed."""
    import json

    from rich.table import Table

    from edgeemo.device.demo import run_demo

    result = run_demo(image, tuple(model or ("face", "face-float")), threads)
    if as_json:
        print(json.dumps(result, indent=2))
        return
    table = Table(title=f"{result['image']}  (face at {result['face_box']}, {result['faces_found']} found)")
    for col in ("model", "backend", "quant", "label", "top-3", "p50 ms"):
        table.add_column(col)
    for r in result["results"]:
        top = sorted(r["probs"].items(), key=lambda kv: -kv[1])[:3]
        table.add_row(
            r["model"],
            r["backend"],
            str(r["quantization"]),
            r["label"],
            ", ".join(f"{k} {v:.2f}" for k, v in top),
            f"{r['latency_ms_p50']:.2f}",
        )
    Console().print(table)


@app.command("bench")
@clean_errors
def bench_cmd(
    models: Annotated[
        list[str],
        typer.Argument(
            help="Model files (.tflite, .onnx, .keras) or shipped names (face, face-float, face-onnx, "
            "voice, voice-float, voice-onnx). Each is checked against its manifest.",
            show_default=False,
        ),
    ],
    data: Annotated[
        str,
        typer.Option(
            help="Face models: a FER2013 root (split picked by --split), a <label>/*.jpg folder such as CK+48, "
            "or fer2013.csv. Voice models: corpus folder(s), comma-separated (RAVDESS, TESS, CREMA-D, SAVEE).",
            show_default=False,
        ),
    ],
    speakers: Annotated[
        str | None,
        typer.Option(help="Voice: only these speakers, comma-separated (e.g. 17,18,19,20: RAVDESS held-out actors)."),
    ] = None,
    dataset: Annotated[str, typer.Option(help="auto, fer2013 or ckplus (label names).")] = "auto",
    split: Annotated[
        str,
        typer.Option(
            help="Split folder inside a FER2013 root, or the Usage of fer2013.csv (train, publictest, privatetest)."
        ),
    ] = "publictest",
    json_path: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Write the full report (machine, data, per-model metrics, latency, memory) to this JSON file.",
        ),
    ] = None,
    plot_dir: Annotated[
        Path | None,
        typer.Option(help="Folder for confusion-<model>.png. Default: the folder of --json, else the current folder."),
    ] = None,
    plots: Annotated[bool, typer.Option(help="Write confusion PNGs (needs matplotlib).")] = True,
    threads: Annotated[
        int | None,
        typer.Option(min=1, help="Interpreter threads per model. Default: the available cores."),
    ] = None,
    runs: Annotated[int, typer.Option(min=1, help="Timed batch-1 predictions per model (latency p50/p90/p99).")] = 200,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed batch-1 predictions first.")] = 20,
    batch_size: Annotated[
        int,
        typer.Option(min=1, help="Batch of the accuracy pass (fixed-batch models use their own)."),
    ] = 64,
    limit_per_class: Annotated[
        int | None, typer.Option(min=1, help="Use the first N faces of each class (quick runs).")
    ] = None,
    backend: Annotated[
        str,
        typer.Option(help="auto (by file type), litert or tflite-runtime (.tflite), onnxruntime (.onnx)."),
    ] = "auto",
    adapt: Annotated[
        bool,
        typer.Option(help="Voice models that adapt to their speaker (manifest 'adaptation'): hear each speaker's "
                     "clips in a seeded random order with running statistics, as the device does. --no-adapt: "
                     "every clip alone."),
    ] = True,
    seed: Annotated[int, typer.Option(help="Voice adaptation: the seed of the order clips are heard in.")] = 0,
) -> None:
    """Compare models on labelled faces or voice clips: accuracy, macro-F1, UAR, per-class P/R/F1,
    latency, size, memory.

    Every model gets the preprocessing from its own manifest. Prints the models side by
    side, writes a confusion-matrix PNG per model and, with --json, the whole report.
    Only LiteRT / onnxruntime are loaded, unless a .keras model is given.

    Example: edgeemo bench face-float face face-onnx --data ../shared/data/fer2013
    --json bench/fer2013.json

    Voice: edgeemo bench voice voice-float --data ../shared/data/ravdess --speakers 17,18,19,20
    """
    from edgeemo.bench import run_bench
    from edgeemo.report import render_table, write_json, write_plots

    report = run_bench(
        models,
        data,
        dataset=dataset,
        split=split,
        runs=runs,
        warmup=warmup,
        threads=threads,
        limit_per_class=limit_per_class,
        backend=backend,
        batch_size=batch_size,
        progress=lambda msg: err.print(msg, style="dim", highlight=False),
        speakers=[s.strip() for s in speakers.split(",") if s.strip()] if speakers else None,
        adapt=adapt,
        seed=seed,
    )
    render_table(report, Console())
    if json_path is not None:
        err.print(f"wrote {write_json(report, json_path)}", highlight=False)
    if plots:
        out_dir = plot_dir or (json_path.parent if json_path is not None else Path.cwd())
        warn = lambda m: err.print(f"[yellow]warning:[/] {m}")  # noqa: E731
        for path in write_plots(report, out_dir, warn=warn):
            err.print(f"wrote {path}", highlight=False)


@app.command("predict")
@clean_errors
def predict_cmd(
    model: Annotated[
        str,
        typer.Argument(
            help="Model file (.tflite, .onnx, .keras) or shipped name (face, face-float, face-onnx, voice, ...).",
            show_default=False,
        ),
    ],
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Face crops (any size, gray or colour; jpg, png...) for a face model; audio clips (WAV, FLAC, "
            "any rate) for a voice model.",
            show_default=False,
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per image (JSON lines).")] = False,
    top: Annotated[int, typer.Option(min=1, help="How many likeliest emotions to show.")] = 3,
    backend: Annotated[
        str,
        typer.Option(help="auto (by file type), litert or tflite-runtime (.tflite), onnxruntime (.onnx)."),
    ] = "auto",
    threads: Annotated[
        int | None, typer.Option(min=1, help="Interpreter threads (default: the runtime's choice).")
    ] = None,
) -> None:
    """Classify the emotion of face crops or voice clips with a model, preprocessed as its manifest says.

    Every input is read first, so one unreadable file stops the command before any
    output. Images should be cropped faces (`edgeemo demo` finds a face in a photo);
    a clip without speech is reported as "no speech", not guessed.

    Example: edgeemo predict face happy.jpg sad.png --json; edgeemo predict voice clip.wav
    """
    import json

    from rich.table import Table

    from edgeemo.predict import open_emotion_model, predict_clips, predict_images
    from edgeemo.report import print_wide

    opened = open_emotion_model(model, backend=backend, threads=threads)
    for note in opened.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)
    key = "image" if opened.task == "face" else "clip"
    if opened.task == "face":
        results = predict_images(opened, inputs, top=top)
    else:
        results = predict_clips(opened, inputs, top=top)
    if as_json:
        for r in results:
            print(json.dumps({k: r[k] for k in (key, "label", "score", "probs")}))
        return
    runner = opened.runner
    table = Table(title=f"{opened.spec} ({opened.quantization}, {runner.backend})")
    for col in (key, "emotion", "p", f"top {top}"):
        table.add_column(col)
    for r in results:
        top_text = ", ".join(f"{k} {v:.2f}" for k, v in r["top"])
        table.add_row(r[key], r["label"], f"{r['score']:.2f}", top_text)
    print_wide(Console(), table)


@app.command("export")
@clean_errors
def export_cmd(
    source: Annotated[
        Path,
        typer.Argument(
            help="A training run folder (uses its best.keras, config.json, split.json) or a .keras file.",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="Folder for the model files, each with its manifest <file>.json.",
            show_default=False,
        ),
    ],
    quantize: Annotated[
        str,
        typer.Option(
            help="int8 (full integer, int8 input/output in TFLite), float16 (TFLite only) or "
            "none. The float parents <name>-float.* are always written too."
        ),
    ] = "int8",
    formats: Annotated[str, typer.Option("--format", help="Comma-separated formats: tflite, onnx.")] = "tflite,onnx",
    name: Annotated[
        str | None,
        typer.Option(help="File name prefix (<name>-int8.tflite...). Default: the run folder's name."),
    ] = None,
    calib_size: Annotated[
        int,
        typer.Option(min=1, help="Calibration faces: a class-balanced sample of the train split."),
    ] = 500,
    verify_size: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Verify on about N class-stratified test faces. Default: the whole test split.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Keep a quantized model that loses more than --max-drop accuracy points "
            "against its float parent (recorded as forced in its manifest).",
        ),
    ] = False,
    max_drop: Annotated[
        float | None,
        typer.Option(min=0.0, help="Accuracy gate: most points a quantized model may lose. Default: 1.0 for face "
                     "models, 1.5 for voice models (their held-out sets are ~10x smaller)."),
    ] = None,
    onnx_activations: Annotated[
        str,
        typer.Option(
            help="ONNX activation type: uint8 (U8S8), int8 (S8S8), or auto: build both, "
            "measure accuracy and batch-1 latency on this CPU, keep the faster one that "
            "passes the accuracy gate."
        ),
    ] = "auto",
    data: Annotated[
        Path | None,
        typer.Option(
            help="Face data. Needed for a bare .keras file (calibration from its train/, "
            "verification from publictest/ or --verify-data); for a run it replaces the "
            "data folder recorded in config.json (e.g. when moved)."
        ),
    ] = None,
    dataset: Annotated[str, typer.Option(help="auto, fer2013 or ckplus (with --data).")] = "auto",
    verify_data: Annotated[
        Path | None,
        typer.Option(help="Held-out faces for a bare .keras file (or a run's separate test set)."),
    ] = None,
    limit_per_class: Annotated[
        int | None,
        typer.Option(min=1, help="Read only the first N faces per class of --data (quick runs)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON instead of a table.")] = False,
) -> None:
    """Export a trained model to float + quantized TFLite/ONNX, each verified and with a manifest.

    Calibrates on the run's train split and checks every quantized model against its
    float parent on the run's held-out test split through the device runtimes. Fails
    (and removes the file) when a quantized model loses more than --max-drop accuracy
    points, unless --force. Needs TensorFlow, tf2onnx and onnxruntime (the export extra).

    Example: edgeemo export runs/fer-custom-cnn --quantize int8 --format tflite,onnx
    --out models/face
    """
    import json

    from edgeemo.export.pipeline import export_run, summary_table

    summary = export_run(
        source,
        out,
        quantize=quantize,
        formats=formats.split(","),
        name=name,
        calib_size=calib_size,
        verify_size=verify_size,
        force=force,
        onnx_activations=onnx_activations,
        data=data,
        dataset=dataset,
        verify_data=verify_data,
        limit_per_class=limit_per_class,
        max_drop=max_drop,
        console=err,
    )
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        Console().print(summary_table(summary))



@app.command("run")
@clean_errors
def run_cmd(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="device.toml (every key documented in device/device.toml).")
    ] = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Replay a built-in 8 s clip (matplotlib's portrait + a synthetic voice) instead of the "
            "camera and microphone, print the results, exit. Needs no camera, microphone or dataset.",
        ),
    ] = False,
    camera: Annotated[
        str | None,
        typer.Option(help="Camera: index, /dev/videoN, picamera2, a GStreamer pipeline, a video file or image folder."),
    ] = None,
    microphone: Annotated[
        str | None, typer.Option(help="Microphone: pyaudio device index or name, default, or a WAV/FLAC file.")
    ] = None,
    no_camera: Annotated[bool, typer.Option("--no-camera", help="Voice only.")] = False,
    no_microphone: Annotated[bool, typer.Option("--no-microphone", help="Face only.")] = False,
    loop: Annotated[bool | None, typer.Option("--loop/--no-loop", help="Replays start again at the end.")] = None,
    face_model: Annotated[str | None, typer.Option(help="Face model: shipped name or file.")] = None,
    voice_model: Annotated[str | None, typer.Option(help="Voice model: shipped name or file.")] = None,
    backend: Annotated[str | None, typer.Option(help="auto, litert, tflite-runtime or onnxruntime.")] = None,
    threads: Annotated[int | None, typer.Option(min=0, help="Threads per model (0: runtime's choice).")] = None,
    stdout: Annotated[str | None, typer.Option(help="Results on stdout: json, text or off.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --stdout json.")] = False,
    output: Annotated[Path | None, typer.Option(help="Also write JSON lines to this file (rotated).")] = None,
    http: Annotated[bool | None, typer.Option("--http/--no-http", help="Serve /latest, /events, /health.")] = None,
    host: Annotated[str | None, typer.Option(help="HTTP address (default 127.0.0.1: this machine only).")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="HTTP port (default 8765).")] = None,
    mqtt: Annotated[str | None, typer.Option(help="Publish to this MQTT broker (host or host:port).")] = None,
    duration: Annotated[float | None, typer.Option(min=0.0, help="Stop after this many seconds.")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error (stderr).")] = None,
) -> None:
    """Run the device daemon: camera + microphone -> face and voice models -> fused emotions.

    Results (labels, probabilities, timestamps; never frames or audio) go to stdout as JSON
    lines, to a rotating file, to http://127.0.0.1:8765/latest, /events (SSE) and /health, and
    optionally to MQTT. SIGTERM or Ctrl-C stops it cleanly. A camera or microphone that fails
    while running is retried with backoff while the other modality keeps working.

    Example: edgeemo run --demo    |    edgeemo run --config device.toml --port 9000
    """
    from edgeemo.device.config import load_config, override
    from edgeemo.device.daemon import demo_config, run_daemon, setup_logging

    cfg = load_config(config)
    if demo:
        cfg = demo_config(cfg)
    mqtt_host, _, mqtt_port = (mqtt or "").partition(":")
    if mqtt_port and not mqtt_port.isdigit():
        raise EdgeemoError(f"--mqtt must be host or host:port, got {mqtt!r}")
    cfg = override(
        cfg,
        camera__source=camera, camera__enabled=False if no_camera else None, camera__loop=loop,
        microphone__source=microphone, microphone__enabled=False if no_microphone else None, microphone__loop=loop,
        models__face=face_model, models__voice=voice_model, models__backend=backend, models__threads=threads,
        output__stdout="json" if as_json else stdout, output__file=None if output is None else str(output),
        http__enabled=http, http__host=host, http__port=port,
        mqtt__enabled=True if mqtt else None, mqtt__host=mqtt_host or None,
        mqtt__port=int(mqtt_port) if mqtt_port else None,
        log__level=log_level,
    )
    setup_logging(cfg.log.level if log_level or not demo else "warning")
    run_daemon(cfg, demo=demo, duration_s=duration)


@app.command("doctor")
@clean_errors
def doctor_cmd(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="device.toml to check.")] = None,
    camera: Annotated[str | None, typer.Option(help="Camera to try instead of the config's.")] = None,
    microphone: Annotated[str | None, typer.Option(help="Microphone to try instead of the config's.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check this device: runtimes, camera, microphone, models (manifest, sha256) and output packages.

    Exits 1 when something the config needs is broken (a model, an enabled camera or microphone).
    """
    import json

    from rich.table import Table

    from edgeemo.device.config import load_config, override
    from edgeemo.device.doctor import run_checks

    cfg = override(load_config(config), camera__source=camera, microphone__source=microphone)
    checks = run_checks(cfg)
    if as_json:
        print(json.dumps(checks, indent=2))
    else:
        table = Table(title="edgeemo doctor")
        for col in ("check", "status", "detail"):
            table.add_column(col)
        colors = {"ok": "green", "missing": "yellow", "off": "dim", "fail": "red"}
        for c in checks:
            status = c["status"]
            table.add_row(c["check"], f"[{colors.get(status, 'white')}]{status}[/]", escape(c["detail"]))
        Console().print(table)
    if any(c["status"] == "fail" for c in checks):
        raise typer.Exit(1)

def run() -> None:  # pragma: no cover - console entry for `python -m edgeemo`
    sys.exit(app())
