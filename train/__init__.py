"""Training stage (``edgeemo.train``): Keras 3 models, augmentation, and resumable training runs.

Needs the ``[train]`` extra (TensorFlow + Keras). Imports only the core, never the
export or device stages.
"""

import os

# TensorFlow reads its log level once, when first imported: set it here, before any module of this
# stage imports it (``edgeemo --verbose`` sets it to 0 first and shows everything).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
