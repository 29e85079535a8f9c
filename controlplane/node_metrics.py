"""What a node's heartbeat carries about the machine: CPU and memory (psutil), and per GPU its
utilisation, memory and temperature where NVML answers (nvidia-ml-py's `pynvml`).

Read on the node, in the worker's heartbeat thread; nothing here touches the database. Every part is
optional: without psutil, without pynvml, or with a driver that refuses (no GPU, a container without
the device), the sample simply holds less — a heartbeat is never lost to a metric that failed."""

import importlib
import logging
from typing import Any

logger = logging.getLogger(__name__)

GIB = 1024**3


def _cpu_memory() -> dict[str, float]:
    try:
        import psutil
    except ImportError:
        return {}
    memory = psutil.virtual_memory()
    return {
        # Since the previous call (the previous heartbeat): the whole interval, without sleeping here.
        "cpu_percent": float(psutil.cpu_percent(interval=None)),
        "memory_percent": float(memory.percent),
        "memory_used_gb": round((memory.total - memory.available) / GIB, 3),
    }


class Nvml:
    """NVML, initialised once; `gpus()` is [] when the library is missing or the driver refuses."""

    def __init__(self) -> None:
        self._nvml: Any = None
        try:
            nvml = importlib.import_module("pynvml")
            nvml.nvmlInit()
        except Exception as exc:  # ImportError, or NVMLError: no driver, no device
            logger.debug("node metrics: no GPU metrics (%s: %s)", type(exc).__name__, exc)
            return
        self._nvml = nvml

    def gpus(self) -> list[dict[str, float | int]]:
        nvml = self._nvml
        if nvml is None:
            return []
        rows: list[dict[str, float | int]] = []
        try:
            count = nvml.nvmlDeviceGetCount()
        except Exception as exc:
            logger.warning("node metrics: NVML stopped answering: %s", exc)
            return []
        for index in range(count):
            row: dict[str, float | int] = {"index": index}
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                row["util_percent"] = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
                row["memory_used_gb"] = round(memory.used / GIB, 3)
                row["memory_total_gb"] = round(memory.total / GIB, 3)
                row["temperature_c"] = float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
            except Exception as exc:  # one board that fails a query keeps what it answered
                logger.debug("node metrics: GPU %d: %s", index, exc)
            rows.append(row)
        return rows


def node_sample(nvml: Nvml | None = None) -> dict[str, Any]:
    """One sample: {"cpu_percent", "memory_percent", "memory_used_gb", "gpus": [...]}, as far as known."""
    sample: dict[str, Any] = {}
    try:
        sample.update(_cpu_memory())
    except Exception as exc:  # a /proc that cannot be read: the heartbeat goes without
        logger.warning("node metrics: CPU and memory unreadable: %s", exc)
    sample["gpus"] = nvml.gpus() if nvml is not None else []
    return sample
