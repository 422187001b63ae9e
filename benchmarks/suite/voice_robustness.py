"""Voice models through simulated capture: noise, rooms, cheap microphones, gain and clipping, telephone.

    .venv/bin/python benchmarks/suite/voice_robustness.py [--models voice-float,voice] [--quick]

Held-out clips (RAVDESS actors 17-20 and CREMA-D actors 1009-1010: never trained or tuned on)
go through one simulated capture condition at a time, then through each model exactly as
``edgeemo bench`` feeds it (THE front end from the model's manifest; a model that adapts to
its speaker hears each speaker's clips in a seeded order with running statistics, and every
clip of a speaker goes through the same room / microphone, as on a device). Conditions:

- additive noise at 20 / 10 / 5 / 0 dB SNR (relative to the active-speech level): white,
  pink, and babble made from five streams of *other* held-out clips (other speakers);
- room reverberation, RT60 0.3 / 0.6 / 0.9 s (pyroomacoustics shoebox rooms, talker 1-3 m
  from the microphone; the measured RT60 of each simulated room is in the JSON);
- a cheap microphone (300 Hz - 4 kHz band and a +8 dB peak at 2.5 kHz), gain -20 dB,
  gain +20 dB with hard clipping at full scale, and an 8 kHz telephone path (300-3400 Hz,
  G.711 mu-law).

The transforms are ``edgeemo.train.voice_augment``'s, with fixed parameters and seeds that
training never draws (training rooms come from another seed). Writes
``benchmarks/results/suite/voice_robustness.{json,md}`` and a plot of accuracy per condition.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # voice_transfer, run as a script or from run_all

from edgeemo.audio import load_audio
from edgeemo.labels import EMOTIONS
from edgeemo.metrics import classification_report
from edgeemo.predict import open_voice_model
from edgeemo.train.voice_augment import (
    add_noise,
    band_limit,
    gain_and_clip,
    make_babble,
    peaking_eq,
    pink_noise,
    reverberate,
    room_impulse_response,
    telephone,
)
from edgeemo.voice import SpeakerState, preprocess_clip
from edgeemo.voice_datasets import load_voice, select_speakers

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "suite"
SETS = (("ravdess", "17,18,19,20"), ("cremad", "1009,1010"))
SNRS = (20, 10, 5, 0)
RT60S = (0.3, 0.6, 0.9)
SEED = 20261207  # not a training seed


def conditions() -> list[str]:
    names = ["clean"]
    names += [f"{kind} {snr} dB" for kind in ("white", "pink", "babble") for snr in SNRS]
    names += [f"reverb RT60 {rt} s" for rt in RT60S]
    names += ["cheap microphone", "gain -20 dB", "gain +20 dB, clipped", "telephone 8 kHz"]
    return names


def make_rooms() -> dict[float, tuple[np.ndarray, float]]:
    """One simulated room per RT60 (fixed seed), with its measured RT60.

    Sabine's formula underestimates the decay of an image-source shoebox (a 0.6 s target
    measures about 1.3 s), so the Sabine target of each room is searched on a grid until the
    *measured* RT60 (pyroomacoustics' Schroeder integration) is closest to the one asked for.
    """
    import pyroomacoustics as pra

    rooms = {}
    for rt in RT60S:
        best: tuple[float, np.ndarray, float] | None = None
        for target in np.linspace(0.2, rt, 9):
            rng = np.random.default_rng(SEED + int(rt * 10))  # the same room geometry for every target
            try:
                h = room_impulse_response(float(target), rng)
            except ValueError:  # too little absorption possible for so short a decay in this room
                continue
            measured = float(pra.experimental.measure_rt60(h, fs=16000))
            if best is None or abs(measured - rt) < abs(best[2] - rt):
                best = (float(target), h, measured)
        assert best is not None
        rooms[rt] = (best[1], best[2])
    return rooms


def capture(x: np.ndarray, condition: str, rng: np.random.Generator, babble: np.ndarray,
            rooms: dict[float, tuple[np.ndarray, float]]) -> np.ndarray:
    """One clip through one simulated capture ``condition``."""
    if condition == "clean":
        return x
    if condition.endswith(" dB") and condition.split()[0] in ("white", "pink", "babble"):
        kind, snr = condition.split()[0], float(condition.split()[1])
        if kind == "white":
            noise = rng.standard_normal(len(x)).astype(np.float32)
        elif kind == "pink":
            noise = pink_noise(len(x), rng)
        else:
            start = int(rng.integers(len(babble) - len(x)))
            noise = babble[start : start + len(x)]
        return np.clip(add_noise(x, noise, snr), -1, 1)
    if condition.startswith("reverb"):
        return np.clip(reverberate(x, rooms[float(condition.split()[2])][0]), -1, 1)
    if condition == "cheap microphone":
        return np.clip(peaking_eq(band_limit(x, 300.0, 4000.0), 2500.0, 8.0), -1, 1)
    if condition == "gain -20 dB":
        return gain_and_clip(x, -20.0)
    if condition == "gain +20 dB, clipped":
        return gain_and_clip(x, 20.0, 1.0)
    if condition == "telephone 8 kHz":
        return telephone(x)
    raise ValueError(condition)


def run(models: list[str], quick: bool = False, out: Path = RESULTS, previous: str | None = None) -> dict[str, Any]:
    """Score ``models`` (and the int8 voice model of git revision ``previous``) under every condition."""
    import tempfile

    from voice_transfer import PREVIOUS, PREVIOUS_LABEL, extract_previous

    if previous:
        tmp = Path(tempfile.mkdtemp(prefix="edgeemo-previous-voice-"))
        int8 = next(p for p in extract_previous(previous, tmp) if p.name == "voice-int8.tflite")
        models = [*models, str(int8)]
    prev_label = PREVIOUS_LABEL if previous == PREVIOUS else f"previous shipped ({previous})"
    labels = {m: (f"{prev_label}, int8" if previous and m == models[-1] else m) for m in models}
    clips = []
    for corpus, speakers in SETS:
        ds = select_speakers(load_voice(DATA / corpus), speakers.split(","))
        if quick:
            ds = ds.first_per_class(3)
        clips += [(p, int(y), str(g)) for p, y, g in zip(ds.paths, ds.labels, ds.groups, strict=True)]
    audio = {p: load_audio(p)[0] for p, _, _ in clips}
    rooms = make_rooms()
    opened = {labels[m]: open_voice_model(m, threads=1) for m in models}
    models = [labels[m] for m in models]
    results: dict[str, Any] = {}
    t0 = time.time()
    for cond in conditions() if not quick else ["clean", "white 10 dB", "reverb RT60 0.6 s", "telephone 8 kHz"]:
        results[cond] = {}
        for name, model in opened.items():
            pre = model.preprocessing
            rng = np.random.default_rng(SEED)
            order = rng.permutation(len(clips))  # the order clips are heard in (adaptation is causal)
            states: dict[str, SpeakerState | None] = {}
            ys, preds, no_speech = [], [], 0
            for i in order:
                path, y, speaker = clips[i]
                if speaker not in _babble_cache:  # babble from the other held-out speakers' clips only
                    others = [audio[p] for p, _, s in clips if s != speaker]
                    babble_rng = np.random.default_rng(SEED + zlib.crc32(speaker.encode()))
                    _babble_cache[speaker] = make_babble(others, 5, 30.0, babble_rng)
                babble = _babble_cache[speaker]
                x = capture(audio[path], cond, np.random.default_rng(SEED + int(i)), babble, rooms)
                state = states.setdefault(speaker, pre.new_speaker())
                inp = preprocess_clip(x, pre, state)
                if inp is None:
                    no_speech += 1
                    continue
                ys.append(y)
                preds.append(int(model.canonical_index[int(np.argmax(model.predict(inp[None])[0]))]))
            rep = classification_report(np.asarray(ys), np.asarray(preds), EMOTIONS)
            results[cond][name] = {"accuracy": rep["accuracy"], "uar": rep["uar"], "n": len(ys),
                                   "no_speech": no_speech}
            print(f"{cond:24s} {name:28s} {rep['accuracy']:.2%} (UAR {rep['uar']:.3f}, {len(ys)} clips, "
                  f"{no_speech} no speech)", flush=True)
    report = {
        "models": {m: {**_model_info(opened[m]), **({"path": f"git show {previous}:edgeemo/models/voice/"
                                                           "voice-int8.tflite"} if "previous" in m else {})}
                   for m in models},
        "sets": [f"{c} speakers {s}" for c, s in SETS],
        "models_sha256": {m: _model_info(opened[m])["sha256"] for m in models},
        "rooms_measured_rt60_s": {str(rt): v[1] for rt, v in rooms.items()},
        "seed": SEED,
        "quick": quick,
        "previous": previous,
        "seconds": round(time.time() - t0, 1),
        "results": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "voice_robustness.json").write_text(json.dumps(report, indent=2))
    (out / "voice_robustness.md").write_text(render(report))
    plot(report, out / "plots" / "voice_robustness.png")
    return report


_babble_cache: dict[str, np.ndarray] = {}


def _model_info(model: Any) -> dict[str, Any]:
    from edgeemo.manifest import sha256_of

    return {"path": str(model.path.relative_to(ROOT)) if model.path.is_relative_to(ROOT) else str(model.path),
            "sha256": sha256_of(model.path),
            "quantization": model.quantization,
            "adapts": model.preprocessing.adaptation is not None}


def render(report: dict[str, Any]) -> str:
    models = list(report["models"])
    clean = report["results"]["clean"]
    lines = [
        "# Voice through simulated capture (held-out speakers)",
        "",
        "Command: `.venv/bin/python benchmarks/suite/voice_robustness.py"
        + (" --quick" if report["quick"] else "") + f" --models {','.join(m for m in models if 'previous' not in m)}"
        + (f" --previous {report['previous']}" if report.get("previous") else "") + "`  ",
        f"Clips: {'; '.join(report['sets'])} (never trained or tuned on). Each condition is applied to every "
        "clip; models that adapt to the speaker hear each speaker's clips in a seeded order "
        "(one room / microphone per condition, as on a device). Accuracy (drop from clean, points).",
        "Simulated rooms, measured RT60: "
        + ", ".join(f"{k} s -> {v:.2f} s" for k, v in report["rooms_measured_rt60_s"].items()) + ".",
        "",
        "| condition | " + " | ".join(m if report["models"][m]["quantization"] in m else
                                     f"{m} ({report['models'][m]['quantization']})" for m in models) + " |",
        "|---|" + "---|" * len(models),
    ]
    for cond, row in report["results"].items():
        cells = []
        for m in models:
            acc = row[m]["accuracy"]
            drop = (acc - clean[m]["accuracy"]) * 100
            cells.append(f"{acc:.2%}" + ("" if cond == "clean" else f" ({drop:+.1f})"))
        lines.append(f"| {cond} | " + " | ".join(cells) + " |")
    lines += ["", "Model files: " + "; ".join(f"`{m}` sha256 {i['sha256'][:12]}" for m, i in
                                               report["models"].items()), ""]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conds = list(report["results"])
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.8 / len(report["models"])
    for k, m in enumerate(report["models"]):
        ax.bar(np.arange(len(conds)) + k * width, [report["results"][c][m]["accuracy"] for c in conds], width,
               label=m)
    ax.set_xticks(np.arange(len(conds)) + 0.4 - width / 2, conds, rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("accuracy")
    ax.set_title("Voice on held-out speakers through simulated capture")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="voice-float,voice")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    from voice_transfer import PREVIOUS

    parser.add_argument("--previous", default=PREVIOUS,
                        help="Also the int8 voice model of this git revision (default: the model shipped before); "
                             "'' = none.")
    args = parser.parse_args()
    run(args.models.split(","), args.quick, args.out, args.previous or None)
