"""`edgeemo train ...`: face, voice, ensemble, recalibrate, average.

Every option is checked (``edgeemo.train.options``, TensorFlow-free) before the run folder is
created and before TensorFlow is imported; the options face and voice share are declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeemo.cli.app import app, clean_errors
from edgeemo.cli.train_options import (
    Adapt,
    Adversary,
    AdversaryOn,
    Augment,
    Balance,
    BatchSize,
    CameraP,
    ClassWeight,
    Cmn,
    CoeffMasks,
    DataSeed,
    Deltas,
    DetectorCropP,
    Distribute,
    Dropout,
    Epochs,
    ExtraRepeat,
    FeatureCache,
    HeadUnits,
    LabelSmoothing,
    LearningRate,
    LimitPerClass,
    Patience,
    Precision,
    Prosody,
    Replicas,
    Schedule,
    Seed,
    Shift,
    SpeakerBag,
    SplitSeed,
    Stream,
    StreamCache,
    Summary,
    TalkerPitch,
    TestFraction,
    TimeMasks,
    ValFraction,
    VoiceTestData,
    WorkerTimeout,
    check_distribution,
    check_stream,
    speaker_list,
    train_settings,
)
from edgeemo.errors import EdgeemoError
from edgeemo.train import options

# "\\[" escapes rich markup: typer renders help text as rich markup, which ate "[train]".
train_app = typer.Typer(help="Train a model (needs the \\[train] extra: TensorFlow + Keras).", no_args_is_help=True)
app.add_typer(train_app, name="train")

@train_app.command("face")
@clean_errors
def train_face_cmd(
    data: Annotated[
        Path,
        typer.Option(
            help="FER2013 root (with train/ and publictest/), a <label>/*.jpg folder such as CK+48, a labels.csv "
            "(path,label[,subject]) or its folder, FER+ (fer2013new.csv beside FER2013Train/ ...), or fer2013.csv."
        ),
    ],
    out: Annotated[
        Path, typer.Option(help="Run folder: config, history, curves, checkpoints, metrics. Re-run to resume.")
    ] = Path("runs/face"),
    arch: Annotated[str, typer.Option(help="custom-cnn (1.2M params) or mobilenetv3-small.")] = "custom-cnn",
    dataset: Annotated[str, typer.Option(help="auto (by the files), fer2013, ckplus, ferplus or labels-csv.")] = "auto",
    test_data: Annotated[
        Path | None,
        typer.Option(
            help="Held-out test folder/CSV. Default: publictest/ beside train/, else a held-out part of --data."
        ),
    ] = None,
    split: Annotated[
        str, typer.Option(help="subject (no CK+ subject on both sides) or random (leaky for CK+; for comparison only).")
    ] = "subject",
    epochs: Epochs = 40,
    batch_size: BatchSize = 128,
    lr: LearningRate = 1e-3,
    schedule: Schedule = "plateau",
    label_smoothing: LabelSmoothing = 0.1,
    patience: Patience = 8,
    class_weight: ClassWeight = "sqrt",
    rotation: Annotated[float, typer.Option(help="Augmentation: max rotation in degrees (0 = off).")] = 10.0,
    shift: Shift = 0.1,
    zoom: Annotated[float, typer.Option(help="Augmentation: max zoom fraction.")] = 0.1,
    flip: Annotated[bool, typer.Option(help="Augmentation: random horizontal flip.")] = True,
    brightness: Annotated[float, typer.Option(help="Augmentation: max brightness change (fraction of range).")] = 0.2,
    contrast: Annotated[float, typer.Option(help="Augmentation: max contrast change.")] = 0.2,
    noise: Annotated[float, typer.Option(help="Augmentation: Gaussian noise std in [0,1] pixel units.")] = 0.02,
    val_fraction: ValFraction = 0.1,
    test_fraction: TestFraction = 0.2,
    limit_per_class: LimitPerClass = None,
    weights: Annotated[
        Path | None, typer.Option(help="Local ImageNet weights file for mobilenetv3-small (nothing is downloaded).")
    ] = None,
    seed: Seed = 0,
    split_seed: SplitSeed = None,
    bn_momentum: Annotated[
        float, typer.Option(help="BatchNorm moving-average momentum (0.9 for small sets like CK+).")
    ] = 0.99,
    dropout: Dropout = 0.5,
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
    precision: Precision = "auto",
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
    camera_p: CameraP = 0.0,
    detector_crop_p: DetectorCropP = 0.0,
    extra_train: Annotated[Path | None, typer.Option(
        help="A dataset with subjects (e.g. CK+48) whose training subjects join; held-out ones listed in config.json.")
    ] = None,
    extra_repeat: ExtraRepeat = 1,
    distribute: Distribute = "none",
    replicas: Replicas = None,
    worker_timeout: WorkerTimeout = 600.0,
    stream: Stream = False,
    stream_cache: StreamCache = None,
) -> None:
    """Train a face emotion model (48x48 gray) and report held-out test metrics."""
    from edgeemo.face import EQUALIZE

    options.check_common(arch, options.FACE_ARCHS, schedule, precision, class_weight, split, options.FACE_SPLITS)
    options.check_choice("--dataset", dataset, options.FACE_DATASETS)
    options.check_choice("--equalize", equalize, EQUALIZE)
    options.check_paths("--data", [data])
    options.check_paths("--test-data", [test_data] if test_data else [])
    options.check_paths("--init-from", [init_from] if init_from else [])
    options.check_paths("--weights", [weights] if weights else [])
    options.check_paths("--teacher", [teacher] if teacher else [])
    options.check_paths("--extra-train", [extra_train] if extra_train else [])
    check_distribution(distribute, replicas, batch_size)
    check_stream(stream, stream_cache, teacher, camera_p)  # --detector-crop-p with --stream: train_face says

    from edgeemo.train.face import train_face
    from edgeemo.train.face_augment import CameraAugmentation, FaceAugmentation

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
        settings=train_settings(epochs, batch_size, lr, schedule, label_smoothing, patience, seed, precision,
                                keep_epoch_weights=keep_epoch_weights, distribute=distribute, replicas=replicas,
                                worker_timeout=worker_timeout, stream=stream,
                                stream_cache=None if stream_cache is None else str(stream_cache)),
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
        camera=CameraAugmentation(p=camera_p, detector_p=detector_crop_p) if camera_p or detector_crop_p else None,
        extra_train=extra_train,
        extra_repeat=extra_repeat,
    )


@train_app.command("voice")
@clean_errors
def train_voice_cmd(
    data: Annotated[str, typer.Option(
        help="Corpus folder(s), comma-separated (RAVDESS, TESS, CREMA-D, SAVEE; recognised by file names).")],
    out: Annotated[
        Path, typer.Option(help="Run folder: config, features, history, curves, checkpoints. Re-run to resume.")
    ] = Path("runs/voice"),
    arch: Annotated[str, typer.Option(help="conv1d, lstm, crnn (Conv1D front + LSTM), stats (pooled utterance "
                                           "statistics, dense head) or mlp (with --summary functionals).")] = "crnn",
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
    test_fraction: TestFraction = 0.2,
    val_fraction: ValFraction = 0.15,
    calm: Annotated[str, typer.Option(help="RAVDESS calm: neutral (merge) or exclude.")] = "neutral",
    window: Annotated[float, typer.Option(help="Analysis window in seconds (pad/crop after VAD trim).")] = 3.0,
    n_mfcc: Annotated[int, typer.Option(help="MFCC coefficients per frame.")] = 40,
    deltas: Deltas = False,
    cmn: Cmn = False,
    prosody: Prosody = False,
    summary: Summary = "frames",
    epochs: Epochs = 60,
    batch_size: BatchSize = 32,
    lr: LearningRate = 1e-3,
    schedule: Schedule = "plateau",
    patience: Patience = 15,
    label_smoothing: LabelSmoothing = 0.1,
    class_weight: ClassWeight = "sqrt",
    dropout: Dropout = 0.4,
    head_units: HeadUnits = options.HEAD_UNITS,
    adversary: Adversary = 0.0,
    adversary_on: AdversaryOn = "corpus",
    speaker_bag: SpeakerBag = 0.0,
    aug_copies: Annotated[int, typer.Option(help="Augmented copies per training clip (0 = no augmentation).")] = 4,
    augment: Augment = "channel",
    talker_pitch: TalkerPitch = 0.0,
    adapt: Adapt = True,
    prior_clips: Annotated[float, typer.Option(help="Adaptation: clips' worth of training statistics first.")] = 5.0,
    balance: Balance = "corpus-class",
    test_data: VoiceTestData = None,
    exclude_speakers: Annotated[str | None, typer.Option(help="Speakers left out of every split.")] = None,
    feature_cache: FeatureCache = None,
    noise_snr: Annotated[str, typer.Option(help="Augmentation: white-noise SNR range in dB, MIN,MAX.")] = "15,30",
    shift: Shift = 0.25,
    pitch: Annotated[float, typer.Option(help="Augmentation: max pitch shift in semitones (0 = off).")] = 4.0,
    stretch: Annotated[float, typer.Option(help="Augmentation: max time-stretch (0.15 = rate 0.85-1.15).")] = 0.15,
    time_masks: TimeMasks = 0,
    coeff_masks: CoeffMasks = 0,
    limit_per_class: LimitPerClass = None,
    seed: Seed = 0,
    data_seed: DataSeed = None,
    precision: Precision = "auto",
    distribute: Distribute = "none",
    replicas: Replicas = None,
    worker_timeout: WorkerTimeout = 600.0,
    stream: Stream = False,
    stream_cache: StreamCache = None,
) -> None:
    """Train a voice emotion model on MFCCs and report speaker-independent test metrics."""
    options.check_common(arch, options.VOICE_ARCHS, schedule, precision, class_weight, split, options.VOICE_SPLITS)
    check_distribution(distribute, replicas, batch_size)
    check_stream(stream, stream_cache)
    snr_lo, snr_hi = options.db_range("--noise-snr", noise_snr)
    paths = [Path(p.strip()) for p in data.split(",") if p.strip()]
    if not paths:
        raise EdgeemoError("--data names no folder")
    options.check_paths("--data", paths)
    options.check_choice("--augment", augment, ("channel", "clip", "channel+clip", "none"))
    options.check_choice("--balance", balance, options.BALANCE)
    options.check_choice("--adversary-on", adversary_on, options.ADVERSARY_ON)
    options.check_summary(arch, summary)
    test_paths = [Path(p.strip()) for p in test_data.split(",") if p.strip()] if test_data else None
    options.check_paths("--test-data", test_paths or [])

    from edgeemo.audio import AudioFeatures
    from edgeemo.train.voice import train_voice
    from edgeemo.train.voice_augment import ChannelAugmentation, FeatureMasking, VoiceAugmentation
    from edgeemo.voice import SpeakerAdaptation

    train_voice(
        paths,
        out,
        arch=arch,
        split=split,
        test_speakers=speaker_list(test_speakers),
        val_speakers=speaker_list(val_speakers),
        masking=FeatureMasking(time_masks, 20, coeff_masks, 4),
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        calm=calm,
        features=AudioFeatures(window_s=window, n_mfcc=n_mfcc, n_mels=max(40, n_mfcc), deltas=deltas, cmn=cmn,
                               prosody=prosody),
        augmentation=VoiceAugmentation(aug_copies, (snr_lo, snr_hi), shift, pitch, stretch)
        if "clip" in augment else None,
        channel=ChannelAugmentation(copies=aug_copies, pitch_semitones=talker_pitch) if "channel" in augment else None,
        adaptation=SpeakerAdaptation(prior_clips=prior_clips) if adapt else None,
        balance=balance,
        test_data=test_paths,
        exclude_speakers=speaker_list(exclude_speakers),
        feature_cache=feature_cache,
        settings=train_settings(epochs, batch_size, lr, schedule, label_smoothing, patience, seed, precision,
                                lr_patience=4, distribute=distribute, replicas=replicas,
                                worker_timeout=worker_timeout, stream=stream,
                                stream_cache=None if stream_cache is None else str(stream_cache)),
        class_weight=class_weight,
        dropout=dropout,
        limit_per_class=limit_per_class,
        summary=summary,
        data_seed=data_seed,
        head_units=head_units,
        adversary=adversary,
        adversary_on=adversary_on,
        speaker_bag=speaker_bag,
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

    With --mirror a single face run is enough: the model is then averaged over the face and its mirror image."""
    from edgeemo.train.ensemble import build_ensemble, search_ensemble

    chosen = search_ensemble(list(runs), out, max_params, mirror) if search else list(runs)
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

    Same size and speed as one model. Its BatchNorm statistics are stale: recalibrate it next (it checks validation)."""
    from edgeemo.train.average import average_run

    average_run(run, weights, out)

