"""The cluster of a ``--distribute multi-worker`` run, read from ``TF_CONFIG`` before TensorFlow starts.

TensorFlow documents the variable (https://www.tensorflow.org/guide/distributed_training): a JSON
object with ``cluster`` (job name -> list of ``host:port``) and ``task`` (``type`` and ``index`` of
this process), for example on the second of two machines::

    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 1}}'

MultiWorkerMirroredStrategy uses ``chief`` and ``worker`` jobs; the chief (``chief`` 0, or ``worker`` 0
when there is no chief job) is the one that writes the run folder. Everything here is checked
without TensorFlow, so a mistake is one line before a 7 s import, never a hang.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass

from edgeemo.errors import EdgeemoError

JOBS = ("chief", "worker")


@dataclass(frozen=True)
class Cluster:
    """The workers' addresses in TensorFlow's order (the chief first) and this process's place among them."""

    addresses: tuple[str, ...]
    task_type: str
    task_index: int
    has_chief_job: bool

    @property
    def worker_index(self) -> int:
        """This process's position in ``addresses`` (0 = the chief)."""
        return self.task_index + (1 if self.task_type == "worker" and self.has_chief_job else 0)

    @property
    def is_chief(self) -> bool:
        return self.worker_index == 0

    @property
    def address(self) -> str:
        return self.addresses[self.worker_index]


def _problem(text: str) -> EdgeemoError:
    return EdgeemoError(f"TF_CONFIG: {text} (see `edgeemo train face --help`, --distribute)")


def read_tf_config(text: str | None) -> Cluster:
    """Parse and check ``TF_CONFIG``; any mistake is one ``EdgeemoError`` saying what is wrong."""
    if not text:
        raise _problem("not set; --distribute multi-worker reads the cluster from it")
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _problem(f"not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise _problem("must be a JSON object with 'cluster' and 'task'")
    cluster, task = config.get("cluster"), config.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise _problem("no 'cluster' object (job name -> list of host:port)")
    unknown = sorted(set(cluster) - set(JOBS))
    if unknown:
        raise _problem(f"job {unknown[0]!r} in 'cluster': MultiWorkerMirroredStrategy uses only 'chief' and 'worker'")
    for job, hosts in cluster.items():
        if not isinstance(hosts, list) or not hosts:
            raise _problem(f"cluster job {job!r} must be a non-empty list of host:port")
        for host in hosts:
            name, _, port = str(host).rpartition(":")
            if not isinstance(host, str) or not name or not port.isdigit() or not 0 < int(port) < 65536:
                raise _problem(f"{host!r} in job {job!r} is not host:port")
    if len(cluster.get("chief", [])) > 1:
        raise _problem("the 'chief' job has more than one task")
    if not isinstance(task, dict):
        raise _problem("no 'task' object ({'type': 'worker', 'index': N}) saying which task this process is")
    task_type, index = task.get("type"), task.get("index")
    if task_type not in cluster:
        raise _problem(f"task type {task_type!r} is not a job of the cluster ({', '.join(cluster)})")
    if isinstance(index, bool) or not isinstance(index, int):
        raise _problem(f"task index must be an integer, got {index!r}")
    if not 0 <= index < len(cluster[task_type]):
        raise _problem(f"task index {index} is out of range: job {task_type!r} has {len(cluster[task_type])} "
                       f"task(s) (0-{len(cluster[task_type]) - 1})")
    addresses = tuple(cluster.get("chief", []) + cluster.get("worker", []))
    if len(set(addresses)) < len(addresses):
        raise _problem("an address appears twice in the cluster")
    return Cluster(addresses, task_type, index, "chief" in cluster)


def check_port_free(cluster: Cluster) -> None:
    """This task's port must be free: TensorFlow's server would otherwise fail late, or share it."""
    port = int(cluster.address.rpartition(":")[2])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port in TIME_WAIT is free to listen on
        try:
            probe.bind(("", port))
            probe.listen()
        except OSError as exc:
            raise _problem(f"port {port} of this task ({cluster.task_type} {cluster.task_index}, {cluster.address}) "
                           f"cannot be used: {exc.strerror or exc}; another program holds it") from None
