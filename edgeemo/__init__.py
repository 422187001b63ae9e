"""edgeemo: emotion recognition from faces and voices, from training to a Raspberry Pi or Jetson.

The ``edgeemo`` core (this folder) is light: labels, preprocessing, dataset readers,
manifests, runtime backends, metrics and the CLI. The stages live in their own folders
and import the core: ``edgeemo.train`` (train/), ``edgeemo.export`` (export/) and
``edgeemo.device`` (device/).
"""

__version__ = "0.1.0"
