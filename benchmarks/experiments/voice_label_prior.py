"""Adapting the voice decision to the speaker's label prior, without labels (issue 26).

    .venv/bin/python benchmarks/experiments/voice_label_prior.py [--recipe Qp2s] [--seeds 0 1 2 3 4]

For every finished leave-one-corpus-out fold run ``runs/vt-<recipe>[-s<N>]-loco-<corpus>`` (see
``voice_seeds.py``): its ``best.keras`` predicts the validation and test clips stored in its
``features.npz`` (the inputs the run itself was scored on, speaker-adapted causally), then each test
speaker's posteriors are corrected online, in the seeded order the device would hear them in
(``adaptation_orders(speakers, 0)``, the order the run's feature adaptation used):

    before clip t:  prior_s = (k * pi_train + sum of the corrected posteriors of clips 1..t-1) / (k + t - 1)
    clip t:         q = p * prior_s / pi_train, renormalised; the answer is argmax q

with ``pi_train`` the mean posterior of the run's validation clips (Saerens et al. 2002, made causal).
Reports the UAR per fold, the transfer score (mean LOCO UAR) per seed, with and without, for k in
``--strengths`` (the rule in voice_transfer_attempts.md fixes k = 10 before the run), and the seed
ensemble's (mean of the 5 runs' posteriors, then the correction). Writes
``benchmarks/results/experiments/voice_label_prior.{md,json}``. Needs TensorFlow (the Keras runs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from voice_seeds import FOLDS, OUT, run_folder  # the fold runs' layout (this folder is on sys.path)

from edgeemo.metrics import classification_report
from edgeemo.train.voice_inputs import adaptation_orders

RULE_K = 10.0


def corrected(probs: np.ndarray, speakers: np.ndarray, pi_train: np.ndarray, k: float,
              seed: int = 0) -> np.ndarray:
    """Posteriors re-weighted by each speaker's running label prior (causal: clip t sees clips before it)."""
    out = np.array(probs, np.float64)
    if k <= 0:
        return out
    base = np.asarray(pi_train, np.float64)
    for order in adaptation_orders(speakers, seed):
        total, n = k * base, k
        for i in order:
            q = probs[i] * (total / n) / base
            q = q / q.sum()
            out[i] = q
            total, n = total + q, n + 1
    return out


def uar(y: np.ndarray, probs: np.ndarray, labels: list[str]) -> float:
    return 100 * classification_report(y, probs.argmax(1), labels)["uar"]


def fold_probs(path: Path) -> dict[str, np.ndarray]:
    import keras

    data = np.load(path / "features.npz", allow_pickle=True)
    model = keras.models.load_model(path / "best.keras", compile=False)
    return {"val": model.predict(data["inputs_val"].astype(np.float32), verbose=0),
            "test": model.predict(data["inputs_test"].astype(np.float32), verbose=0),
            "y_test": data["y_test"], "speakers_test": data["speakers_test"]}


def measure(recipe: str, seeds: list[int], strengths: list[float]) -> dict[str, Any]:
    ks = [0.0, *strengths]
    scores: dict[str, dict[str, list[float]]] = {str(k): {f: [] for f in FOLDS} for k in ks}
    ensemble: dict[str, dict[str, float]] = {str(k): {} for k in ks}
    for fold in FOLDS:
        runs = [fold_probs(run_folder(recipe, s, fold)) for s in seeds]
        labels = json.loads((run_folder(recipe, seeds[0], fold) / "config.json").read_text())["labels"]
        y, speakers = runs[0]["y_test"], runs[0]["speakers_test"]
        for r in runs:
            assert np.array_equal(r["y_test"], y), "seed runs must share the test clips (--data-seed 0)"
        for k in ks:
            for r in runs:
                pi = r["val"].mean(axis=0)
                scores[str(k)][fold].append(uar(y, corrected(r["test"], speakers, pi, k), labels))
            mean_test = np.mean([r["test"] for r in runs], axis=0)
            mean_pi = np.mean([r["val"] for r in runs], axis=0).mean(axis=0)
            ensemble[str(k)][fold] = uar(y, corrected(mean_test, speakers, mean_pi, k), labels)
    report: dict[str, Any] = {"models_sha256": {}, "note": "fold runs of training, no shipped model",
                              "recipe": recipe, "seeds": seeds, "rule_k": RULE_K, "strengths": {}}
    base = np.mean([scores["0.0"][f] for f in FOLDS], axis=0)
    for k in ks:
        per_seed = np.mean([scores[str(k)][f] for f in FOLDS], axis=0)
        diff = per_seed - base
        report["strengths"][str(k)] = {
            "fold_uar_mean": {f: float(np.mean(scores[str(k)][f])) for f in FOLDS},
            "fold_uar": scores[str(k)],
            "scores": per_seed.tolist(),
            "mean": float(per_seed.mean()),
            "diff_mean": float(diff.mean()),
            "diff_se": float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0,
            "ensemble": ensemble[str(k)],
            "ensemble_score": float(np.mean(list(ensemble[str(k)].values()))),
        }
    return report


def render(report: dict[str, Any]) -> str:
    lines = [f"# Voice: the speaker's label prior, adapted without labels ({report['recipe']}, seeds "
             f"{', '.join(map(str, report['seeds']))})", "",
             "Command: `.venv/bin/python benchmarks/experiments/voice_label_prior.py`. Leave-one-corpus-out "
             "UAR (%), mean of the seeds; k = prior strength in clips (0 = off). The rule fixed k = "
             f"{report['rule_k']:g} before the run; the others are a sensitivity.", "",
             "| k | RAVDESS | CREMA-D | TESS | SAVEE | transfer score, mean of seeds | minus k = 0 (se) "
             "| seed ensemble |",
             "|---|---|---|---|---|---|---|---|"]
    for k, r in report["strengths"].items():
        folds = " | ".join(f"{r['fold_uar_mean'][f]:.1f}" for f in FOLDS)
        lines.append(f"| {float(k):g} | {folds} | {r['mean']:.2f} | {r['diff_mean']:+.2f} ({r['diff_se']:.2f}) | "
                     f"{r['ensemble_score']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="Qp2s")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--strengths", nargs="+", type=float, default=[5.0, RULE_K, 20.0, 40.0])
    p.add_argument("--out-dir", type=Path, default=OUT)
    args = p.parse_args()
    report = measure(args.recipe, args.seeds, args.strengths)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "voice_label_prior.json").write_text(json.dumps(report, indent=2))
    text = render(report)
    (args.out_dir / "voice_label_prior.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
