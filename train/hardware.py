"""The hardware side of a training run: the devices and distribution (``edgeemo.train.distribute``),
the seeds, and the dtype policy (mixed precision) the model is built under."""

from __future__ import annotations

import keras
import tensorflow as tf

from edgeemo.errors import EdgeemoError
from edgeemo.train.distribute import Distribution, setup_distribution
from edgeemo.train.options import PRECISIONS
from edgeemo.train.run import TrainSettings

CPU_BFLOAT16_FLAGS = {"amx_bf16", "avx512_bf16"}  # /proc/cpuinfo flags of CPUs with native bfloat16 math


def cpu_flags() -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), set())
    except OSError:
        return set()


def resolve_precision(precision: str, gpus: int, flags: set[str], cpu_bfloat16: bool = True) -> str:
    """The Keras dtype policy to train with. ``auto``: mixed_float16 on a GPU; on a CPU,
    mixed_bfloat16 where the CPU computes in bfloat16 natively, with AMX-BF16 tiles (Sapphire
    Rapids and later) or AVX512-BF16 dot products (Cooper Lake, AMD Zen 4 and later), and the
    model gains from it (``cpu_bfloat16``: the custom face CNN's training step, batch 128, took
    472 instead of 937 ms on a 2-core Xeon with AMX and 458 instead of 611 ms on a 2-core EPYC
    with AVX512-BF16; the small voice models gained nothing, the CRNN got slower), else float32.
    Weights stay float32 either way, and export rebuilds every model in float32."""
    if precision not in PRECISIONS:
        raise EdgeemoError(f"unknown --precision {precision!r} (expected {', '.join(PRECISIONS)})")
    if precision != "auto":
        return precision
    if gpus:
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_bfloat16 and flags & CPU_BFLOAT16_FLAGS else "float32"


def setup_hardware(seed: int, settings: TrainSettings, cpu_bfloat16: bool = True) -> tuple[str, str, Distribution]:
    """Set up the devices and the distribution strategy (before anything else runs on TensorFlow), seed
    everything and pick the dtype policy (``resolve_precision``) without setting it: ``fit`` builds the
    model under it. Returns (description, policy, distribution)."""
    dist = setup_distribution(settings.distribute, settings.replicas, settings.worker_timeout)
    keras.utils.set_random_seed(seed)
    policy = resolve_precision(settings.precision, dist.gpus, cpu_flags(), cpu_bfloat16)
    if dist.gpus:
        where = f"GPU x{dist.gpus} ({policy}{', XLA' if dist.xla else ''})"
    else:
        where = f"CPU ({tf.config.threading.get_intra_op_parallelism_threads() or 'all'} threads, {policy})"
    return ", ".join(filter(None, [where, dist.describe()])), policy, dist
