"""One command that regenerates benchmarks/results/: every table (markdown + JSON), every plot and README.md.

    .venv/bin/python benchmarks/run_all.py                 # the full run (~15-20 min on a 2-core machine)
    .venv/bin/python benchmarks/run_all.py --quick --out /tmp/bench   # smoke (< 90 s): what CI runs

Runs, in this process (the benchmark scripts' ``run`` functions, no shell-outs):

- ``face_fer2013.py``: shipped face models (float/int8 TFLite, float/int8 ONNX) on FER2013 PublicTest;
- ``voice_heldout.py``: shipped voice models on RAVDESS actors 17-20 and CREMA-D 1009-1010;
- ``voice_transfer.py``: the transfer table: int8 and float ``voice`` (and the previous shipped model) on the
  speakers of every corpus they never trained on, with UAR and the majority class; training runs' per-corpus
  results (leave-one-corpus-out) from ``release/training/<run>/metrics.json``;
- the trained-but-not-shipped models (MobileNetV3Small, CRNN/LSTM, multi-corpus Conv1D), re-benchmarked
  when their files are in ``runs/`` (local only), else their committed results are kept;
- ``latency_matrix.py``: per model, backend (LiteRT, tflite-runtime, onnxruntime) and thread count (1, 2, 4);
  the audio front end and the face detector;
- ``fusion_pseudo_paired.py``: face-only, voice-only and fused accuracy, fused accuracy vs the fusion weight, in
  domain and out of domain (unseen CREMA-D voices, Taiwanese photos through the daemon's face path);
- ``summary_plots.py``: Pareto plots (with the ``fer`` peer) and per-class int8 deltas;

then writes ``README.md`` from the JSON files. Release steps need TensorFlow, a separate venv, emulation or
ten minutes of wall clock (``calibration_sensitivity.py``, ``peer_fer.py``, ``device_pipeline.py --duration
600``, ``ckplus_subject_vs_random.py``, ``voice_seed_protocols.py``, ``training_at_scale.py``, the aarch64
scripts, the training scripts): they are not re-run here; their committed results are included and dated in the
README (copied into ``--out`` when it is not benchmarks/results). ``--quick`` uses small slices (about 200 faces,
42 clips, 50 latency calls), skips the trained models and the tflite-runtime venv, and says so in its README;
``--out`` keeps CI away from the committed results.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "suite"))

import face_fer2013  # noqa: E402
import fusion_pseudo_paired  # noqa: E402
import latency_matrix  # noqa: E402
import results_readme  # noqa: E402
import summary_plots  # noqa: E402
import voice_heldout  # noqa: E402
import voice_robustness  # noqa: E402
import voice_transfer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# Results of release steps (and records) that this runner includes but does not regenerate.
RELEASE = {
    "calibration_sensitivity": ("release/calibration_sensitivity.py (re-exports with TensorFlow)",
                                ["release/calibration_sensitivity.json", "release/calibration_sensitivity.md",
                                 "release/calibration_sensitivity_voice.json",
                                 "release/calibration_sensitivity_voice.md"]),
    "peer_fer": ("experiments/peer_fer.py (builds its own venv for fer)",
                 ["experiments/peer_fer.json", "experiments/peer_fer.md"]),
    "device_pipeline": ("robustness/device_pipeline.py --duration 600 (10 minutes)",
                        ["robustness/device_pipeline.json", "robustness/device_pipeline.md"]),
    "ckplus": ("experiments/ckplus_subject_vs_random.py (trains)",
               ["experiments/ckplus_subject_vs_random.json", "experiments/ckplus_subject_vs_random.md"]),
    "seed_protocols": ("experiments/voice_seed_protocols.py (trains)",
                       ["experiments/voice_seed_protocols.json", "experiments/voice_seed_protocols.md"]),
    "aarch64": ("experiments/aarch64_env.sh, aarch64_smoke.py, aarch64_cost.py (qemu-aarch64, ~50 min)",
                [f"experiments/{f}" for f in ("aarch64.json", "aarch64.md", "aarch64_smoke.json",
                                              "aarch64_smoke_voice.json", "aarch64_findings.md")]),
    "fuzz": ("robustness/fuzz.py (10,500 fuzzed inputs in watchdogged workers, ~5 min)",
             ["robustness/fuzz.json", "robustness/fuzz.md"]),
    "soak": ("robustness/soak.py (edgeemo run for 10 minutes)",
             ["robustness/soak.json", "robustness/soak.md", "robustness/soak.png"]),
    "fault_injection": ("robustness/fault_injection.py (11 faults x 5 repeats against a running daemon, ~15 min)",
                        ["robustness/fault_injection.json", "robustness/fault_injection.md"]),
    "training_at_scale": ("experiments/training_at_scale.py (trains on 100,000 synthetic faces and 20,000 clips, "
                          "~15 min)", ["experiments/training_at_scale.json", "experiments/training_at_scale.md"]),
    "training": ("release/train_face_models.sh, release/train_voice_models.sh (CPU hours)",
                 ["release/training", "experiments/training", "experiments/voice_augmentation_runs.md",
                  "experiments/face_accuracy_attempts.md"]),
}
# Trained, not shipped: (result name, kind, model files in runs/, note, sets)
TRAINED = [
    ("face_mobilenetv3_fer2013", "face",
     [f"runs/export-fer-mobilenetv3/face-mobilenetv3-{v}" for v in
      ("float.tflite", "int8.tflite", "float.onnx", "int8.onnx")],
     "MobileNetV3Small (0.94M params, 48x48 upsampled to 96 in-graph), trained from scratch for 12 epochs only "
     "(CPU budget; cosine LR); not shipped. Model files are in runs/ (not committed).", None),
    ("voice_recurrent", "voice",
     [f"runs/export-voice-ravdess-{a}/voice-{a}-{v}" for a in ("crnn", "lstm")
      for v in ("float.tflite", "int8.tflite", "float.onnx", "int8.onnx")],
     "Recurrent architectures, RAVDESS actors 01-16 (random validation speakers), not shipped. crnn: early-stopped "
     "run; lstm: training stopped by hand at epoch 21 of 60 (undertrained). TFLite files have the LSTMs unrolled "
     "into int8 ops; the int8 ONNX files use dynamic quantization (static QDQ would leave LSTM in float). Model "
     "files are in runs/.", ["ravdess_17-20"]),
    ("voice_multicorpus", "voice",
     [f"runs/export-voice-multi-conv1d/voice-multi-{v}" for v in
      ("float.tflite", "int8.tflite", "float.onnx", "int8.onnx")],
     "Conv1D trained on RAVDESS 01-16 + CREMA-D 1001-1008 + TESS + SAVEE (validation speakers RAVDESS 15-16, "
     "CREMA-D 1008, SAVEE JE); not shipped: it is worse on RAVDESS 17-20 than the RAVDESS-only model. Model files "
     "are in runs/ (not committed).", ["ravdess_17-20", "cremad_1009-1010"]),
]


def trained_files(name: str) -> list[str]:
    """Result files (JSON, markdown, plot folders) of a trained model's bench."""
    if name.startswith("face"):
        return [f"suite/{name}_publictest.json", f"suite/{name}_publictest.md", f"suite/{name}"]
    sets = next(t[4] for t in TRAINED if t[0] == name) or []
    return [f"suite/{f}" for s in sets for f in (f"{name}_{s}.json", f"{name}_{s}.md")] + [f"suite/{name}"]


@dataclass
class Step:
    """One step of the suite and what became of it."""

    key: str
    title: str
    script: str
    status: str = "pending"
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    note: str = ""


def copy_committed(files: list[str], out: Path) -> list[str]:
    """Copy committed result files/folders into ``out`` (when it is not the results folder)."""
    copied = []
    for name in files:
        src, dst = RESULTS / name, out / name
        if not src.exists():
            continue
        if src.resolve() != dst.resolve():
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True)
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dst)
        copied.append(name)
    return copied


def git_info() -> dict[str, Any]:
    """HEAD commit and how many paths differ from it in the (shared) working tree."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "subject": git("log", "-1", "--format=%s")[:100],
            "uncommitted_paths": len(git("status", "--porcelain", "--untracked-files=no").splitlines())}


def versions() -> dict[str, str]:
    """Versions of the packages the benchmarks use."""
    out = {"python": sys.version.split()[0]}
    for dist in ("edgeemo", "numpy", "opencv-python-headless", "ai-edge-litert", "onnxruntime", "scipy",
                 "python_speech_features", "soundfile", "matplotlib", "rich"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def run_suite(out: Path, quick: bool, progress: Callable[[str, str], None]) -> dict[str, Any]:
    """Run every step into ``out``; return suite.json's content. ``progress(step, message)`` reports."""
    from edgeemo.bench import machine_info

    suite_out = out / "suite"
    suite_out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    load_start = list(os.getloadavg())
    steps: list[Step] = []

    def step(key: str, title: str, script: str, fn: Callable[[Callable[[str], None]], list[str]]) -> Step:
        s = Step(key, title, script)
        steps.append(s)
        progress(key, "running")
        t0 = time.perf_counter()
        s.outputs = fn(lambda msg: progress(key, msg))
        s.seconds = time.perf_counter() - t0
        s.status = s.status if s.status != "pending" else "ran"
        progress(key, f"done in {s.seconds:.0f} s")
        return s

    step("face", "Face accuracy and speed: FER2013 PublicTest", "suite/face_fer2013.py",
         lambda say: (face_fer2013.run(suite_out, quick=quick, say=say),
                      ["suite/face_fer2013_publictest.json", "suite/face_fer2013_publictest.md",
                       "suite/face_fer2013/"])[1])

    def voice(say: Callable[[str], None]) -> list[str]:
        reports = voice_heldout.run(suite_out, quick=quick, say=say)
        return [f"suite/{f}" for s in reports for f in (f"voice_{s}.json", f"voice_{s}.md", f"voice/{s}/")]

    step("voice", "Voice accuracy and speed: RAVDESS 17-20, CREMA-D 1009-1010", "suite/voice_heldout.py", voice)
    step("voice_transfer", "Voice transfer: unseen speakers of every corpus, UAR and majority class",
         "suite/voice_transfer.py",
         lambda say: (voice_transfer.run(suite_out, quick=quick, say=say),
                      ["suite/voice_transfer.json", "suite/voice_transfer.md"])[1])
    step("voice_robustness", "Voice through simulated capture: noise, rooms, microphones, telephone",
         "suite/voice_robustness.py",
         lambda say: (voice_robustness.run(["voice-float", "voice"], quick=quick, out=suite_out,
                                                   previous=voice_transfer.PREVIOUS),
                      ["suite/voice_robustness.json", "suite/voice_robustness.md",
                       "suite/plots/voice_robustness.png"])[1])

    for name, kind, files, note, sets in TRAINED:
        def trained(say: Callable[[str], None], name=name, kind=kind, files=files, note=note, sets=sets) -> list[str]:
            s = steps[-1]
            if quick:
                s.status, s.note = "skipped (--quick): committed result included", "not re-run"
                return copy_committed(trained_files(name), out)
            if not all((ROOT / f).is_file() for f in files):
                s.status = "kept: committed result (model files not in runs/ on this machine)"
                return copy_committed(trained_files(name), out)
            if kind == "face":
                face_fer2013.run(suite_out, files, name, runs=300, note=note, say=say)
            else:
                voice_heldout.run(suite_out, files, name, sets, runs=200, note=note, say=say)
            return trained_files(name)

        step(f"trained:{name}", f"Trained, not shipped: {name}",
             "suite/face_fer2013.py / suite/voice_heldout.py --models", trained)

    step("latency", "Speed and size per backend and thread count; front ends", "suite/latency_matrix.py",
         lambda say: (latency_matrix.run(suite_out, quick=quick, say=say),
                      ["suite/latency.json", "suite/latency.md", "suite/latency/"])[1])
    step("fusion", "Fusion on pseudo-paired held-out data", "suite/fusion_pseudo_paired.py",
         lambda say: (fusion_pseudo_paired.run(suite_out, quick=quick, say=say),
                      ["suite/fusion_pseudo_paired.json", "suite/fusion_pseudo_paired.md", "suite/fusion/"])[1])

    for key, (script, files) in RELEASE.items():
        def release(say: Callable[[str], None], files=files) -> list[str]:
            steps[-1].status = "release step, not re-run: committed result included"
            return copy_committed(files, out)

        step(f"release:{key}", f"Release step: {key}", script, release)

    plots: dict[str, Any] = {}

    def summary(say: Callable[[str], None]) -> list[str]:
        plots.update(summary_plots.run(suite_out, quick=quick))
        return [f"suite/{p}" for p in plots["plots"]]

    step("plots", "Pareto and per-class int8 plots", "suite/summary_plots.py", summary)

    suite = {
        "command": ".venv/bin/python benchmarks/run_all.py" + (" --quick" if quick else "")
        + ("" if out.resolve() == RESULTS.resolve() else f" --out {out}"),
        "quick": quick,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "seconds": time.perf_counter() - t_start,
        "git": git_info(),
        "machine": machine_info(),
        "loadavg_start": load_start,
        "loadavg_end": list(os.getloadavg()),
        "versions": versions(),
        "steps": [s.__dict__ for s in steps],
        "summary_plots": plots,
    }
    suite["stale_results"] = results_readme.stale_results(out)
    (out / "suite.json").write_text(json.dumps(suite, indent=1) + "\n")
    (out / "README.md").write_text(results_readme.render_readme(out, suite))
    return suite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Smoke run on small slices (< 90 s); for CI.")
    parser.add_argument("--out", type=Path, default=RESULTS, help="Results folder (default: benchmarks/results).")
    args = parser.parse_args()
    if args.quick and args.out.resolve() == RESULTS.resolve():
        parser.error("--quick writes smoke numbers: give --out (a scratch folder), not the committed results")
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[step]}"), TextColumn("{task.description}"),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task("starting", step="suite", total=None)

        def progress(step_key: str, message: str) -> None:
            bar.update(task, description=message, step=step_key)
            if message.startswith("done"):
                bar.console.log(f"{step_key}: {message}")

        suite = run_suite(args.out, args.quick, progress)
    console.print(f"wrote {args.out / 'README.md'} in {suite['seconds']:.0f} s")


if __name__ == "__main__":
    main()
