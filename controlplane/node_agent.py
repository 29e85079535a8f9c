"""What a GPU worker does for the control plane besides running tasks: say who it is when it starts
(host, address, pool, GPUs with their memory and compute capability, CPUs, price) and heartbeat while it
lives, each heartbeat with a sample of the machine (controlplane/node_metrics.py) — as messages to the
control queue, since a GPU node holds no database credentials.
"""

import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from controlplane.node_metrics import Nvml, node_sample

GPU_QUEUE_PREFIX = "gpu."


@dataclass(frozen=True)
class Gpus:
    gpu_type: str = "cpu"
    count: int = 0
    memory_gb: float | None = None  # per GPU (the smallest, if they differ)
    compute_capability: str = ""  # "9.0"; "" on a CPU node


def _nvidia_smi() -> list[list[str]]:
    """One row (name, memory in MiB, compute capability) per GPU; empty without nvidia-smi or when it
    fails. compute_cap needs a driver of 2022 or later; an older one fails the query, as no GPUs."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,memory.total,compute_cap",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [[part.strip() for part in line.split(",")] for line in out.splitlines() if line.strip()]


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # "[N/A]" on some boards


def detect_gpus() -> Gpus:
    """The node's GPUs: each setting that is set (TRIAD_NODE_GPU_TYPE, _COUNT, _MEMORY_GB,
    _COMPUTE_CAPABILITY) wins, the rest comes from nvidia-smi, else a CPU node."""
    gpu_type, count = settings.TRIAD_NODE_GPU_TYPE, settings.TRIAD_NODE_GPU_COUNT
    memory = settings.TRIAD_NODE_GPU_MEMORY_GB
    capability = settings.TRIAD_NODE_COMPUTE_CAPABILITY
    rows = [] if gpu_type and count >= 0 and memory >= 0 and capability else _nvidia_smi()
    names = [row[0] for row in rows if row and row[0]]
    if not gpu_type and names:
        gpu_type = names[0]
    if count < 0:
        count = len(names)
    if memory < 0:
        sizes = [mib / 1024 for row in rows if len(row) > 1 and (mib := _float(row[1])) is not None]
        memory = round(min(sizes), 1) if sizes else -1
    if not capability:
        capability = next((row[2] for row in rows if len(row) > 2 and _float(row[2]) is not None), "")
    return Gpus(
        gpu_type=gpu_type or "cpu",
        count=count,
        memory_gb=memory if memory >= 0 and count else None,
        compute_capability=capability if count else "",
    )


def node_address() -> str:
    """TRIAD_NODE_ADDRESS, else what this host's name resolves to through the host's own resolver (no
    connection is opened to find it); "" when it resolves to nothing."""
    if settings.TRIAD_NODE_ADDRESS:
        return str(settings.TRIAD_NODE_ADDRESS)
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return ""


def node_info(nodename: str, pool: str) -> dict[str, Any]:
    gpus = detect_gpus()
    price = settings.TRIAD_NODE_USD_PER_GPU_HOUR
    return {
        "name": nodename,
        "hostname": socket.gethostname(),
        "address": node_address(),
        "pool": pool,
        "gpu_type": gpus.gpu_type,
        "gpu_count": gpus.count,
        "gpu_memory_gb": gpus.memory_gb,
        "compute_capability": gpus.compute_capability,
        "cpu_count": len(os.sched_getaffinity(0)),  # the CPUs this worker may use, not the machine's
        "usd_per_gpu_hour": price if price >= 0 else None,
    }


def start(app: Any, nodename: str, queues: list[str]) -> None:
    """Register and start heartbeating if this worker serves a GPU pool; otherwise do nothing."""
    pools = [q[len(GPU_QUEUE_PREFIX) :] for q in queues if q.startswith(GPU_QUEUE_PREFIX)]
    if not pools:
        return
    app.send_task("nodes.register", args=[node_info(nodename, pools[0])])

    def beat() -> None:
        nvml = Nvml()
        node_sample()  # primes psutil's CPU counter: each sample is then the interval since the last
        while True:
            time.sleep(settings.TRIAD_NODE_HEARTBEAT_S)
            # The sample rides as a third argument: a control plane of the previous version (two) would
            # refuse it, so nodes are upgraded after the control plane (docs/runs.md, "System metrics").
            app.send_task("nodes.heartbeat", args=[nodename, time.time(), node_sample(nvml)])

    threading.Thread(target=beat, name="triad-node-heartbeat", daemon=True).start()
