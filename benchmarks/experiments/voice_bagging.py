"""Voice: recipes compared as the ensembles they would ship, on two disjoint seed sets (leave-one-corpus-out UAR).

    .venv/bin/python benchmarks/experiments/voice_bagging.py [--recipes Qp2s,Qp2sB25] [--sets 0-4,5-9] [--name N]

Reads the finished fold runs of each recipe and seed (``voice_seeds.run_folder``; ``Qp2sB25`` = the shipped
recipe with ``--speaker-bag 0.25``: each member leaves out a quarter of the training speakers, drawn by its
seed; ``bash benchmarks/experiments/voice_fold_runs.sh Qp2sB25 0,1,2,3,4,5,6,7,8,9``, and ``Qp2s 5,6,7,8,9``). For
each recipe and seed set: the members' mean transfer score and the ensemble's (``edgeemo train ensemble``
of the set on each fold, written to ``runs/vt-<recipe>-ens-s<first>-<last>-loco-<corpus>``). The rule
(voice_transfer_attempts.md, sixth section) compares the ensembles. Writes ``<name>.{json,md}`` (default
``voice_bagging``; the sentence adversary of the seventh section: ``--recipes Qp2s,Qp2sS5 --name
voice_sentence_adversary``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np
from voice_seeds import FOLDS, OUT, RUNS, fold_metrics, run_folder


def seed_set(text: str) -> list[int]:
    first, last = (int(v) for v in text.split("-"))
    return list(range(first, last + 1))


def ensemble(recipe: str, seeds: list[int], fold: str) -> dict[str, float]:
    from edgeemo.train.ensemble import build_ensemble

    out = RUNS / f"vt-{recipe}-ens-s{seeds[0]}-{seeds[-1]}-loco-{fold}"
    if not (out / "metrics.json").is_file():
        build_ensemble([run_folder(recipe, s, fold) for s in seeds], out)
    return fold_metrics(out)


def measure(recipes: list[str], sets: list[list[int]]) -> dict[str, Any]:
    report: dict[str, Any] = {"models_sha256": {}, "note": "measures training runs' fold models, no shipped model",
                              "sets": [f"{s[0]}-{s[-1]}" for s in sets], "recipes": {}}
    for recipe in recipes:
        r: dict[str, Any] = {}
        for seeds in sets:
            members = [float(np.mean([fold_metrics(run_folder(recipe, s, f))["uar"] for f in FOLDS])) for s in seeds]
            ens = {f: ensemble(recipe, seeds, f)["uar"] for f in FOLDS}
            r[f"{seeds[0]}-{seeds[-1]}"] = {"member_scores": members, "member_mean": float(np.mean(members)),
                                            "ensemble_folds": ens, "ensemble_score": float(np.mean(list(ens.values())))}
        r["ensemble_mean"] = float(np.mean([v["ensemble_score"] for k, v in r.items() if isinstance(v, dict)]))
        report["recipes"][recipe] = r
    return report


def render(report: dict[str, Any], command: str) -> str:
    lines = [f"# Voice: {' against '.join(report['recipes'])} as seed ensembles (leave-one-corpus-out UAR, %)", "",
             f"`{command}`. Two disjoint seed sets per recipe; ensemble = the mean of the members' softmax (one "
             "model).", "",
             "| recipe | seeds | members' mean score | ensemble " + " / ".join(FOLDS) + " | ensemble score |",
             "|---|---|---|---|---|"]
    for name, r in report["recipes"].items():
        for key in report["sets"]:
            v = r[key]
            folds = " / ".join(f"{v['ensemble_folds'][f]:.1f}" for f in FOLDS)
            lines.append(f"| {name} | {key} | {v['member_mean']:.2f} | {folds} | **{v['ensemble_score']:.2f}** |")
        lines.append(f"| {name} | mean of the sets | | | **{r['ensemble_mean']:.2f}** |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="Qp2s,Qp2sB25")
    parser.add_argument("--sets", default="0-4,5-9")
    parser.add_argument("--name", default="voice_bagging", help="result file stem in benchmarks/results/experiments")
    args = parser.parse_args()
    report = measure(args.recipes.split(","), [seed_set(s) for s in args.sets.split(",")])
    command = (f".venv/bin/python benchmarks/experiments/voice_bagging.py --recipes {args.recipes} --sets {args.sets} "
               f"--name {args.name}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (OUT / f"{args.name}.md").write_text(render(report, command))
    print(render(report, command))


if __name__ == "__main__":
    main()

