"""How a training run is spread over devices and machines, with TensorFlow's own ``tf.distribute``.

- ``--distribute none``: TensorFlow's default strategy, one device (as before).
- ``mirrored``: ``MirroredStrategy`` over the local GPUs (the first ``--replicas`` of them). With no GPU
  the CPU is split into ``--replicas`` (default 2) logical devices, so the path runs, and is tested,
  on any machine. That must happen before TensorFlow sets up its devices: once per process.
- ``multi-worker``: ``MultiWorkerMirroredStrategy`` over the workers ``TF_CONFIG`` names
  (``edgeemo.train.cluster``): one replica per worker, or each worker's GPUs.

``--batch-size`` is the global batch: every step splits it over the replicas, so the optimisation,
and its learning rate, are those of one device (no learning-rate scaling). Only the chief writes
the run folder; another worker works in a temporary copy, removed when it ends. A worker that dies
or cannot be reached ends the others with one line, never a hang (``clear_tf_errors``, ``watchdog``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from rich.console import Console

from edgeemo.errors import EdgeemoError
from edgeemo.train.cluster import read_tf_config

console = Console(stderr=True)

DEFAULT_CPU_REPLICAS = 2
STRATEGIES = {"none": "none", "mirrored": "MirroredStrategy", "multi-worker": "MultiWorkerMirroredStrategy"}
RESUME_FILES = ("config.json", "history.csv", "finished.json", "last.keras", "last.weights.npz", "best.keras")
LR_SCALING = "none: --batch-size is the global batch, split over the replicas"

WATCHDOG = r"""
import os, select, signal, sys
pid, seconds, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
done, _, _ = select.select([sys.stdin], [], [], seconds)
if not done:
    sys.stderr.write("error: " + message + "\n")
    sys.stderr.flush()
    os.kill(pid, signal.SIGKILL)
"""


@contextmanager
def watchdog(seconds: float, message: str) -> Iterator[None]:
    """End this process with ``error: message`` unless the block is done within ``seconds``. Another
    process does it: TensorFlow's multi-worker start-up waits for the cluster in native code that holds
    the GIL (no thread of this process runs meanwhile) and ignores SIGTERM, so only SIGKILL ends it."""
    try:
        stderr: int | None = sys.stderr.fileno()  # the terminal itself (the CLI filters fd 2 through a thread)
    except (AttributeError, OSError, ValueError):
        stderr = None
    dog = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(os.getpid()), str(seconds), message],
                           stdin=subprocess.PIPE, stderr=stderr)
    try:
        yield
    finally:
        assert dog.stdin is not None
        dog.stdin.close()  # done: the watchdog wakes up and leaves
        dog.wait()


@dataclass
class Distribution:
    """The strategy of a run (None: TensorFlow's default, one device) and this process's place in it."""

    mode: str = "none"
    strategy: Any = None
    devices: tuple[str, ...] = ()
    workers: int = 1
    worker_index: int = 0
    gpus: int = 0

    @property
    def replicas(self) -> int:
        return int(self.strategy.num_replicas_in_sync) if self.strategy is not None else 1

    @property
    def is_chief(self) -> bool:
        return self.worker_index == 0

    @property
    def xla(self) -> bool:
        """XLA (``jit_compile``) on a GPU; not with a strategy (Keras' own rule) nor on a CPU."""
        return self.gpus > 0 and self.strategy is None

    def scope(self) -> Any:
        """Where models and optimizers are made: their variables are mirrored over the replicas."""
        return self.strategy.scope() if self.strategy is not None else nullcontext()

    def describe(self) -> str:
        if self.strategy is None:
            return ""
        where = f"{self.workers} workers" if self.workers > 1 else ", ".join(self.devices)
        return f"{STRATEGIES[self.mode]}, {self.replicas} replicas ({where})"

    def record(self, global_batch: int, policy: str) -> dict[str, Any]:
        """What config.json (and every exported manifest) says about the distribution."""
        return {
            "strategy": STRATEGIES[self.mode],
            "replicas": self.replicas,
            "workers": self.workers,
            "devices": list(self.devices),
            "global_batch": global_batch,
            "per_replica_batch": global_batch / self.replicas if global_batch % self.replicas else
            global_batch // self.replicas,
            "learning_rate_scaling": LR_SCALING,
            "precision": policy,
            "loss_scaling": policy == "mixed_float16",  # Keras wraps the optimizer in LossScaleOptimizer
            "xla": self.xla,
        }

    def run_folder(self, out: Path) -> Path:
        """Where this process writes: the run folder on the chief; elsewhere a temporary copy of what a
        resume reads, removed when the process ends."""
        if self.is_chief:
            return out
        self._scratch = tempfile.TemporaryDirectory(prefix=f"edgeemo-worker{self.worker_index}-")
        copy = Path(self._scratch.name) / Path(out).name
        copy.mkdir()
        for name in RESUME_FILES:
            if (Path(out) / name).is_file():
                shutil.copy2(Path(out) / name, copy / name)
        console.print(f"worker {self.worker_index} of {self.workers} is not the chief: it writes to {copy} "
                      "(removed when it ends); the chief writes the run folder")
        return copy


def split_cpu(replicas: int) -> list[str]:
    """The CPU as ``replicas`` logical devices (names), set before TensorFlow sets up its devices."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    with suppress(RuntimeError):  # set up already in this process: fine if it is the same split
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(devices) != replicas:
        raise EdgeemoError(f"--distribute mirrored: TensorFlow set up {len(devices)} CPU device(s) in this process "
                           f"before it could split the CPU into {replicas}; run training in a fresh process")
    return devices


def setup_distribution(mode: str, replicas: int | None = None, timeout: float = 600.0) -> Distribution:
    """The Distribution of ``--distribute mode``: call it before anything else runs on TensorFlow."""
    gpus = len(tf.config.list_physical_devices("GPU"))
    if mode == "none":
        return Distribution(gpus=gpus)
    if mode == "mirrored":
        if gpus:
            if (replicas or gpus) > gpus:
                raise EdgeemoError(f"--replicas {replicas}: this machine has {gpus} GPU(s)")
            devices = [f"/gpu:{i}" for i in range(replicas or gpus)]
        else:
            devices = split_cpu(replicas or DEFAULT_CPU_REPLICAS)
        return Distribution("mirrored", tf.distribute.MirroredStrategy(devices), tuple(devices), gpus=gpus)
    if mode != "multi-worker":
        raise EdgeemoError(f"unknown --distribute {mode!r} (expected none, mirrored or multi-worker)")
    cluster = read_tf_config(os.environ.get("TF_CONFIG"))
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout)
    waiting = (f"multi-worker: the cluster did not come up within {timeout:.0f} s (TF_CONFIG: "
               f"{', '.join(cluster.addresses)}; this is {cluster.task_type} {cluster.task_index}): is every "
               "worker started, each with its own task index, and can each reach the others?")
    with watchdog(timeout, waiting):
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        dist = Distribution("multi-worker", strategy, (cluster.address,), len(cluster.addresses),
                            cluster.worker_index, gpus)
        per_worker(dist, 1.0)  # a first all-reduce: every worker is there
    return dist


def per_worker(dist: Distribution, value: float) -> list[float]:
    """``value`` of every worker (index = worker, chief first), by one all-reduce."""
    if dist.workers == 1:
        return [value]
    local = dist.replicas // dist.workers

    def contribution(ctx: tf.distribute.experimental.ValueContext) -> tf.Tensor:
        mine = np.zeros(dist.workers)
        mine[dist.worker_index] = value / local
        return tf.constant(mine)

    summed = dist.strategy.reduce(
        "SUM", dist.strategy.experimental_distribute_values_from_function(contribution), axis=None)
    return [round(float(v), 6) for v in summed.numpy()]


def fix_keras_distributed(model: Any, strategy: Any) -> None:
    """Two narrow fixes for Keras 3's ``fit`` under a tf.distribute strategy (keras-team/keras#20585, still
    in Keras 3.15). Before the first step Keras averages the first batch over the replicas to learn its
    shapes: an error when the replicas' parts differ in size (MirroredStrategy on a last, uneven batch) or,
    under MultiWorkerMirroredStrategy, always; here the first replica's part gives the shapes. And under
    MultiWorkerMirroredStrategy scalar metrics are reduced along an axis 0 they lack; here they are averaged
    over all replicas, so every worker logs, checkpoints, changes its learning rate and stops on the same
    numbers."""
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    if not getattr(trainer.reduce_per_replica, "edgeemo_fixed", False):
        original = trainer.reduce_per_replica

        def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
            if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
                return tree.map_structure(
                    lambda v: strategy.reduce("MEAN", v, axis=None) if trainer._is_per_replica_instance(v) else v,
                    values)
            return original(values, strategy, reduction)

        reduce_per_replica.edgeemo_fixed = True  # type: ignore[attr-defined]
        trainer.reduce_per_replica = reduce_per_replica
    build = model._maybe_symbolic_build

    def first_replica_build(iterator: Any = None, data_batch: Any = None) -> Any:
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tree.map_structure(lambda v: strategy.experimental_local_results(v)[0], next(batches))
                break
        return build(data_batch=data_batch)

    model._maybe_symbolic_build = first_replica_build


LOST_WORKER = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
               tf.errors.CancelledError, tf.errors.InternalError)


@contextmanager
def clear_tf_errors(dist: Distribution | None = None) -> Iterator[None]:
    """TensorFlow errors a user can act on, as one ``EdgeemoError`` line: a bad file met by a data stream
    (the core's own error, raised inside tf.data), a worker that died, hangs or cannot be reached."""
    try:
        yield
    except tf.errors.OpError as exc:
        found = re.search(r"EdgeemoError: (.*)", exc.message)
        if found:
            raise EdgeemoError(found.group(1).strip()) from None
        if dist is not None and dist.workers > 1 and isinstance(exc, LOST_WORKER):
            raise EdgeemoError(f"multi-worker: another worker stopped, hangs or cannot be reached "
                               f"({lost_worker_reason(exc)[:300]})") from None
        raise


def lost_worker_reason(exc: tf.errors.OpError) -> str:
    """What TensorFlow says went wrong with the cluster, on one line (its message is a traceback)."""
    lines = [line.strip() for line in exc.message.splitlines() if line.strip() and not line[0].isspace()]
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", " ".join(lines))
    found = re.search(r"aborted by: (.*?)(?: The tasks have crashed| The error could be|$)", text)
    return found.group(1) if found else (text or type(exc).__name__)
