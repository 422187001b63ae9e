"""Voice transfer: any voice model on the speakers of every corpus it never trained on, beside the majority class.

    .venv/bin/python benchmarks/suite/voice_transfer.py [--models voice,voice-float] [--previous bd781f5] [--quick]

For each model (``--models``: shipped names or model files with their manifests) and each
corpus of ../shared/data, the clips of the speakers it did not hear go through ``run_bench``
(the same function as ``edgeemo bench``, in this process; a model that adapts to its speaker
hears each speaker's clips in a seeded order, ``adapt=True, seed=0``, as ``edgeemo bench`` does
by default). Candidate speakers (the held-out protocol of ../shared/data/README.md):

- RAVDESS actors 17-20 and CREMA-D actors 1009-1010 (never trained or tuned on by the project);
- SAVEE and TESS: every speaker in the data that the model did not train on.

What a model trained on is read from its manifest (``training.split.train.speakers``,
``val.speakers`` and ``training.data``; a corpus in ``data`` with no speaker list counts as
wholly seen), and ``edgeemo.bench.training_overlap`` checks every scored set again. A set with
no unseen speaker is skipped with a note (TESS has one speaker: a model trained on all four
corpora heard it; its random-split number is a training-run row).

The previous shipped model (``--previous``, a git revision; default the conv1d over MFCC frames of bd781f5,
the model this one replaced) is extracted from git into a temporary folder (its sha256 must match its
manifest; the runtime checks it again) and measured the same way, as the before/after row.

Training runs: every ``benchmarks/results/release/training/<run>/metrics.json`` with a
``per_corpus`` report (``train/voice.py``: leave-one-corpus-out folds, all-corpora runs, the
TESS random split) is rendered with its run name. Writes ``voice_transfer.{json,md}`` under
``--out`` (default benchmarks/results/suite).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from edgeemo.manifest import sha256_of

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "suite"
TRAINING = ROOT / "benchmarks" / "results" / "release" / "training"
MODELS = ("voice", "voice-float")
PREVIOUS = "bd781f5"
PREVIOUS_LABEL = "previous shipped (conv1d on frames, bd781f5)"
PREVIOUS_FILES = ("voice-int8.tflite", "voice-float.tflite")
SEED = 0
QUICK_PER_CLASS = 3  # --quick: the first 3 clips per class of each set
RUNS = 20  # latency calls per model: run_bench times every model; latency is voice_heldout's job, not this table's
# corpus -> (title, fixed held-out speakers or None for every speaker in the data)
CORPORA: dict[str, tuple[str, tuple[str, ...] | None]] = {
    "ravdess": ("RAVDESS", ("17", "18", "19", "20")),
    "cremad": ("CREMA-D", ("1009", "1010")),
    "savee": ("SAVEE", None),
    "tess": ("TESS", None),
}


def manifest_of(spec: str | Path) -> dict[str, Any]:
    """The manifest beside a shipped name or model file."""
    from edgeemo.shipped import resolve_model

    path = resolve_model(spec)
    return json.loads(path.with_name(path.name + ".json").read_text())


def extract_previous(rev: str, folder: Path) -> list[Path]:
    """The voice model files of git revision ``rev`` (int8 and float TFLite with their manifests) in
    ``folder``; each file's sha256 checked against its manifest."""
    out = []
    for name in PREVIOUS_FILES:
        for file in (name, name + ".json"):
            blob = subprocess.run(["git", "show", f"{rev}:edgeemo/models/voice/{file}"], cwd=ROOT,
                                  capture_output=True, check=True).stdout
            (folder / file).write_bytes(blob)
        manifest = json.loads((folder / (name + ".json")).read_text())
        if manifest["sha256"] != sha256_of(folder / name):
            raise RuntimeError(f"{rev}:{name}: sha256 differs from its manifest")
        out.append(folder / name)
    return out


def seen_speakers(manifest: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(``corpus:speaker`` names the model trained or validated on, corpora it trained on with no speaker list)."""
    training = manifest.get("training") or {}
    split = training.get("split") or {}
    default = str(split.get("dataset") or "")
    seen = set()
    for part in ("train", "val"):
        for s in (split.get(part) or {}).get("speakers") or []:
            seen.add(str(s) if ":" in str(s) else f"{default}:{s}")
    data = training.get("data") or []
    corpora = {Path(str(d)).name.lower() for d in ([data] if isinstance(data, str) else data)}
    listed = {s.split(":", 1)[0] for s in seen}
    return seen, corpora - listed


def corpus_speakers(corpus: str) -> list[str]:
    """Every speaker of a corpus folder of ../shared/data (``corpus:speaker``)."""
    from edgeemo.voice_datasets import load_voice

    return load_voice(DATA / corpus).speakers()


def held_out(manifest: dict[str, Any], corpus: str, candidates: Sequence[str]) -> tuple[list[str], str]:
    """(speakers of ``candidates`` the model never heard, a note on the ones left out or why none is left)."""
    title = CORPORA[corpus][0]
    seen, whole = seen_speakers(manifest)
    if corpus in whole:
        return [], f"trained on {title} with no speaker list in its manifest: every {title} speaker counts as seen"
    keep = [s for s in candidates if f"{corpus}:{s}" not in seen]
    left = [s for s in candidates if f"{corpus}:{s}" in seen]
    if not keep:
        if corpus == "tess" and len(candidates) == 1:
            return [], f"trained on the only TESS speaker ({candidates[0]}): see the random-split row"
        return [], f"trained on every {title} speaker here ({', '.join(candidates)})"
    return keep, (f"{', '.join(left)} left out: it trained on them" if left else "")


def run(
    out: Path = RESULTS,
    models: Sequence[str] = MODELS,
    previous: str = PREVIOUS,
    quick: bool = False,
    training_dir: Path = TRAINING,
    threads: int = 1,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Score every model on each corpus's unseen speakers; write ``voice_transfer.{json,md}`` under ``out``."""
    from edgeemo.bench import adaptation_note, machine_info, run_bench
    from edgeemo.predict import open_voice_model
    from edgeemo.shipped import resolve_model

    t0 = time.perf_counter()
    limit = QUICK_PER_CLASS if quick else None
    with tempfile.TemporaryDirectory(prefix="edgeemo-previous-voice-") as tmp:
        rows: list[tuple[str, str]] = [(str(m), str(m)) for m in models]  # (row label, spec)
        if previous:
            files = extract_previous(previous, Path(tmp))
            label = PREVIOUS_LABEL if previous == PREVIOUS else f"previous shipped ({previous})"
            rows += [(f"{label}, {'int8' if 'int8' in f.name else 'float'}", str(f)) for f in files]
        info: dict[str, dict[str, Any]] = {}
        manifests: dict[str, dict[str, Any]] = {}
        for label, spec in rows:
            path = resolve_model(spec)
            model = open_voice_model(spec, threads=1)  # sha256 against the manifest, as every bench does
            manifests[label] = manifest_of(spec)
            training = manifests[label].get("training") or {}
            is_previous = spec.startswith(tmp)
            info[label] = {
                "spec": f"git show {previous}:edgeemo/models/voice/{path.name}" if is_previous else spec,
                "file": str(path.resolve().relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else str(path),
                "sha256": sha256_of(path),
                "quantization": model.quantization,
                "adapts": model.preprocessing.adaptation is not None,
                "adaptation": adaptation_note([model.preprocessing], True, SEED),
                "arch": training.get("arch"),
                "params": training.get("params"),
                "trained_on": [str(d) for d in training.get("data") or []],
                "previous": is_previous,
            }
            del model
        results: dict[str, dict[str, Any]] = {label: {} for label, _ in rows}
        sets: dict[str, Any] = {}
        for corpus, (title, fixed) in CORPORA.items():
            candidates = list(fixed) if fixed else [s.split(":", 1)[1] for s in corpus_speakers(corpus)]
            sets[corpus] = {"title": title, "candidates": candidates}
            groups: dict[tuple[str, ...], list[str]] = {}
            for label, _ in rows:
                keep, note = held_out(manifests[label], corpus, candidates)
                if keep:
                    groups.setdefault(tuple(keep), []).append(label)
                    results[label][corpus] = {"note": note}
                else:
                    results[label][corpus] = {"skipped": note}
                    say(f"{label}: {title} skipped: {note}")
            for speakers, labels in groups.items():
                specs = [dict(rows)[lab] for lab in labels]
                say(f"{title} speakers {','.join(speakers)}: {', '.join(labels)} ...")
                report = run_bench(specs, DATA / corpus, threads=threads, runs=RUNS, warmup=5,
                                   limit_per_class=limit, speakers=list(speakers), adapt=True, seed=SEED,
                                   progress=say).to_dict()
                overlap = report["data"].get("trained_on_this_data") or {}
                for lab, m in zip(labels, report["models"], strict=True):  # results in the order given
                    support = {c: v["support"] for c, v in m["per_class"].items()}
                    top = max(support, key=lambda c: support[c])
                    results[lab][corpus].update({
                        "speakers": list(speakers),
                        "speakers_scored": report["data"]["speakers"],  # --quick: the first clips may be fewer
                        "n": m["n"],
                        "no_speech": report["data"]["no_speech_clips"],
                        "accuracy": m["accuracy"],
                        "uar": m["uar"],
                        "macro_f1": m["macro_f1"],
                        "majority": support[top] / m["n"] if m["n"] else 0.0,
                        "majority_class": top,
                        "classes": sorted(c for c, n in support.items() if n),
                        "adaptation": report["data"]["adaptation"],
                        "trained_on_this_data": overlap.get(m["model"]),
                    })
    report_out = {
        "quick": quick,
        "limit_per_class": limit,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime()),
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": machine_info(),
        "command": command(models, previous, quick, out, training_dir),
        "seed": SEED,
        "adapt": True,
        "previous": previous or None,
        "models": info,
        "models_sha256": {label: m["sha256"] for label, m in info.items()},  # the result stamp
        "sets": sets,
        "results": results,
        "training_runs": training_runs(training_dir),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "voice_transfer.json").write_text(json.dumps(report_out, indent=1) + "\n")
    (out / "voice_transfer.md").write_text(render(report_out))
    return report_out


def command(models: Sequence[str], previous: str, quick: bool, out: Path, training_dir: Path) -> str:
    """The command line that regenerates a report."""
    cmd = ".venv/bin/python benchmarks/suite/voice_transfer.py"
    if list(models) != list(MODELS):
        cmd += f" --models {','.join(map(str, models))}"
    if previous != PREVIOUS:
        cmd += f" --previous '{previous}'"
    if quick:
        cmd += " --quick"
    if out.resolve() != RESULTS.resolve():
        cmd += f" --out {out}"
    if training_dir.resolve() != TRAINING.resolve():
        cmd += f" --training-dir {training_dir}"
    return cmd


def training_runs(folder: Path) -> dict[str, Any]:
    """Every ``<folder>/<run>/metrics.json`` with a per-corpus report, and the leave-one-corpus-out score of
    each family of runs (``<name>-loco-<corpus>``) that has all four folds."""
    runs, ignored = [], []
    for path in sorted(folder.glob("*/metrics.json")) if folder.is_dir() else []:
        try:
            m = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            ignored.append(f"{path.parent.name}: unreadable ({exc.__class__.__name__})")
            continue
        if not isinstance(m, dict) or not isinstance(m.get("per_corpus"), dict):
            ignored.append(f"{path.parent.name}: no per_corpus report")
            continue
        runs.append({"run": path.parent.name, "protocol": m.get("protocol"), "adaptation": m.get("adaptation"),
                     "source": m.get("source"), "n": m.get("n"), "accuracy": m.get("accuracy"), "uar": m.get("uar"),
                     "params": m.get("params"), "per_corpus": m["per_corpus"]})
    families: dict[str, dict[str, float]] = {}
    for r in runs:
        name = r["run"]
        for corpus in CORPORA:
            if name.endswith(f"-loco-{corpus}") and corpus in r["per_corpus"]:
                families.setdefault(name[: -len(f"-loco-{corpus}")], {})[corpus] = r["per_corpus"][corpus]["uar"]
    scores = {f: {"uars": u, "transfer_score": sum(u.values()) / len(u) if len(u) == len(CORPORA) else None}
              for f, u in families.items()}
    try:
        shown = str(folder.resolve().relative_to(ROOT))
    except ValueError:
        shown = str(folder)
    return {"folder": shown, "runs": runs, "ignored": ignored, "leave_one_corpus_out": scores}


def _cell(r: dict[str, Any]) -> str:
    if "skipped" in r:
        return f"skipped: {r['skipped']}"
    return (f"{100 * r['accuracy']:.1f}% / {r['uar']:.3f} / {100 * r['majority']:.1f}% "
            f"(n {r['n']}{', ' + ','.join(r['speakers']) if len(r['speakers']) <= 4 else ''})")


def render(r: dict[str, Any]) -> str:
    """The markdown of voice_transfer.json."""
    corpora = list(r["sets"])
    titles = [r["sets"][c]["title"] for c in corpora]
    lines = [
        "# Voice transfer: every corpus, speakers the model never heard (accuracy beside UAR and the majority class)",
        "",
        f"Command: `{r['command']}`  ",
        f"Date: {r['date']}; machine: {r['machine'].get('cpu')}, {r['machine'].get('cores')} cores; "
        f"{r['seconds']:.0f} s.",
        "",
        *(["**QUICK smoke run: the first "
           f"{r['limit_per_class']} clips per class of each set; not a result.**", ""] if r["quick"] else []),
        "Each model is scored by `run_bench` (as `edgeemo bench`) on the clips of the speakers of each corpus that its "
        "manifest says it did not train or validate on (`training.split.train/val.speakers`, `training.data`): "
        "RAVDESS actors 17-20 and CREMA-D actors 1009-1010 (held out by the project), every SAVEE and TESS speaker "
        "it did not hear. No-speech clips are not scored (counts in the JSON).",
        "",
        "Cell: accuracy / UAR (mean recall over the classes present) / majority-class share "
        "(n scored clips, speakers).",
        "",
        "| model | " + " | ".join(titles) + " | mean UAR (sets scored) |",
        "|---|" + "---|" * (len(corpora) + 1),
    ]
    for label, res in r["results"].items():
        uars = [res[c]["uar"] for c in corpora if "uar" in res[c]]
        mean = f"{sum(uars) / len(uars):.3f} ({len(uars)})" if uars else "–"
        lines.append(f"| {label} | " + " | ".join(_cell(res[c]) for c in corpora) + f" | {mean} |")
    lines += ["", "Accuracy above the majority class (points):", "",
              "| model | " + " | ".join(titles) + " |", "|---|" + "---|" * len(corpora)]
    for label, res in r["results"].items():
        lines.append(f"| {label} | " + " | ".join(
            f"{100 * (res[c]['accuracy'] - res[c]['majority']):+.1f}" if "accuracy" in res[c] else "–"
            for c in corpora) + " |")
    notes = [f"- {label}, {r['sets'][c]['title']}: {res[c]['note']}" for label, res in r["results"].items()
             for c in corpora if res[c].get("note")]
    notes += [f"- **{label}, {r['sets'][c]['title']}: `training_overlap` says it trained on this data: "
              f"{res[c]['trained_on_this_data']}**" for label, res in r["results"].items() for c in corpora
              if res[c].get("trained_on_this_data")]
    if notes:
        lines += ["", *notes]
    lines += ["", "## Models measured", "",
              "| model | file | sha256 | quantization | architecture (parameters) | trained on "
              "| adapts to the speaker |",
              "|---|---|---|---|---|---|---|"]
    for label, m in r["models"].items():
        params = f"{m['params']:,}" if isinstance(m.get("params"), int) else "?"
        lines.append(f"| {label} | `{m['spec'] if m['previous'] else m['file']}` | `{m['sha256'][:16]}` | "
                     f"{m['quantization']} | {m['arch']} ({params}) | {', '.join(m['trained_on']) or '?'} | "
                     f"{'yes' if m['adapts'] else 'no'} |")
    hashes: dict[str, list[str]] = {}
    for label, m in r["models"].items():
        hashes.setdefault(m["sha256"], []).append(label)
    same = [labels for labels in hashes.values() if len(labels) > 1]
    lines += [""] + [f"Same file (sha256): {' = '.join(labels)}." for labels in same]
    lines += ["", "How each model heard the clips (the bench report's `data.adaptation`):", ""]
    lines += [f"- {label}: {m['adaptation']}." for label, m in r["models"].items()]
    lines += ["", *training_section(r["training_runs"], corpora, r["sets"]), ""]
    return "\n".join(lines)


def training_section(t: dict[str, Any], corpora: list[str], sets: dict[str, Any]) -> list[str]:
    """Training runs' per-corpus test results (leave-one-corpus-out and others)."""
    lines = ["## Training runs: leave-one-corpus-out and other protocols (from their metrics.json)", ""]
    if not t["runs"]:
        lines += [f"No training run with a per-corpus report in `{t['folder']}/<run>/metrics.json` yet."]
        lines += [f"Ignored: {'; '.join(t['ignored'])}." if t["ignored"] else ""]
        return lines
    lines += [f"From `{t['folder']}/<run>/metrics.json` (`train/voice.py`'s test report, on that run's test "
              "split). Cell: accuracy / UAR / majority-class share (n).", "",
              "| run | protocol | test speakers / corpora | adaptation | "
              + " | ".join(sets[c]["title"] for c in corpora) + " |",
              "|---|---|---|---|" + "---|" * len(corpora)]
    for run in t["runs"]:
        cells = []
        for c in corpora:
            pc = run["per_corpus"].get(c)
            cells.append("–" if pc is None else f"{100 * pc['accuracy']:.1f}% / {pc['uar']:.3f} / "
                         f"{100 * pc['majority']:.1f}% ({pc['n']})")
        lines.append(f"| {run['run']} | {run['protocol']} | {run['source']} | {run['adaptation']} | "
                     + " | ".join(cells) + " |")
    for family, s in t["leave_one_corpus_out"].items():
        uars = ", ".join(f"{sets[c]['title']} {u:.3f}" for c, u in s["uars"].items())
        score = (f"**{s['transfer_score']:.3f}**" if s["transfer_score"] is not None
                 else f"incomplete ({len(s['uars'])} of {len(corpora)} folds)")
        lines += ["", f"Transfer score of `{family}` (mean of the leave-one-corpus-out UARs): {score} ({uars})."]
    if t["ignored"]:
        lines += ["", f"Ignored: {'; '.join(t['ignored'])}."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="Comma-separated shipped names or model files.")
    parser.add_argument("--previous", default=PREVIOUS,
                        help="Git revision whose shipped voice models are the before/after row ('' for none).")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_PER_CLASS} clips per class of each set.")
    parser.add_argument("--out", type=Path, default=RESULTS, help="Results folder.")
    parser.add_argument("--training-dir", type=Path, default=TRAINING,
                        help="Folder of training runs (<run>/metrics.json).")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    report = run(args.out, [m for m in args.models.split(",") if m], args.previous, args.quick, args.training_dir,
                 args.threads)
    print(render(report))


if __name__ == "__main__":
    main()
