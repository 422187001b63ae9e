"""The options `edgeemo train face` and `edgeemo train voice` share, declared once (defaults may differ:
they are given where used), and the checks of the distribution and streaming options (TensorFlow-free)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgeemo.errors import EdgeemoError
from edgeemo.train import options

if TYPE_CHECKING:
    from edgeemo.train.run import TrainSettings

Epochs = Annotated[int, typer.Option(min=1, help="Maximum epochs (EarlyStopping may stop sooner).")]
BatchSize = Annotated[int, typer.Option(min=1, help="Batch size (the global batch when distributed: split over "
                                        "the replicas, with the same learning rate).")]
LearningRate = Annotated[float, typer.Option("--lr", help="Adam learning rate (the start of the schedule).")]
Schedule = Annotated[
    str,
    typer.Option(help="plateau (halve the rate when val loss stalls), cosine (decay to 1e-5 over --epochs) or "
                 "constant."),
]
LabelSmoothing = Annotated[float, typer.Option(help="Label smoothing of the cross-entropy.")]
# the voice front end (edgeemo.audio.AudioFeatures)
Deltas = Annotated[bool, typer.Option(help="Append delta and delta-delta coefficients.")]
Cmn = Annotated[bool, typer.Option(help="Cepstral mean normalisation per clip (removes microphone/speaker offsets).")]
TimeMasks = Annotated[int, typer.Option(help="Feature masking (SpecAugment): masked spans of up to 20 frames per clip "
                                             "(0 = off).")]
CoeffMasks = Annotated[int, typer.Option(help="Feature masking: masked spans of up to 4 MFCC coefficients per clip "
                                              "(0 = off).")]
Prosody = Annotated[bool, typer.Option(help="Add pitch (YIN), voicing, level and spectral-balance columns to the front "
                                            "end; with --summary functionals, their 21 eGeMAPS-style statistics.")]
Patience = Annotated[int, typer.Option(help="EarlyStopping patience in epochs (val accuracy).")]
ClassWeight = Annotated[str, typer.Option(help="none, balanced, or sqrt (softened balance) class weights.")]
Dropout = Annotated[float, typer.Option(help="Dropout before the classifier.")]
Balance = Annotated[str, typer.Option(help="Sample weights: corpus-class or speaker-class (each such pair of the "
                                      "training rows weighs the same), or none.")]
Augment = Annotated[str, typer.Option(
    help="What the copies simulate: channel (room, noise, microphone, telephone, gain, talker speed and pitch; one "
    "channel per speaker and copy), clip (pitch, stretch, shift, white noise per clip), channel+clip, or none.")]
TalkerPitch = Annotated[float, typer.Option(
    help="Channel augmentation: each speaker's copy talks up to this many semitones higher or lower (formants move "
    "with it; p 0.5): a new voice saying the same words (0 = off).")]
FeatureCache = Annotated[Path | None, typer.Option(
    help="Shared per-speaker feature folder (float16), reused by every run with the same front end, augmentation "
    "and seed. Default: voice-features beside --out.")]
HeadUnits = Annotated[int, typer.Option(min=1, help="Width of the dense head of --arch mlp.")]
VoiceTestData = Annotated[str | None, typer.Option(
    "--test-data", help="Corpora tested whole (leave-one-corpus-out), comma-separated; --data is then cut into train "
    "and validation only.")]
Summary = Annotated[str, typer.Option(help="What the model sees of a clip: frames, or functionals (one vector of "
                                      "utterance statistics of the frames; with --arch mlp).")]
Adapt = Annotated[bool, typer.Option(help="Standardise each clip by the running statistics of its speaker (no labels), "
                                     "as the device does online; bench applies it per speaker. --no-adapt: training "
                                     "statistics.")]
SpeakerBag = Annotated[float, typer.Option(min=0.0, max=0.9, help=(
    "Bagging by speaker for ensemble members: this fraction of the training speakers, drawn by --seed, gets no "
    "weight in this run (same features and split as --data-seed's; 0 = every speaker)."))]
Adversary = Annotated[float, typer.Option(min=0.0, help=(
    "Weight of an adversary on the head's hidden layer (gradient reversal): the model learns emotion while "
    "unlearning what --adversary-on names (--arch mlp, not with --balance none; 0 = off)."))]
AdversaryOn = Annotated[str, typer.Option(help=(
    "What --adversary unlearns: corpus (which training corpus a clip comes from) or sentence (what a clip says "
    "within its corpus, from RAVDESS/CREMA-D/TESS file names; SAVEE clips get no target)."))]
CameraP = Annotated[float, typer.Option(min=0.0, max=1.0, help=(
    "Camera augmentation: probability of each of exposure, blur, small face, sensor noise and JPEG on the raw "
    "crop, before the preprocessing (0 = off)."))]
DetectorCropP = Annotated[float, typer.Option(min=0.0, max=1.0, help=(
    "Probability that a training face is re-framed first as the daemon's detector and crop frame it (the default "
    "detector, found on the face enlarged into a frame), so the model learns the camera path's framing too."))]
ExtraRepeat = Annotated[int, typer.Option(min=1, help="Add each --extra-train training face this many times (a small "
                                          "posed set then weighs more against FER2013).")]
ValFraction = Annotated[float, typer.Option(help="Fraction of the training side kept for validation.")]
TestFraction = Annotated[float, typer.Option(help="Fraction held out as test when no test set is named.")]
Seed = Annotated[int, typer.Option(help="Random seed (splits, init, augmentation).")]
SplitSeed = Annotated[
    int | None, typer.Option(help="Seed of the train/val cut alone (default: --seed): same validation set, other init.")
]
DataSeed = Annotated[
    int | None,
    typer.Option(help="Seed of the split and of the augmented features (default: --seed): the same data and feature "
                 "cache with another init and batch order, e.g. the members of a seed ensemble."),
]
Shift = Annotated[float, typer.Option(help="Augmentation: max shift (faces: fraction of the size; voice: seconds).")]
LimitPerClass = Annotated[
    int | None, typer.Option(min=1, help="Use only N samples per class (quick runs, tests).")
]
Precision = Annotated[
    str,
    typer.Option(
        help="auto (mixed_float16 with loss scaling on a GPU, and XLA on one GPU; on a CPU mixed_bfloat16 where it "
        "is native and helps the model, else float32), float32, mixed_bfloat16 or mixed_float16. Exported models "
        "are float32 either way."
    ),
]
Distribute = Annotated[
    str,
    typer.Option(help="none; mirrored (tf.distribute.MirroredStrategy over the local GPUs, or with no GPU over "
                 "--replicas logical CPU devices); or multi-worker (MultiWorkerMirroredStrategy over the workers "
                 "TF_CONFIG names: start the same command on each with its own task index; only the chief "
                 "writes the run folder)."),
]
Replicas = Annotated[
    int | None,
    typer.Option(min=1, help="--distribute mirrored: how many GPUs (default all), or logical CPU devices where "
                 "there is no GPU (default 2)."),
]
WorkerTimeout = Annotated[
    float,
    typer.Option(min=1, help="--distribute multi-worker: seconds to wait for the cluster to come up, and for "
                 "another worker in a collective step, before stopping with an error."),
]
Stream = Annotated[
    bool,
    typer.Option(help="Read the data as a stream instead of into memory, for datasets larger than memory (faces: "
                 "tf.data over the image files, sharded per worker; voice: features from the per-speaker cache, "
                 "speaker by speaker)."),
]

StreamCache = Annotated[
    Path | None,
    typer.Option(help="--stream: a folder for tf.data's cache of the model inputs (faces decoded and preprocessed, "
                 "voice rows standardised): the first epoch writes it, later epochs read it instead of recomputing. "
                 "Not with --camera-p."),
]


def train_settings(epochs: int, batch_size: int, lr: float, schedule: str, label_smoothing: float, patience: int,
                   seed: int, precision: str, **more: object) -> TrainSettings:
    """The ``TrainSettings`` of a face or voice run (imports the train stage: call after the checks)."""
    from edgeemo.train.run import TrainSettings

    return TrainSettings(epochs=epochs, batch_size=batch_size, learning_rate=lr, schedule=schedule,
                         label_smoothing=label_smoothing, patience=patience, seed=seed, precision=precision,
                         **more)


def check_distribution(distribute: str, replicas: int | None, batch_size: int) -> None:
    """The distribution options, before TensorFlow: a wrong TF_CONFIG or a port in use is one line
    here, not a hang later."""
    from edgeemo.train.cluster import check_port_free, read_tf_config

    options.check_choice("--distribute", distribute, options.DISTRIBUTE)
    if replicas is not None and distribute != "mirrored":
        raise EdgeemoError("--replicas is for --distribute mirrored (multi-worker: one replica per worker, or each "
                           "worker's GPUs)")
    if replicas is not None and batch_size % replicas:
        raise EdgeemoError(f"--batch-size {batch_size} does not split evenly over --replicas {replicas}")
    if distribute == "multi-worker":
        check_port_free(read_tf_config(os.environ.get("TF_CONFIG")))


def check_stream(stream: bool, stream_cache: Path | None, teacher: Path | None = None, camera_p: float = 0.0) -> None:
    """The streaming options of face training and what they cannot be combined with."""
    if stream_cache is not None and not stream:
        raise EdgeemoError("--stream-cache is the cache of --stream: add --stream")
    if stream and teacher is not None:
        raise EdgeemoError("--teacher needs every training face in memory: it cannot be combined with --stream")
    if stream_cache is not None and camera_p > 0:
        raise EdgeemoError("--stream-cache keeps preprocessed faces, --camera-p degrades raw ones every epoch: "
                           "use one of them")


def speaker_list(text: str | None) -> list[str] | None:
    """``--test-speakers 17,18`` and the like as a list (None when not given)."""
    return [s.strip() for s in text.split(",") if s.strip()] if text else None
