"""``edgeemo train average``: one model whose weights are the mean of several epochs' weights.

Stochastic weight averaging (Izmailov et al. 2018): continue a finished run at a constant
learning rate with ``--keep-epoch-weights``, then average the weights it passed through.
The mean sits nearer the middle of the region those epochs explored than any one of them,
and costs nothing at inference: same architecture, size and speed. The BatchNorm
statistics of a mean of weights describe none of them, so the averaged run must be
recalibrated next (``edgeemo train recalibrate``), which also lets validation decide.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np

from edgeemo import __version__
from edgeemo.errors import EdgeemoError
from edgeemo.train.ensemble import read_json
from edgeemo.train.face import initialised
from edgeemo.train.run import console, copy_training_records, load_weights_npz


def read_weights(model: keras.Model, path: Path) -> list[np.ndarray]:
    """The weights in ``path`` (a ``.weights.npz`` written by training, or a ``.keras`` model),
    checked against ``model``'s architecture."""
    path = Path(path)
    if not path.is_file():
        raise EdgeemoError("weights file not found", path)
    if path.suffix == ".keras":
        initialised(model, path)  # the same load and architecture check as --init-from
    else:
        load_weights_npz(model, path)
    return model.get_weights()


def average_run(run: Path, weights: list[Path], out: Path) -> dict[str, Any]:
    """Write run folder ``out``: ``run``'s config and split, and a best.keras whose every weight
    (BatchNorm statistics included, to be recalibrated) is the mean over ``weights``."""
    run, out = Path(run), Path(out)
    config = read_json(run / "config.json")
    split = read_json(run / "split.json")
    if not weights:
        raise EdgeemoError("no weights files given to average")
    if out.resolve() == run.resolve():
        raise EdgeemoError("--out must be a new folder, not the run itself", out)
    source = run / "best.keras"
    if not source.is_file():
        raise EdgeemoError("not a finished training run (no best.keras inside)", run)
    model = keras.models.load_model(source, compile=False)
    total: list[np.ndarray] | None = None
    for path in weights:
        current = [w.astype(np.float64) for w in read_weights(model, path)]
        total = current if total is None else [t + w for t, w in zip(total, current, strict=True)]
    assert total is not None
    model.set_weights([(t / len(weights)).astype(w.dtype) for t, w in zip(total, model.get_weights(), strict=True)])

    out.mkdir(parents=True, exist_ok=True)
    model.save(out / "best.keras")
    config = dict(config)
    config["weight_average"] = {
        "from_run": str(run),
        "files": [str(p) for p in weights],
        "n": len(weights),
        "batchnorm": "averaged too: stale until `edgeemo train recalibrate`",
    }
    config["edgeemo_version"] = __version__
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "split.json").write_text(json.dumps(split))
    (out / "finished.json").write_text(json.dumps({"averaged_from": str(run), "n": len(weights)}))
    copy_training_records(run, out)
    console.print(f"averaged {len(weights)} weight files into {out / 'best.keras'}; "
                  f"next: edgeemo train recalibrate {out} --out {out}-bn")
    return config["weight_average"]
