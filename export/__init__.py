"""Export stage (``edgeemo.export``): Keras model -> float/int8 TFLite and ONNX, verified.

``pipeline.export_run`` orchestrates (``edgeemo export``); ``calibration`` picks the
representative and verification faces from the run, ``tflite`` and ``onnx`` convert and
quantise, ``verify`` compares each quantised model with its float parent and applies the
accuracy gate.

Needs the ``[export]`` extra. Imports only the core, never the train or device stages.
"""

import os

# TensorFlow reads its log level once, when first imported: set it here, before any module of this
# stage imports it (``edgeemo --verbose`` sets it to 0 first and shows everything).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
