"""Device stage (``edgeemo.device``): the on-device daemon (camera + microphone + fusion).

Must import without TensorFlow. Shipped models are run through ``edgeemo.runtime``.
"""
