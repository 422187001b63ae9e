"""edgeemo: emotion recognition from faces and voices, from training to a Raspberry Pi or Jetson.

The ``edgeemo`` core (this folder) is light: labels, preprocessing, dataset readers,
manifests, runtime backends, metrics and the CLI. The stages live in their own folders
and import the core: ``edgeemo.train`` (train/), ``edgeemo.export`` (export/) and
``edgeemo.device`` (device/).
"""

import os as _os

__version__ = "0.1.0"

# OpenCV reads its decoder limit once, when cv2 is first imported: set it before any edgeemo
# module imports cv2, so an image whose header claims a huge size is refused before a buffer is
# allocated (edgeemo.face_datasets also checks the header's size itself, for when cv2 came first).
MAX_IMAGE_PIXELS = 50_000_000
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(MAX_IMAGE_PIXELS))
