"""Training stage (``edgeemo.train``): Keras 3 models, augmentation, and resumable training runs.

Needs the ``[train]`` extra (TensorFlow + Keras). Imports only the core, never the
export or device stages.
"""
