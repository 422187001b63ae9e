"""The device daemon under load: a replayed 30 fps 640x480 video and a replayed WAV through the
whole pipeline (capture threads, bounded queues, face detection (the default detector), int8 face + voice models,
fusion, a JSON-lines sink), with every face frame published (publish_interval_s = 0).

Measures: sustained frames processed per second, capture-to-publish latency of each face
frame (p50/p95), CPU utilisation of the process, peak RSS, RSS growth from the end of the
first minute (warm) to the end, and the framework's own overhead per face inference
(``EmotionModel.predict`` on one preprocessed face vs the bare interpreter ``invoke``).

The clip is made from matplotlib's portrait (``edgeemo.device.demo_clip``) and written to a
temporary MJPG .avi; the WAV is the project's synthetic voice. No dataset is read.

    .venv/bin/python benchmarks/robustness/device_pipeline.py --duration 600   # the 10-minute run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import soundfile as sf

from edgeemo.audio import SAMPLE_RATE
from edgeemo.device.demo_clip import DemoCamera, demo_audio
from edgeemo.device.microphone import AudioReplay
from edgeemo.device.paths import FacePath, VoicePath, make_detector
from edgeemo.device.pipeline import Pipeline, PipelineSettings
from edgeemo.device.sinks import JsonLinesSink
from edgeemo.device.sources import VideoFileReplay
from edgeemo.face import preprocess_face
from edgeemo.predict import open_face_model, open_voice_model
from edgeemo.runtime import quantize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "suite"))
from latency_matrix import time_calls  # noqa: E402

from edgeemo.shipped import shipped_sha256

RESULTS = Path(__file__).resolve().parents[1] / "results" / "robustness"


def rss_mb() -> float:
    """Resident set size now, in MB (10^6 bytes, like peak_rss_mb)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


class TimedPipeline(Pipeline):
    """Records, for every face frame, the time from capture to the end of its publication."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.latencies: list[float] = []

    def _update(self, modality, probs, ts, labels) -> None:
        super()._update(modality, probs, ts, labels)
        if modality == "face":
            self.latencies.append(self.clock() - ts)


def make_inputs(folder: Path, seconds: float = 10.0) -> tuple[Path, Path]:
    video, wav = folder / "clip_640x480_30fps.avi", folder / "voice_16k.wav"
    cam = DemoCamera(seconds=seconds, fps=30, no_face_s=1.0, realtime=False)
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 480))
    for i in range(cam.n):
        writer.write(cam.frame(i))
    writer.release()
    sf.write(wav, demo_audio(0.5, seconds - 2.0, 1.5), SAMPLE_RATE, subtype="PCM_16")
    return video, wav


def overhead(face_model, frame: np.ndarray, runs: int = 2000) -> dict[str, float]:
    """Median per-call time of EmotionModel.predict vs the bare interpreter invoke on the same face,
    the two calls interleaved (``latency_matrix.time_calls``) so that load falls on both alike."""
    path = FacePath(face_model)
    box = path.detect(frame)[0]
    from edgeemo.face_detect import crop_face

    x = preprocess_face(crop_face(frame, box), face_model.preprocessing)[None]
    runner = face_model.runner
    q = quantize(x, runner.input)
    framework_ms, bare_ms = time_calls(lambda: face_model.predict(x), lambda: runner.invoke_raw(q), runs, warmup=50)
    bare, framework = float(np.median(bare_ms)), float(np.median(framework_ms))
    return {"bare_invoke_ms": round(bare, 4), "edgeemo_predict_ms": round(framework, 4),
            "overhead_pct": round(100 * (framework / bare - 1), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of replay (600 for the growth figure)")
    ap.add_argument("--out", type=Path, default=RESULTS / "device_pipeline")
    args = ap.parse_args()

    face_model, voice_model = open_face_model("face", threads=1), open_voice_model("voice", threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        video, wav = make_inputs(Path(tmp))
        first = cv2.VideoCapture(str(video)).read()[1]
        over = overhead(face_model, first)
        camera = VideoFileReplay(video, fps=30, loop=True)
        mic = AudioReplay.from_file(wav, chunk_s=0.1, realtime=True, loop=True)
        devnull = open(os.devnull, "w")  # noqa: SIM115 - closed below
        sink = JsonLinesSink(devnull)  # serialise every result as the stdout sink does, then discard
        settings = PipelineSettings(publish_interval_s=0.0)  # the daemon's defaults otherwise
        face = FacePath(face_model, make_detector(settings), detect_width=settings.detect_width,
                        detect_every=settings.detect_every)
        p = TimedPipeline(camera, mic, face, VoicePath(voice_model), [sink], settings=settings)
        samples: list[tuple[float, float, float]] = []  # (elapsed s, rss MB, cpu s)
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(5.0):
                samples.append((time.monotonic() - t0, rss_mb(), time.process_time()))

        t0 = time.monotonic()
        cpu0 = time.process_time()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        counters = p.run(duration_s=args.duration, handle_signals=True)
        wall = time.monotonic() - t0
        cpu = time.process_time() - cpu0
        stop.set()
        devnull.close()

    lat = np.array(p.latencies) * 1e3
    warm = [s for s in samples if s[0] >= 60.0] or samples
    growth = warm[-1][1] - warm[0][1] if len(warm) > 1 else 0.0
    result = {
        "duration_s": round(wall, 1),
        "input": "640x480 MJPG video replayed at 30 fps (loop) + 16 kHz WAV replayed in real time (loop)",
        "frames_in": counters.frames_in,
        "frames_processed": counters.frames_processed,
        "frames_dropped": counters.frames_dropped,
        "faces": counters.faces,
        "voice_windows": counters.windows,
        "fps_in": round(counters.frames_in / wall, 2),
        "fps_processed": round(counters.frames_processed / wall, 2),
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 2),
        "latency_ms_p95": round(float(np.percentile(lat, 95)), 2),
        "latency_ms_max": round(float(lat.max()), 2),
        "cpu_cores_used": round(cpu / wall, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6, 1),  # KiB -> MB
        "rss_growth_mb_after_warmup": round(growth, 2),
        "rss_samples_mb": [round(s[1], 1) for s in samples[:: max(1, len(samples) // 20)]],
        "tensorflow_loaded": "tensorflow" in sys.modules,
        **over,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "errors": counters.errors,
        "detector": settings.detector,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result["models_sha256"] = shipped_sha256(["face", "voice"])
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    targets = [
        ("sustained frames processed / s", f"{result['fps_processed']} of {result['fps_in']} in", ">= 30"),
        ("capture-to-publish p50 / p95", f"{result['latency_ms_p50']} / {result['latency_ms_p95']} ms", "p95 < 50 ms"),
        ("CPU", f"{result['cpu_cores_used']} cores", "< 1 core"),
        ("peak RSS (no TensorFlow)", f"{result['peak_rss_mb']} MB", "< 200 MB"),
        (f"RSS growth, minute 1 to {wall / 60:.0f}", f"{result['rss_growth_mb_after_warmup']} MB", "< 5 MB / 10 min"),
        ("framework overhead per face inference",
         f"{over['edgeemo_predict_ms']} vs {over['bare_invoke_ms']} ms bare ({over['overhead_pct']}%)", "<= 15%"),
    ]
    lines = [
        "# Device pipeline under a replayed 30 fps 640x480 video + WAV",
        "",
        f"`.venv/bin/python benchmarks/robustness/device_pipeline.py --duration {args.duration:g}`: "
        f"{result['duration_s']} s, "
        f"shipped int8 `face` + `voice` (LiteRT, 1 thread each), {settings.detector} face detection (the "
        f"default) on a {settings.detect_width}-wide copy once "
        f"every {settings.detect_every} frames, every face frame published as a JSON line. "
        f"{result['machine']}; load average at the end "
        f"{result['load_average_at_end']}.",
        "",
        "| measure | measured | target |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in targets],
        "",
        f"Frames: {counters.frames_in} in, {counters.frames_processed} processed, {counters.frames_dropped} dropped "
        f"(queue of 2, oldest dropped), {counters.faces} with a face; {counters.windows} voice windows.",
        "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
