"""Training data that does not fit in memory: streamed (--stream, --stream-cache) against today's in-memory path.

    .venv/bin/python benchmarks/experiments/training_at_scale.py    # 25,000 / 100,000 faces, 5,000 / 20,000 clips
    .venv/bin/python benchmarks/experiments/training_at_scale.py --quick --out /tmp/scale    # a plumbing check

Generates a synthetic FER2013-like image folder (48x48 gray JPEGs in train/<label>/, 1,000 in publictest/) and a
synthetic CREMA-D-like corpus (1.2 s voiced FLAC clips, 200 per actor) under --scratch (deleted afterwards), at two
sizes each, and trains two epochs on each, three ways: in memory (today), streamed, and streamed with
--stream-cache (epoch 1 writes the cache, epoch 2 reads it). Every training runs in a fresh process (its peak RSS is
its own) through the real trainer
(``edgeemo.train.face.train_face`` / ``edgeemo.train.voice.train_voice``: reading, splits, THE preprocessing,
augmentation, tf.data, fit with checkpoints, test metrics), with a tiny model in place of the architecture: this
measures the data path, which the real models would hide behind their own compute. Voice features are computed
once per size into the feature cache (timed apart); both voice paths read that cache. Runs alternate between the
two paths so that the load of this shared machine falls on both alike.

Targets (issue 29): peak RSS of the streamed path flat in dataset size (within 20% between the two sizes), and
its throughput within 10% of the in-memory path (compared here for one epoch, the first, and for the epochs after
it, the second). Results: benchmarks/results/experiments/training_at_scale.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "experiments"
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
CREMA = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
RATE = 16000
CLIPS_PER_ACTOR = 200


def make_faces(root: Path, n: int, publictest: int = 1000) -> None:
    """``n`` training faces and ``publictest`` test faces, 48x48 gray JPEG, a blurred blob per class."""
    import cv2

    rng = np.random.default_rng(n)
    yy, xx = np.mgrid[:48, :48]
    for split, count in (("train", n), ("publictest", publictest)):
        for k in range(count):
            label = k % len(LABELS)
            folder = root / split / LABELS[label]
            if k < len(LABELS):
                folder.mkdir(parents=True, exist_ok=True)
            cx, cy = 12 + 4 * label + rng.normal(0, 3), 24 + rng.normal(0, 3)
            img = 200 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 120) + rng.normal(60, 25, (48, 48))
            ok, buf = cv2.imencode(".jpg", np.clip(img, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
            (folder / f"{split}_{k:07d}.jpg").write_bytes(buf.tobytes())


def make_clips(root: Path, n: int, per_actor: int = CLIPS_PER_ACTOR) -> None:
    """``n`` clips of CREMA-D-style names, ``per_actor`` per actor: a voiced tone whose pitch and
    loudness follow the emotion, in noise, with silence around it."""
    import soundfile as sf

    rng = np.random.default_rng(n)
    t = np.arange(int(1.2 * RATE)) / RATE
    root.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        actor, emotion = 1001 + k // per_actor, k % len(CREMA)
        sentence = "S" + chr(65 + (k // len(CREMA)) % 26) + chr(65 + (k // (len(CREMA) * 26)) % 26)
        f0 = 110 + 25 * emotion + (actor % 7) * 6 + rng.normal(0, 5)
        voice = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in (1, 2, 3, 4)) * (0.05 + 0.02 * emotion)
        clip = np.concatenate([np.zeros(RATE // 4), voice, np.zeros(RATE // 4)])
        clip = clip + rng.normal(0, 0.003, len(clip))
        sf.write(root / f"{actor}_{sentence}_{CREMA[emotion]}_XX.flac", clip.astype(np.float32), RATE)


PATHS = {"memory": "in memory", "stream": "stream", "cache": "stream + cache"}
EPOCHS = 2


def child(task: str, data: Path, out: Path, path: str, features: Path) -> dict[str, Any]:
    """One training run in this process (with a tiny model); what it cost."""
    stream, cache = path != "memory", str(out.parent / f"{out.name}-cache") if path == "cache" else None
    import keras

    from edgeemo.train.run import TrainSettings

    t0 = time.perf_counter()
    if task == "face":
        import edgeemo.train.face as face

        def tiny_face(arch: str, input_shape: tuple, classes: int, *rest: Any) -> keras.Model:
            inputs = keras.Input(input_shape)
            x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
            x = keras.layers.GlobalAveragePooling2D()(x)
            return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax", dtype="float32")(x))

        face.build_face_model = tiny_face
        face.train_face(data, out, settings=TrainSettings(epochs=EPOCHS, patience=EPOCHS, stream=stream,
                                                          stream_cache=cache))
        n = json.loads((out / "config.json").read_text())["split"]["train"]["n"]
    else:
        import edgeemo.train.voice as voice

        def tiny_voice(arch: str, input_shape: tuple, classes: int, *rest: Any) -> keras.Model:
            inputs = keras.Input(input_shape)
            x = keras.layers.Conv1D(8, 5, strides=4, activation="relu")(inputs)
            x = keras.layers.GlobalAveragePooling1D()(x)
            return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax", dtype="float32")(x))

        voice.build_voice_model = tiny_voice
        settings = TrainSettings(epochs=EPOCHS, batch_size=32, patience=15, lr_patience=4, stream=stream,
                                 stream_cache=cache)
        voice.train_voice([data], out, arch="conv1d", settings=settings, feature_cache=features,
                          balance="corpus-class")
        n = json.loads((out / "config.json").read_text())["split"]["train"]["n"]
    history = (out / "history.csv").read_text().splitlines()
    rows = [dict(zip(history[0].split(","), line.split(","), strict=True)) for line in history[1:]]
    seconds = [float(r["epoch_seconds"]) for r in rows]
    shutil.rmtree(out.parent / f"{out.name}-cache", ignore_errors=True)
    return {"seconds_total": time.perf_counter() - t0, "epoch_seconds": seconds, "n_train": n,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_once(task: str, data: Path, out: Path, path: str, features: Path) -> dict[str, Any]:
    """``child`` in a fresh process."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, __file__, "--child", task, "--data", str(data), "--out", str(out),
           "--cache", str(features), "--path", path]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if proc.returncode != 0:
        raise SystemExit(f"{task} run failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(task: str, data: Path, out: Path, features: Path, repeats: int) -> list[dict[str, Any]]:
    """Every path ``repeats`` times, alternating; per path the fastest time of each kind and the largest peak
    RSS (the other jobs on this machine only ever add time, and memory is the worst case)."""
    tries: dict[str, list[dict[str, Any]]] = {p: [] for p in PATHS}
    loads: dict[str, list[float]] = {p: [] for p in PATHS}
    for _ in range(repeats):
        for path in PATHS:
            loads[path].append(os.getloadavg()[0])
            tries[path].append(run_once(task, data, out, path, features))
    results = []
    for path, runs in tries.items():
        n = runs[0]["n_train"]
        first, second = (min(r["epoch_seconds"][k] for r in runs) for k in (0, 1))
        one_epoch = min(r["seconds_total"] - r["epoch_seconds"][1] for r in runs)  # reading the data, epoch 1, test
        result = {"path": PATHS[path], "n_train": n, "repeats": repeats, "epoch_seconds": [first, second],
                  "seconds_one_epoch_total": one_epoch, "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
                  "per_s_epoch1": n / first, "per_s_epoch2": n / second, "per_s_one_epoch_total": n / one_epoch,
                  "loadavg_1min_before": loads[path], "tries": runs}
        print(f"{task} {result['path']:>14} n={n:>6}: epochs {first:.1f} s, {second:.1f} s; load + epoch 1 + test "
              f"{one_epoch:.1f} s; peak RSS {result['peak_rss_mb']:.0f} MB", flush=True)
        results.append(result)
    return results


def features(data: Path, cache: Path) -> dict[str, Any]:
    """Compute the voice feature cache once (spawned workers; timed, their peak RSS from the OS)."""
    code = ("import resource, sys, time; from pathlib import Path; from edgeemo.audio import AudioFeatures; "
            "from edgeemo.train.voice_bank import FeatureBank; from edgeemo.voice_datasets import load_voice\n"
            "if __name__ == '__main__':\n"
            "    ds = load_voice(Path(sys.argv[1])); t = time.perf_counter()\n"
            "    FeatureBank(Path(sys.argv[2]), AudioFeatures(), seed=0).rows(ds, False, 'all', load=False)\n"
            "    mb = [resource.getrusage(w).ru_maxrss / 1024\n"
            "          for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]\n"
            "    print(len(ds), time.perf_counter() - t, *mb)")
    proc = subprocess.run([sys.executable, "-c", code, str(data), str(cache)], capture_output=True, text=True,
                          check=True)
    n, seconds, rss, workers = proc.stdout.split()
    return {"clips": int(n), "seconds": float(seconds), "clips_per_s": int(n) / float(seconds),
            "peak_rss_mb": float(rss), "workers_peak_rss_mb": float(workers)}


def report(doc: dict[str, Any]) -> str:
    lines = ["# Training at scale: streamed vs in-memory data", "",
             f"{doc['machine']['cpu']} ({doc['machine']['cores']} cores, shared with other jobs: the load average "
             "before each run is in the JSON). CPU only: no GPU was available.", "", doc["note"], ""]
    for task, unit in (("face", "images"), ("voice", "clips")):
        part = doc[task]
        lines += [f"## {task.capitalize()} ({unit})", "", f"`{part['command']}`, {part['date']}", "",
                  f"| training {unit} | path | epoch 1 s | epoch 2 s | {unit}/s epoch 1 | {unit}/s epoch 2 | "
                  f"load + epoch 1 + test s | peak RSS MB |", "|---|---|---|---|---|---|---|---|"]
        for r in part["runs"]:
            lines.append(f"| {r['n_train']:,} | {r['path']} | {r['epoch_seconds'][0]:.1f} | "
                         f"{r['epoch_seconds'][1]:.1f} | {r['per_s_epoch1']:,.0f} | {r['per_s_epoch2']:,.0f} | "
                         f"{r['seconds_one_epoch_total']:.1f} | {r['peak_rss_mb']:,.0f} |")
        v = part["verdict"]
        met = {True: "met", False: "NOT met"}
        lines += ["", f"- Peak RSS, largest vs smallest size: stream {v['rss_ratio']['stream']:.2f}x, stream + cache "
                  f"{v['rss_ratio']['stream + cache']:.2f}x (target at most 1.20x: "
                  f"{met[v['rss_flat']]}); in memory {v['rss_ratio']['in memory']:.2f}x.",
                  f"- Throughput at the largest size against the in-memory path's same epoch: one epoch (the first), "
                  f"streamed {100 * v['epoch1']['stream']:.0f}%, with the cache "
                  f"{100 * v['epoch1']['stream + cache']:.0f}% (target at least 90%: {met[v['one_epoch_ok']]}); "
                  f"later epochs (the second), streamed "
                  f"{100 * v['epoch2']['stream']:.0f}%, with the cache {100 * v['epoch2']['stream + cache']:.0f}% "
                  f"({met[v['later_epochs_ok']]}); reading the data + one epoch + test, streamed "
                  f"{100 * v['one_epoch_total']['stream']:.0f}%."]
        if task == "voice":
            lines += ["- Features computed once per size into the per-speaker cache, which every path reads: "
                      + ", ".join(f"{f['clips']:,} clips in {f['seconds']:.0f} s ({f['clips_per_s']:.0f} clips/s, "
                                  f"peak RSS {f['peak_rss_mb']:.0f} MB, workers {f['workers_peak_rss_mb']:.0f} MB)"
                                  for f in part["features"]) + "."]
        lines.append("")
    return "\n".join(lines)


def verdict(runs: list[dict[str, Any]]) -> dict[str, Any]:
    by = {(r["path"], r["n_train"]): r for r in runs}
    small, large = min(r["n_train"] for r in runs), max(r["n_train"] for r in runs)
    rss = {p: by[p, large]["peak_rss_mb"] / by[p, small]["peak_rss_mb"] for p in PATHS.values()}
    ratio = {key: {p: by[p, large][key] / by["in memory", large][key] for p in ("stream", "stream + cache")}
             for key in ("per_s_epoch1", "per_s_epoch2", "per_s_one_epoch_total")}
    return {"rss_ratio": rss, "rss_flat": max(rss["stream"], rss["stream + cache"]) <= 1.2,
            "epoch1": ratio["per_s_epoch1"], "epoch2": ratio["per_s_epoch2"],
            "one_epoch_total": ratio["per_s_one_epoch_total"], "one_epoch_ok": ratio["per_s_epoch1"]["stream"] >= 0.9,
            "later_epochs_ok": ratio["per_s_epoch2"]["stream + cache"] >= 0.9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 / 8,000 faces and 400 / 1,600 clips")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/edgeemo-scale"))
    parser.add_argument("--only", choices=("face", "voice"), help="re-run one task (the other's results are kept)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each path, alternating (best time kept)")
    parser.add_argument("--child", choices=("face", "voice"))
    parser.add_argument("--data", type=Path)
    parser.add_argument("--cache", type=Path)
    parser.add_argument("--path", choices=tuple(PATHS), default="memory")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.data, args.out, args.path, args.cache)))
        return
    if args.quick and args.out.resolve() == RESULTS.resolve():
        parser.error("--quick: give a scratch --out, not the committed results")
    from edgeemo.bench import machine_info

    faces, clips = ((2000, 8000), (400, 1600)) if args.quick else ((25_000, 100_000), (5_000, 20_000))
    command = ".venv/bin/python benchmarks/experiments/training_at_scale.py" + "".join(
        f" --{k} {v}" for k, v in (("only", args.only), ("repeats", args.repeats)) if v and v != 2) + (
        " --quick" if args.quick else "")
    previous = args.out / "training_at_scale.json"
    doc: dict[str, Any] = json.loads(previous.read_text()) if args.only and previous.exists() else {}
    doc |= {
        "models_sha256": {},  # tiny models trained here, no shipped model
        "machine": machine_info(),
        "note": "Each run: the real trainer for two epochs with a tiny model (one small convolution and the "
                "classifier) in place of the architecture, default augmentation, in a fresh process, every path "
                "two or more times, alternating: the fastest time of each kind and the largest peak RSS are shown "
                "(the JSON has every try and the load average before it); peak RSS is the process's maximum "
                "resident set (TensorFlow itself, about 600 MB, included). An epoch is training + validation "
                "(history.csv's epoch_seconds); per second = training samples / epoch seconds. 'load + epoch 1 + "
                "test' adds reading and splitting the data (the in-memory path decodes and preprocesses everything "
                "there) and the test predictions. With the shipped architectures the model's own compute (about "
                "7 ms per face on this CPU) hides most of the data path.",
    }
    scratch = args.scratch
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        for task, sizes in (("face", faces), ("voice", clips)):
            if args.only and task != args.only:
                continue
            unit = "images" if task == "face" else "clips"
            runs, feats = [], []
            for n in sizes:
                data = scratch / f"{task}-{n}"
                t0 = time.perf_counter()
                if task == "face":
                    make_faces(data, n)
                else:
                    make_clips(data, n, CLIPS_PER_ACTOR // 4 if args.quick else CLIPS_PER_ACTOR)
                print(f"made {n:,} synthetic {unit} in {time.perf_counter() - t0:.0f} s", flush=True)
                cache = scratch / f"features-{n}"
                if task == "voice":
                    feats.append(features(data, cache))
                runs += measure(task, data, scratch / f"run-{task}-{n}", cache, 1 if args.quick else args.repeats)
                shutil.rmtree(data)
                shutil.rmtree(cache, ignore_errors=True)
            doc[task] = {"command": command, "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
                         "sizes": list(sizes), "runs": runs, "verdict": verdict(runs)}
            if task == "voice":
                doc[task]["features"] = feats
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "training_at_scale.json").write_text(json.dumps(doc, indent=1) + "\n")
    if "face" in doc and "voice" in doc:
        (args.out / "training_at_scale.md").write_text(report(doc))
    print(f"wrote {args.out / 'training_at_scale'}.json")


if __name__ == "__main__":
    main()
