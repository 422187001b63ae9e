"""``edgeemo bench``: accuracy, per-class metrics, latency, size and memory of face or voice models.

Every model is opened through ``open_model`` (manifest and sha256 checked) and scored on
the same faces (or clips), preprocessed with the preprocessing from its own manifest. Only LiteRT /
tflite-runtime and onnxruntime are imported for .tflite / .onnx models; TensorFlow is
imported only when a .keras model is benchmarked. Rendering (table, plots, JSON) lives in
``edgeemo.report``.
"""

from __future__ import annotations

import gc
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from edgeemo import __version__
from edgeemo.errors import EdgeemoError
from edgeemo.face import FacePreprocessing, preprocess_face, preprocess_faces
from edgeemo.face_datasets import FaceDataset, load_faces
from edgeemo.face_index import split_folder
from edgeemo.labels import EMOTIONS
from edgeemo.manifest import sha256_of
from edgeemo.metrics import classification_report
from edgeemo.predict import EmotionModel, open_emotion_model
from edgeemo.runtime import quantize
from edgeemo.voice import VoicePreprocessing, preprocess_clip, preprocess_files
from edgeemo.voice_datasets import VoiceDataset, load_voice, select_speakers

PEAK_RSS_LABEL = {
    "model": "process peak RSS while this model ran (reset before it; includes Python and the scored inputs)",
    "process": "process peak RSS since start (not resettable per model; includes earlier ones)",
}


@dataclass
class ModelResult:
    """The measurements of one model. ``to_dict`` is its entry in the JSON report."""

    model: str
    path: str
    format: str
    backend: str
    quantization: str
    threads: int
    n: int
    accuracy: float
    macro_f1: float
    uar: float
    per_class: dict[str, dict[str, float | int]]
    confusion_matrix: list[list[int]]
    latency_ms: dict[str, float]
    throughput_per_s: float
    batch_throughput_per_s: float
    invoke_raw_ms: dict[str, float]
    invoke_overhead_ratio: float
    preprocess_ms: float
    size_bytes: int
    peak_rss_mb: float | None
    peak_rss_scope: str | None
    baseline_rss_mb: float | None
    manifest_metrics: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # label of a float model on the same inputs -> share of inputs with the same top-1 class
    top1_agreement: dict[str, float] = field(default_factory=dict)
    predictions: np.ndarray | None = field(default=None, repr=False, compare=False)  # EMOTIONS indices; not in JSON

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("predictions")
        return out


@dataclass
class BenchReport:
    """The whole benchmark: machine, data, and one ModelResult per model."""

    data: dict[str, Any]
    models: list[ModelResult]
    machine: dict[str, Any] = field(default_factory=lambda: machine_info())
    date: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    models_sha256: dict[str, str] = field(default_factory=dict)  # model label -> sha256 of the file measured

    def to_dict(self) -> dict[str, Any]:
        out = {
            "edgeemo_version": __version__,
            "date": self.date,
            "models_sha256": self.models_sha256,
            "machine": self.machine,
            "data": self.data,
            "n": self.data["n"],
            "tensorflow_imported": "tensorflow" in sys.modules,
            "models": [m.to_dict() for m in self.models],
        }
        if "no_face" in self.data:  # photos through the camera path (edgeemo.camera_bench)
            out["no_face"] = self.data["no_face"]
        return out


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor() or platform.machine()
    found: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        found.setdefault(key.strip(), value.strip())
    # x86: "model name"; Raspberry Pi / arm64: "Model" (board) or "Hardware"
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        if found.get(key):
            return found[key]
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Platform, CPU model, cores, Python, and versions of the runtimes that were imported."""
    runtimes = {}
    for module in ("ai_edge_litert", "tflite_runtime", "onnxruntime", "keras", "tensorflow"):
        mod = sys.modules.get(module)
        if mod is not None:
            runtimes[module] = getattr(mod, "__version__", "unknown")
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "available_cores": available_cores(),
        "python": platform.python_version(),
        "runtimes": runtimes,
    }


def _status_mb(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process; False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process in MiB: VmHWM on Linux, ru_maxrss elsewhere."""
    peak = _status_mb("VmHWM")
    if peak is not None:
        return peak
    try:
        import resource
    except ImportError:  # Windows
        return None
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / (1024.0 * 1024.0) if sys.platform == "darwin" else maxrss / 1024.0


def _percentiles(ms: np.ndarray) -> dict[str, float]:
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(ms.mean())}


def time_latency(model: EmotionModel, x1: np.ndarray, runs: int, warmup: int) -> tuple[np.ndarray, np.ndarray]:
    """Batch-1 latency in ms of ``predict`` and of the bare ``invoke_raw``, interleaved.

    Interleaving the two keeps their ratio fair when other processes load the CPU.
    """
    runner = model.runner
    raw_in = quantize(x1, runner.input)
    for _ in range(warmup):
        runner.predict(x1)
        runner.invoke_raw(raw_in)
    predict_ms = np.empty(runs)
    raw_ms = np.empty(runs)
    clock = time.perf_counter
    for i in range(runs):
        t0 = clock()
        runner.predict(x1)
        t1 = clock()
        runner.invoke_raw(raw_in)
        t2 = clock()
        predict_ms[i], raw_ms[i] = (t1 - t0) * 1e3, (t2 - t1) * 1e3
    return predict_ms, raw_ms


def time_preprocess(raw: np.ndarray, spec: FacePreprocessing | VoicePreprocessing, repeats: int = 50) -> float:
    """Median ms of the core preprocessing of one raw face (or one clip of samples: VAD, MFCC, standardise)."""
    ms = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        if isinstance(spec, VoicePreprocessing):
            preprocess_clip(raw, spec)
        else:
            preprocess_face(raw, spec)
        ms.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(ms))


def load_clips(
    data: str | Path, speakers: Sequence[str] | None, limit_per_class: int | None
) -> VoiceDataset:
    """Voice bench data: corpus folder(s) (comma-separated), optionally only some ``speakers``."""
    roots = [Path(p.strip()) for p in str(data).split(",") if p.strip()]
    clips = load_voice(roots)
    if speakers:
        clips = select_speakers(clips, speakers)
    clips = clips.first_per_class(limit_per_class)
    if len(clips) == 0:
        raise EdgeemoError("no labelled clips", roots[0])
    return clips


def bench_model(
    model: EmotionModel,
    label: str,
    x: np.ndarray,
    y: np.ndarray,
    threads: int,
    runs: int = 200,
    warmup: int = 20,
    batch_size: int = 64,
    preprocess_ms: float = 0.0,
) -> ModelResult:
    """Score an opened model on preprocessed faces ``x`` (``y``: EMOTIONS indices), then time it."""
    model.predict(x[:batch_size], batch_size=batch_size)  # warm-up: allocation, caches
    t0 = time.perf_counter()
    probs = model.predict(x, batch_size=batch_size)
    batch_seconds = time.perf_counter() - t0
    if probs.shape != (len(x), len(model.labels)):
        raise EdgeemoError(
            f"model returned shape {probs.shape}, expected {(len(x), len(model.labels))}",
            model.path,
        )
    y_pred = model.canonical_index[probs.argmax(axis=1)]
    report = classification_report(y, y_pred, EMOTIONS)
    predict_ms, raw_ms = time_latency(model, x[:1], runs, warmup)
    latency = _percentiles(predict_ms)
    raw = _percentiles(raw_ms)
    manifest = model.runner.manifest
    return ModelResult(
        model=label,
        path=str(model.path),
        format=model.format,
        backend=model.runner.backend,
        quantization=model.quantization,
        threads=threads,
        n=report["n"],
        accuracy=report["accuracy"],
        macro_f1=report["macro_f1"],
        uar=report["uar"],
        per_class=report["per_class"],
        confusion_matrix=report["confusion_matrix"],
        latency_ms=latency,
        throughput_per_s=1e3 / latency["mean"] if latency["mean"] > 0 else 0.0,
        batch_throughput_per_s=len(x) / batch_seconds if batch_seconds > 0 else 0.0,
        invoke_raw_ms=raw,
        invoke_overhead_ratio=latency["p50"] / raw["p50"] if raw["p50"] > 0 else float("nan"),
        preprocess_ms=preprocess_ms,
        size_bytes=model.path.stat().st_size,
        peak_rss_mb=None,
        peak_rss_scope=None,
        baseline_rss_mb=None,
        manifest_metrics=dict(manifest.metrics) if manifest is not None else {},
        notes=list(model.notes),
        predictions=y_pred,
    )


def is_float(result: ModelResult) -> bool:
    """A float (unquantised) model: the parent an int8 model is compared with."""
    return result.quantization in ("none", "float32", "float16")


def add_agreement(results: Sequence[ModelResult]) -> None:
    """Fill each result's ``top1_agreement`` with every float model scored on the same inputs."""
    floats = [r for r in results if is_float(r) and r.predictions is not None]
    for r in results:
        if r.predictions is None:
            continue
        r.top1_agreement = {
            f.model: float(np.mean(r.predictions == f.predictions))
            for f in floats
            if f is not r and f.predictions is not None and len(f.predictions) == len(r.predictions)
        }


def model_labels(models: Sequence[EmotionModel]) -> list[str]:
    """Short unique labels: shipped name or file stem; on a clash file name, then folder/file."""
    labels = [m.path.stem if Path(m.spec).is_file() else m.spec for m in models]
    widen: list[Callable[[EmotionModel], str]] = [
        lambda m: m.path.name,
        lambda m: f"{m.path.parent.name}/{m.path.name}",
    ]
    for rename in widen:
        labels = [rename(m) if labels.count(c) > 1 else c for m, c in zip(models, labels, strict=True)]
    return [f"{c}#{i + 1}" if labels.count(c) > 1 else c for i, c in enumerate(labels)]


def _resolved(path: str | Path) -> set[Path]:
    """Where a path recorded at training time may point: from here, and from the source checkout."""
    return {Path(path).resolve(), (Path(__file__).resolve().parents[1] / path).resolve()}


def training_overlap(training: dict[str, Any], folder: Path | None = None,
                     speakers: Sequence[str] | None = None) -> str | None:
    """Why the bench data may hold samples a model trained on, from its manifest's ``training`` record
    (None when it does not, as far as the record tells): faces from its training folder (not its test
    folder); clips of its training or validation speakers."""
    split = training.get("split") or {}
    if speakers is not None:
        seen = set(split.get("train", {}).get("speakers", [])) | set(split.get("val", {}).get("speakers", []))
        shared = sorted(seen & set(speakers))
        if shared:
            return f"{len(shared)} of its training/validation speakers are in the data ({', '.join(shared[:4])}...)"
        return None
    data = training.get("data")
    if folder is None or not data:
        return None
    here = folder.resolve()
    roots = set().union(*(_resolved(d) for d in ([data] if isinstance(data, str) else data)))
    test = split.get("test", {}).get("source")
    tests = _resolved(test) if isinstance(test, str) and ("/" in test or "\\" in test) else set()
    if here in tests:
        return None
    for root in roots:
        if here == root or root in here.parents or here in root.parents:
            return f"it was trained on {data} (this data is {folder})"
    return None


def run_bench(
    models: Sequence[str | Path],
    data: str | Path,
    dataset: str = "auto",
    split: str = "publictest",
    runs: int = 200,
    warmup: int = 20,
    threads: int | None = None,
    limit_per_class: int | None = None,
    backend: str = "auto",
    batch_size: int = 64,
    progress: Callable[[str], None] | None = None,
    speakers: Sequence[str] | None = None,
    adapt: bool = True,
    seed: int = 0,
) -> BenchReport:
    """Benchmark each model on one face dataset, or voice models on corpus folder(s)
    (``data`` comma-separated; ``speakers`` picks held-out speakers); see the module docstring.

    A voice model that adapts to its speaker (manifest ``adaptation``) hears each speaker's
    clips in a ``seed``-ed random order with running statistics per speaker, as the dataset
    reader names the speakers (``adapt=False``: every clip alone)."""
    if not models:
        raise EdgeemoError("no models given")
    if runs < 1 or warmup < 0 or batch_size < 1:
        raise EdgeemoError("--runs and --batch-size must be >= 1 and --warmup >= 0")
    say = progress or (lambda _msg: None)
    threads = threads or available_cores()
    # Open every model once up front so a bad one fails before the (slow) data load,
    # then close it again: each is re-opened alone below for a fair memory figure.
    opened = [open_emotion_model(m, backend=backend, threads=threads) for m in models]
    tasks = sorted({m.task for m in opened})
    if len(tasks) > 1:
        raise EdgeemoError("face and voice models cannot be benchmarked on the same data; run bench once per task")
    task = tasks[0]
    labels = model_labels(opened)
    specs = [m.preprocessing for m in opened]
    folder: Path | None = None
    used_split: str | None = None
    if task == "face":
        data_path = Path(data)
        if data_path.is_file():
            folder, used_split = data_path, split
        elif data_path.is_dir():
            folder, used_split = split_folder(data_path, split)
    trainings = [(m.runner.manifest.training if m.runner.manifest else None) or {} for m in opened]
    stamps = {label: sha256_of(m.path) for label, m in zip(labels, opened, strict=True)}
    for m in opened:
        for note in m.notes:
            say(f"note: {note}")
    del opened
    gc.collect()

    if task == "voice":
        report = _run_voice_bench(models, labels, specs, data, speakers, limit_per_class, threads, runs, warmup,
                                  backend, batch_size, say, adapt, seed)
        report.data["trained_on_this_data"] = {
            label: why for label, t in zip(labels, trainings, strict=True)
            if (why := training_overlap(t, speakers=report.data["speakers"]))}
        report.models_sha256 = stamps
        return report
    faces: FaceDataset = load_faces(data, dataset=dataset, split=split, limit_per_class=limit_per_class)
    say(faces.summary())
    inputs: dict[FacePreprocessing | VoicePreprocessing, tuple[np.ndarray, float]] = {}
    results = []
    for spec_in, label, spec in zip(models, labels, specs, strict=True):
        if spec not in inputs:
            assert isinstance(spec, FacePreprocessing)
            inputs[spec] = (
                preprocess_faces(faces.images, spec),
                time_preprocess(faces.images[0], spec),
            )
        x, pre_ms = inputs[spec]
        gc.collect()
        scope = "model" if reset_peak_rss() else "process"
        baseline = _status_mb("VmRSS")
        say(f"benchmarking {label} ...")
        model = open_emotion_model(spec_in, backend=backend, threads=threads)
        results.append(_measured(model, label, x, faces.labels, threads, runs, warmup, batch_size, pre_ms, scope,
                                 baseline))
        del model
    add_agreement(results)
    data_info = {
        "path": str(data),
        "dataset": faces.name,
        "split": used_split or "all images (no split folders)",
        "trained_on_this_data": {label: why for label, t in zip(labels, trainings, strict=True)
                                 if (why := training_overlap(t, folder))},
        "n": len(faces),
        "class_counts": faces.class_counts(),
        "excluded": dict(faces.excluded),
        "limit_per_class": limit_per_class,
    }
    return BenchReport(data=data_info, models=results, models_sha256=stamps)


def _measured(model: EmotionModel, label: str, x: np.ndarray, y: np.ndarray, threads: int, runs: int, warmup: int,
              batch_size: int, pre_ms: float, scope: str, baseline: float | None) -> ModelResult:
    result = bench_model(model, label, x, y, threads, runs, warmup, batch_size, pre_ms)
    result.peak_rss_mb = peak_rss_mb()
    result.peak_rss_scope = scope if result.peak_rss_mb is not None else None
    result.baseline_rss_mb = baseline
    return result


def _run_voice_bench(
    models: Sequence[str | Path],
    labels: list[str],
    specs: list[FacePreprocessing | VoicePreprocessing],
    data: str | Path,
    speakers: Sequence[str] | None,
    limit_per_class: int | None,
    threads: int,
    runs: int,
    warmup: int,
    backend: str,
    batch_size: int,
    say: Callable[[str], None],
    adapt: bool = True,
    seed: int = 0,
) -> BenchReport:
    """The voice half of run_bench: clips through THE core front end; no-speech clips counted, not scored."""
    from edgeemo.audio import load_audio

    clips = load_clips(data, speakers, limit_per_class)
    say(clips.summary())
    inputs: dict[FacePreprocessing | VoicePreprocessing, tuple[np.ndarray, np.ndarray, float]] = {}
    results = []
    no_speech = 0
    for spec_in, label, spec in zip(models, labels, specs, strict=True):
        assert isinstance(spec, VoicePreprocessing)
        if spec not in inputs:
            adapting = adapt and spec.adaptation is not None
            say(f"computing MFCCs of {len(clips)} clips"
                + (f" (adapting per speaker, causal, seeded order {seed})" if adapting else "") + " ...")
            x, kept = preprocess_files(clips.paths, spec, speakers=list(map(str, clips.groups)) if adapting else None,
                                       seed=seed)
            no_speech = len(clips) - len(kept)
            first, _ = load_audio(clips.paths[int(kept[0]) if len(kept) else 0], spec.features.sample_rate)
            inputs[spec] = (x, clips.labels[kept], time_preprocess(first, spec, repeats=20))
        x, y, pre_ms = inputs[spec]
        if len(x) == 0:
            raise EdgeemoError("no clip with speech to score", Path(str(data).split(",")[0]))
        gc.collect()
        scope = "model" if reset_peak_rss() else "process"
        baseline = _status_mb("VmRSS")
        say(f"benchmarking {label} ...")
        model = open_emotion_model(spec_in, backend=backend, threads=threads)
        results.append(_measured(model, label, x, y, threads, runs, warmup, batch_size, pre_ms, scope, baseline))
        del model
    add_agreement(results)
    data_info = {
        "path": str(data),
        "dataset": clips.name,
        "split": f"speakers {','.join(speakers)}" if speakers else "all clips",
        "speakers": clips.speakers(),
        "n": len(clips) - no_speech,
        "no_speech_clips": no_speech,
        "class_counts": clips.class_counts(),
        "excluded": dict(clips.excluded),
        "limit_per_class": limit_per_class,
        "adaptation": adaptation_note(specs, adapt, seed),
    }
    return BenchReport(data=data_info, models=results)


def adaptation_note(specs: Sequence[FacePreprocessing | VoicePreprocessing], adapt: bool, seed: int) -> str:
    """How the voice inputs were standardised, for the report."""
    adapting = [s for s in specs if isinstance(s, VoicePreprocessing) and s.adaptation is not None]
    if not adapting:
        return "none: the models standardise every clip with their training statistics"
    if not adapt:
        return "off (--no-adapt): every clip standardised alone, as the first clip of a new speaker"
    prior = adapting[0].adaptation.prior_clips if adapting[0].adaptation else 0
    return (f"causal per speaker (the reader's speaker names), clips in a random order (seed {seed}); each clip "
            f"standardised by its speaker's clips so far, itself included, shrunk towards the training "
            f"statistics with a prior of {prior:g} clips")
