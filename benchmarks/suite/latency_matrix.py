"""Speed and size of every shipped model per backend and thread count, plus the front ends.

    .venv/bin/python benchmarks/suite/latency_matrix.py [--quick] [--out benchmarks/results]

For each shipped model file (face and voice: float TFLite, int8 TFLite, float ONNX, int8 ONNX)
and each backend that can run it (LiteRT and tflite-runtime for .tflite, onnxruntime for
.onnx), a FRESH worker process opens the model with ``edgeemo.runtime.open_model`` at 1, 2
and 4 threads and times ``Runner.predict`` on one real preprocessed input (batch 1, after
warm-up; the bare ``invoke_raw`` interleaved, for the overhead), then reports its peak RSS
(VmHWM: Python + numpy + the runtime + the model; nothing else is imported). tflite-runtime
has no wheel built against numpy 2, so it runs in its own virtualenv
(``~/.cache/edgeemo-bench/tflite-runtime-venv``: tflite-runtime 2.14.0 + numpy<2, built on
first use; the pip output is recorded when that fails). The audio front end (VAD + MFCC +
standardisation of a 3 s window) and the device's Haar face detector (640x480 frame shrunk
to the daemon's detection width) are timed separately in this process.

Writes ``latency.json``, ``latency.md`` and ``latency/latency-<task>.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "suite"
TFLITE_RUNTIME_VENV = Path.home() / ".cache" / "edgeemo-bench" / "tflite-runtime-venv"
TFLITE_RUNTIME_PINS = ["tflite-runtime==2.14.0", "numpy<2"]
MODELS = {
    "face": ("face-float", "face", "face-float-onnx", "face-onnx"),
    "voice": ("voice-float", "voice", "voice-float-onnx", "voice-onnx"),
}
THREADS = (1, 2, 4)
BUDGET_S = 20.0  # most seconds of timing per model, backend and thread count
MIN_RUNS = 30


# ----------------------------------------------------------------------------- worker (fresh process)


def _vm_kib(key: str) -> int | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def time_calls(fn: Callable[[], Any], raw: Callable[[], Any], runs: int, warmup: int,
               budget_s: float = BUDGET_S) -> tuple[np.ndarray, np.ndarray]:
    """Per-call ms of ``fn`` and ``raw``, interleaved (fair ratio on a loaded CPU), after ``warmup`` calls each.

    Stops early after ``budget_s`` seconds (at least ``MIN_RUNS`` calls): an oversubscribed thread pool can
    take hundreds of ms per call on a loaded machine."""
    clock = time.perf_counter
    start = clock()
    for _ in range(warmup):
        fn()
        raw()
        if clock() - start > budget_s / 4:
            break
    a, b = np.empty(runs), np.empty(runs)
    start = clock()
    n = runs
    for i in range(runs):
        t0 = clock()
        fn()
        t1 = clock()
        raw()
        t2 = clock()
        a[i], b[i] = (t1 - t0) * 1e3, (t2 - t1) * 1e3
        if i + 1 >= MIN_RUNS and t2 - start > budget_s:
            n = i + 1
            break
    return a[:n], b[:n]


def percentiles(ms: np.ndarray) -> dict[str, float]:
    """p50/p90/p99/mean/min of per-call milliseconds."""
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "mean": float(ms.mean()), "min": float(ms.min())}


def worker(model: str, backend: str, x_file: str, threads: Sequence[int], runs: int, warmup: int,
           budget_s: float = BUDGET_S) -> dict[str, Any]:
    """Run in a fresh process: open ``model`` with ``backend`` at each thread count and time it."""
    from edgeemo.runtime import open_model, quantize

    base_kib = _vm_kib("VmRSS")
    x = np.load(x_file)
    rows = []
    for t in threads:
        t0 = time.perf_counter()
        runner = open_model(model, backend=backend, threads=t)
        open_ms = (time.perf_counter() - t0) * 1e3
        q = quantize(x, runner.input)
        pred, raw = time_calls(lambda r=runner: r.predict(x), lambda r=runner, q=q: r.invoke_raw(q), runs, warmup,
                               budget_s)
        lat = percentiles(pred)
        rows.append({
            "threads": t,
            "calls": len(pred),
            "open_ms": open_ms,
            "latency_ms": lat,
            "invoke_raw_ms": percentiles(raw),
            "throughput_per_s": 1e3 / lat["mean"],
            "samples_ms": [round(float(v), 4) for v in pred],
        })
        del runner
    import importlib

    mod = {"litert": "ai_edge_litert", "tflite-runtime": "tflite_runtime", "onnxruntime": "onnxruntime"}[backend]
    version = getattr(importlib.import_module(mod), "__version__", "unknown")
    return {
        "backend_version": version,
        "numpy": np.__version__,
        "baseline_rss_mb": base_kib / 1024 if base_kib else None,
        "peak_rss_mb": (_vm_kib("VmHWM") or 0) / 1024,
        "rows": rows,
    }


# ----------------------------------------------------------------------------- tflite-runtime venv


def tflite_runtime_python(build: bool, say: Callable[[str], None]) -> tuple[str | None, dict[str, Any]]:
    """The Python of the tflite-runtime venv (built when ``build``), and what happened."""
    py = TFLITE_RUNTIME_VENV / "bin" / "python"
    venv = str(TFLITE_RUNTIME_VENV).replace(str(Path.home()), "~")
    info: dict[str, Any] = {"venv": venv, "pins": TFLITE_RUNTIME_PINS}
    marker = TFLITE_RUNTIME_VENV / ".edgeemo-pins"
    if not (py.exists() and marker.exists() and marker.read_text() == " ".join(TFLITE_RUNTIME_PINS)):
        if not build:
            info["status"] = "skipped (--quick does not build the tflite-runtime venv)"
            return None, info
        say("building the tflite-runtime venv ...")
        cmds = [
            [sys.executable, "-m", "venv", "--clear", str(TFLITE_RUNTIME_VENV)],
            [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", *TFLITE_RUNTIME_PINS],
        ]
        for cmd in cmds:
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                info["status"] = "not installable"
                info["pip_message"] = (proc.stdout + proc.stderr).strip()[-2000:]
                return None, info
        marker.write_text(" ".join(TFLITE_RUNTIME_PINS))
    check = subprocess.run([str(py), "-c", "import tflite_runtime, numpy; print(tflite_runtime.__version__, "
                            "numpy.__version__)"], capture_output=True, text=True)
    if check.returncode != 0:
        info["status"] = "installed but does not import"
        info["pip_message"] = check.stderr.strip()[-2000:]
        return None, info
    tfl, npv = check.stdout.split()
    info.update(status="ok", tflite_runtime=tfl, numpy=npv)
    return str(py), info


def numpy2_check() -> str:
    """Why tflite-runtime is not in the project venv: its import/run under this venv's numpy."""
    return (
        "tflite-runtime 2.14.0 (the newest wheel for CPython 3.11 x86_64 on PyPI: `pip download tflite-runtime` "
        "fetches tflite_runtime-2.14.0-cp311-cp311-manylinux2014_x86_64.whl) is built against numpy 1.x; with "
        f"this venv's numpy {np.__version__} creating an Interpreter fails (SystemError from "
        "CreateWrapperFromFile), so it runs in its own venv with numpy<2."
    )


# ----------------------------------------------------------------------------- inputs and front ends


def sample_inputs() -> dict[str, np.ndarray]:
    """One real preprocessed batch-1 input per task: a PublicTest face, a RAVDESS actor-17 clip."""
    from edgeemo.face import preprocess_face
    from edgeemo.face_datasets import load_faces
    from edgeemo.predict import open_emotion_model
    from edgeemo.voice import preprocess_file

    faces = load_faces(DATA / "fer2013" / "publictest", limit_per_class=1)
    face_pre = open_emotion_model("face").preprocessing
    voice_pre = open_emotion_model("voice").preprocessing
    clip = sorted((DATA / "ravdess" / "Actor_17").glob("*.flac"))[0]
    xv = preprocess_file(clip, voice_pre)
    assert xv is not None
    return {
        "face": preprocess_face(faces.images[0], face_pre)[None].astype(np.float32),
        "voice": xv[None].astype(np.float32),
    }


def front_ends(runs: int) -> dict[str, Any]:
    """Audio front end on a 3 s window and the daemon's Haar detection on a 640x480 frame, timed separately."""
    from edgeemo.audio import load_audio
    from edgeemo.device.demo_clip import DemoCamera
    from edgeemo.device.paths import FacePath, make_detector
    from edgeemo.device.pipeline import PipelineSettings
    from edgeemo.errors import EdgeemoError
    from edgeemo.predict import open_emotion_model
    from edgeemo.voice import preprocess_clip

    voice = open_emotion_model("voice", threads=1)
    pre = voice.preprocessing
    clip = sorted((DATA / "ravdess" / "Actor_17").glob("*.flac"))[0]
    samples, _ = load_audio(clip, pre.features.sample_rate)
    window = int(pre.features.window_s * pre.features.sample_rate)
    samples = np.resize(samples, max(window, len(samples)))[:window]  # one 3 s window, as the daemon passes
    audio = np.array([_t(lambda: preprocess_clip(samples, pre)) for _ in range(runs)])
    speech = all_speech_window(pre.features)  # the worst case: pitch tracked on every frame of the window
    audio_speech = np.array([_t(lambda: preprocess_clip(speech, pre)) for _ in range(runs)])
    t0 = time.perf_counter()
    load_audio(clip, pre.features.sample_rate)
    decode_ms = (time.perf_counter() - t0) * 1e3

    settings = PipelineSettings()
    face = open_emotion_model("face", threads=1)
    path = FacePath(face, make_detector(PipelineSettings(detector="haar")), detect_width=settings.detect_width)
    frame = DemoCamera(seconds=3.0, fps=30, no_face_s=0.0, realtime=False).frame(30)
    found = len(path.detect(frame))
    det = np.array([_t(lambda: path.detect(frame)) for _ in range(runs)])
    blazeface: dict[str, Any] = {"what": "BlazeFace short-range (LiteRT, 1 thread) on the same frame shrunk to "
                                 f"{settings.detect_width} px wide (`detector = \"blazeface\"`)"}
    try:
        from edgeemo.face_detect import BlazeFaceDetector

        bpath = FacePath(face, BlazeFaceDetector(threads=1), detect_width=settings.detect_width)
        blazeface["faces_found"] = len(bpath.detect(frame))
        blazeface["latency_ms"] = percentiles(np.array([_t(lambda: bpath.detect(frame)) for _ in range(runs)]))
    except EdgeemoError as exc:  # the optional model file is not installed
        blazeface["not_measured"] = str(exc)
    return {
        "audio_front_end": {
            "what": f"preprocess_clip on one {pre.features.window_s} s window (VAD trim, {pre.features.n_mfcc} MFCC"
                    f"{', prosody' if pre.features.prosody else ''}, {pre.summary}, standardise) of a RAVDESS actor-17 "
                    "clip",
            "latency_ms": percentiles(audio),
            "file_decode_ms_once": decode_ms,
        },
        "audio_front_end_all_speech": {
            "what": f"preprocess_clip on one {pre.features.window_s} s window that is speech from end to end (the "
                    "VAD-trimmed speech of RAVDESS actor-17 clips, back to back): the slowest window the daemon "
                    "passes, every frame voiced or near it",
            "latency_ms": percentiles(audio_speech),
        },
        "face_detector": {
            "what": f"Haar cascade on a 640x480 frame shrunk to {settings.detect_width} px wide (scale factor "
                    f"{settings.detect_scale_factor}, min face {settings.min_face} px), as the daemon does once every "
                    f"{settings.detect_every} frames",
            "faces_found": found,
            "latency_ms": percentiles(det),
        },
        "face_detector_blazeface": blazeface,
        "runs": runs,
    }


def all_speech_window(feats: Any) -> np.ndarray:
    """One analysis window filled with speech: RAVDESS actor-17 clips trimmed by THE VAD, concatenated."""
    from edgeemo.audio import load_audio, trim_silence

    window = int(feats.window_s * feats.sample_rate)
    parts: list[np.ndarray] = []
    for clip in sorted((DATA / "ravdess" / "Actor_17").glob("*.flac")):
        speech = trim_silence(load_audio(clip, feats.sample_rate)[0], feats)
        if speech is not None:
            parts.append(speech)
        if sum(map(len, parts)) >= window:
            return np.concatenate(parts)[:window]
    raise SystemExit(f"not {feats.window_s} s of speech in {DATA / 'ravdess' / 'Actor_17'}")


def _t(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


# ----------------------------------------------------------------------------- driver


def backends_for(path: Path) -> list[str]:
    """The backends that run a model file."""
    return ["litert", "tflite-runtime"] if path.suffix == ".tflite" else ["onnxruntime"]


def run(out: Path, quick: bool = False, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Time every shipped model per backend and thread count; write latency.{json,md} and the plots."""
    from edgeemo.bench import machine_info
    from edgeemo.predict import open_emotion_model
    from edgeemo.shipped import resolve_model

    runs, warmup, budget = (50, 10, 3.0) if quick else (300, 30, BUDGET_S)
    threads = THREADS
    if quick:  # predictable and short: never the separate venv, even when it is cached
        tfl_py, tfl_info = None, {"status": "skipped (--quick does not use the tflite-runtime venv)"}
    else:
        tfl_py, tfl_info = tflite_runtime_python(build=True, say=say)
    tfl_info["why_separate_venv"] = numpy2_check()
    inputs = sample_inputs()
    rows = []
    loadavg_start = list(os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        for task, names in MODELS.items():
            x_file = Path(tmp) / f"{task}.npy"
            np.save(x_file, inputs[task])
            for name in names:
                path = resolve_model(name)
                for backend in backends_for(path):
                    python = sys.executable if backend != "tflite-runtime" else tfl_py
                    if python is None:
                        continue
                    say(f"{name} on {backend}, threads {','.join(map(str, threads))} ...")
                    cmd = [python, str(Path(__file__).resolve()), "--worker", str(path), "--backend", backend,
                           "--x", str(x_file), "--threads", ",".join(map(str, threads)), "--runs", str(runs),
                           "--warmup", str(warmup), "--budget", str(budget)]
                    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
                    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
                    if proc.returncode != 0:
                        raise RuntimeError(f"latency worker failed for {name} on {backend}:\n{proc.stderr[-2000:]}")
                    res = json.loads(proc.stdout.strip().splitlines()[-1])
                    rows.append({
                        "task": task,
                        "model": name,
                        "file": path.name,
                        "format": path.suffix.lstrip("."),
                        "quantization": open_emotion_model(name).quantization,
                        "backend": backend,
                        "size_bytes": path.stat().st_size,
                        **res,
                    })
    say("timing the audio front end and the face detector ...")
    fe = front_ends(runs=30 if quick else 300)
    report = {
        "quick": quick,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "machine": machine_info(),
        "loadavg_start": loadavg_start,
        "loadavg": list(os.getloadavg()),
        "runs": runs,
        "warmup": warmup,
        "budget_s": budget,
        "threads": list(threads),
        "tflite_runtime": tfl_info,
        "models": rows,
        "front_ends": fe,
    }
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(report, out / "latency")
    report["plots"] = [str(p.relative_to(out)) for p in plots]
    from edgeemo.shipped import shipped_sha256

    report["models_sha256"] = shipped_sha256([m for ms in MODELS.values() for m in ms])
    (out / "latency.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "latency.md").write_text(render(report))
    return report


def render(report: dict[str, Any]) -> str:
    """The markdown of latency.json."""
    m = report["machine"]
    tfl = report["tflite_runtime"]
    lines = [
        "# Speed and size per model, backend and thread count",
        "",
        f"Command: `.venv/bin/python benchmarks/suite/latency_matrix.py{' --quick' if report['quick'] else ''}`  ",
        f"Date: {report['date']}; machine: {m['cpu']}, {m['cores']} cores ({m['available_cores']} available); "
        f"Python {m['python']}; load average (1, 5, 15 min) at the start "
        f"{', '.join(f'{v:.2f}' for v in report['loadavg_start'])}, at the end "
        f"{', '.join(f'{v:.2f}' for v in report['loadavg'])} (this benchmark's own 2- and 4-thread settings included).",
        "",
        f"Batch 1, {report['runs']} timed calls of `Runner.predict` after {report['warmup']} warm-up calls, on one "
        "real preprocessed input; each model and backend in a fresh process (peak RSS = that process: Python, "
        "numpy, the runtime and the model). Threads above the machine's cores oversubscribe it.",
        "",
        "| task | model | format | quantization | backend | threads | p50 / p90 / p99 (ms) | bare invoke p50 (ms) | "
        "throughput (/s) | size | peak RSS (MiB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    short = [(r["model"], r["backend"], row["threads"], row["calls"]) for r in report["models"] for row in r["rows"]
             if row.get("calls", report["runs"]) < report["runs"]]
    for r in report["models"]:
        for row in r["rows"]:
            lat = row["latency_ms"]
            lines.append(
                f"| {r['task']} | {r['model']} | {r['format']} | {r['quantization']} | {r['backend']} "
                f"{r['backend_version']} | {row['threads']} | {lat['p50']:.3f} / {lat['p90']:.3f} / {lat['p99']:.3f} "
                f"| {row['invoke_raw_ms']['p50']:.3f} | {row['throughput_per_s']:.0f} | {r['size_bytes'] / 1e6:.2f} MB "
                f"| {r['peak_rss_mb']:.0f} |"
            )
    if short:
        lines += ["", f"Stopped early after {report['budget_s']:.0f} s of timing (fewer calls than {report['runs']}): "
                  + ", ".join(f"{m} on {b} at {t} threads ({n} calls)" for m, b, t, n in short) + "."]
    fe = report["front_ends"]
    lines += ["", "## Front ends (1 thread, timed separately)", "",
              "| stage | what | p50 / p90 / p99 (ms) |", "|---|---|---|"]
    for key in ("audio_front_end", "audio_front_end_all_speech", "face_detector", "face_detector_blazeface"):
        if key not in fe:
            continue
        lat = fe[key].get("latency_ms")
        cell = (f"{lat['p50']:.3f} / {lat['p90']:.3f} / {lat['p99']:.3f}" if lat
                else f"not measured: {fe[key].get('not_measured')}")
        lines.append(f"| {key.replace('_', ' ')} | {fe[key]['what']} | {cell} |")
    voice_int8 = [row["latency_ms"]["p50"] for r in report["models"] for row in r["rows"] if r["task"] == "voice"
                  and r["quantization"] == "int8" and r["format"] == "tflite" and row["threads"] == 1]
    if voice_int8 and "audio_front_end_all_speech" in fe:
        total = fe["audio_front_end_all_speech"]["latency_ms"]["p50"] + min(voice_int8)
        lines += ["", f"Voice, the slowest window: all-speech front end + int8 TFLite model, 1 thread = {total:.2f} ms "
                  "p50 per 3 s window (issue 26's budget: 10 ms)."]
    decode = fe["audio_front_end"]["file_decode_ms_once"]
    lines += ["", f"Audio file decode + resample of that clip, once: {decode:.2f} "
              "ms (a file path only; the daemon reads PCM from the microphone).", "", "## tflite-runtime", "",
              f"Status: {tfl['status']}. {tfl['why_separate_venv']}"]
    if tfl.get("status") == "ok":
        lines.append(f"Venv `{tfl['venv']}`: tflite-runtime {tfl['tflite_runtime']}, numpy {tfl['numpy']} "
                     f"(`pip install {' '.join(repr(p) if '<' in p else p for p in tfl['pins'])}`).")
    if tfl.get("pip_message"):
        lines += ["", "```", tfl["pip_message"], "```"]
    lines += ["", "Plots: " + ", ".join(f"`{p}`" for p in report.get("plots", [])) + ".", ""]
    return "\n".join(lines)


def write_plots(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Per task: latency distributions per model and backend at 1 thread, and p50 against threads."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda v, _pos: f"{v:g}")
    minor = FuncFormatter(lambda v, _pos: f"{v:g}" if f"{v:.0e}"[0] in "25" else "")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for task in MODELS:
        rows = [r for r in report["models"] if r["task"] == task]
        fig = Figure(figsize=(13, 5.5), dpi=110, layout="constrained")
        ax, ax2 = fig.subplots(1, 2, width_ratios=[1.6, 1])
        labels, data = [], []
        for r in rows:
            one = next(row for row in r["rows"] if row["threads"] == 1)
            labels.append(f"{r['model']}\n{r['backend']}")
            data.append(one["samples_ms"])
        ax.boxplot(data, orientation="horizontal", tick_labels=labels, whis=(1, 99), showfliers=True,
                   flierprops={"markersize": 2, "alpha": 0.3})
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(minor)
        ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("latency per call (ms, log scale); box = p25-p75, whiskers = p1-p99")
        ax.set_title(f"{task}: batch-1 latency distribution, 1 thread ({report['runs']} calls)")
        ax.grid(axis="x", which="both", alpha=0.3)
        for r in rows:
            ts = [row["threads"] for row in r["rows"]]
            p50 = [row["latency_ms"]["p50"] for row in r["rows"]]
            style = "-" if r["quantization"] == "int8" else "--"
            ax2.plot(ts, p50, style, marker="o", label=f"{r['model']} ({r['backend']})")
        ax2.set_xticks(report["threads"])
        ax2.set_yscale("log")
        ax2.yaxis.set_major_formatter(plain)
        ax2.yaxis.set_minor_formatter(minor)
        ax2.tick_params(axis="y", which="minor", labelsize=7)
        ax2.set_xlabel(f"threads (machine: {report['machine']['cores']} cores)")
        ax2.set_ylabel("p50 latency (ms, log scale)")
        ax2.set_title(f"{task}: p50 vs threads (solid: int8, dashed: float)")
        ax2.grid(alpha=0.3, which="both")
        ax2.legend(fontsize=7)
        path = out_dir / f"latency-{task}.png"
        fig.savefig(path)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 calls per setting; no tflite-runtime.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    parser.add_argument("--x", help=argparse.SUPPRESS)
    parser.add_argument("--threads", default="1,2,4", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, default=300, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=30, help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, default=BUDGET_S, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        threads = [int(t) for t in args.threads.split(",")]
        print(json.dumps(worker(args.worker, args.backend, args.x, threads, args.runs, args.warmup, args.budget)))
        return
    report = run(args.out, quick=args.quick)
    print(f"wrote {args.out / 'latency.json'} ({len(report['models'])} model/backend pairs)")


if __name__ == "__main__":
    main()
