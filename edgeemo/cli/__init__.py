"""The ``edgeemo`` command line, one module per stage: ``train``, ``export``, ``bench``
(bench and predict) and ``device`` (run, doctor, demo). Stage code is imported inside the
commands, so ``edgeemo bench`` / ``predict`` / ``run`` never import TensorFlow."""

from edgeemo.cli import bench, device, export, train  # noqa: F401 - each registers its commands on `app`
from edgeemo.cli.app import app

__all__ = ["app"]
