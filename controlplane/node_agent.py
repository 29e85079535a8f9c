"""What a GPU worker does for the control plane besides running tasks: say who it is when it starts
(host, pool, GPU type and count, price) and heartbeat while it lives — as messages to the control
queue, since a GPU node holds no database credentials.
"""

import shutil
import socket
import subprocess
import threading
import time
from typing import Any

from django.conf import settings

GPU_QUEUE_PREFIX = "gpu."


def detect_gpus() -> tuple[str, int]:
    """(GPU type, count) from the settings, else nvidia-smi, else ("cpu", 0)."""
    gpu_type, count = settings.TRIAD_NODE_GPU_TYPE, settings.TRIAD_NODE_GPU_COUNT
    if (not gpu_type or count < 0) and shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout
            names = [line.strip() for line in out.splitlines() if line.strip()]
            gpu_type = gpu_type or (names[0] if names else "")
            count = len(names) if count < 0 else count
        except (OSError, subprocess.SubprocessError):
            pass
    return gpu_type or "cpu", max(0, count)


def node_info(nodename: str, pool: str) -> dict[str, Any]:
    gpu_type, gpu_count = detect_gpus()
    price = settings.TRIAD_NODE_USD_PER_GPU_HOUR
    return {
        "name": nodename,
        "hostname": socket.gethostname(),
        "pool": pool,
        "gpu_type": gpu_type,
        "gpu_count": gpu_count,
        "usd_per_gpu_hour": price if price >= 0 else None,
    }


def start(app: Any, nodename: str, queues: list[str]) -> None:
    """Register and start heartbeating if this worker serves a GPU pool; otherwise do nothing."""
    pools = [q[len(GPU_QUEUE_PREFIX) :] for q in queues if q.startswith(GPU_QUEUE_PREFIX)]
    if not pools:
        return
    app.send_task("nodes.register", args=[node_info(nodename, pools[0])])

    def beat() -> None:
        while True:
            time.sleep(settings.TRIAD_NODE_HEARTBEAT_S)
            app.send_task("nodes.heartbeat", args=[nodename, time.time()])

    threading.Thread(target=beat, name="triad-node-heartbeat", daemon=True).start()
