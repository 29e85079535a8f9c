"""Where a sandboxed item's time goes (docs/sandbox.md, "Cost of a cold item").

    .venv/bin/python bench/sandbox_cost.py [--samples 200] [--n 120] [--rounds 5]   # as root

- cpu: CPU per trivial item (``x = 1`` / ``assert x == 1``), one at a time, read from a cgroup that
  holds this process and so everything it starts (v1 ``cpuacct.usage`` or v2 ``cpu.stat``); the
  variants are interleaved sample by sample and each figure is a median. Variants: the anchor
  (``python -I -S -c pass`` by ``subprocess.run``), a tiny extra exec (``env python ...``), the same
  ``-c pass`` under our cold bwrap arguments, whole items (process backend, bwrap cold, warm).
- scaling: items/s with one worker thread and with one per CPU, pinned (what run_batch does) and
  not pinned (the same pool without pinning), against the anchor on as many threads.

Last line: one JSON object with ``cpu_ms`` and ``items_per_s``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workers.sandbox import Item, batch, netns, run_batch
from workers.sandbox.bwrap import bwrap_prefix, dev_directory
from workers.sandbox.payload import python_executable

BARE = [python_executable(), "-I", "-S", "-c", "pass"]


class CpuMeter:
    """CPU time of this process and all its descendants, from a cgroup of their own."""

    def __init__(self) -> None:
        v1 = Path("/sys/fs/cgroup/cpuacct")
        if v1.is_dir():
            group = Path(tempfile.mkdtemp(prefix="triad-bench-", dir=v1))
            self.file, self.scale = group / "cpuacct.usage", 1e6
        else:
            group = Path(tempfile.mkdtemp(prefix="triad-bench-", dir="/sys/fs/cgroup"))
            self.file, self.scale = group / "cpu.stat", 1e3  # its first line: usage_usec
        (group / "cgroup.procs").write_text(str(os.getpid()))

    def read(self) -> float:
        """Milliseconds of CPU so far."""
        return int(self.file.read_text().split()[-1 if self.scale == 1e6 else 1]) / self.scale


def cpu_per_item(samples: int) -> dict[str, float]:
    meter = CpuMeter()
    item = [Item(id="1", code="x = 1", tests="assert x == 1")]
    cold_pass = [*bwrap_prefix(netns.available(), dev_directory()), *BARE]

    def bwrap_pass() -> None:
        with netns.entered(0):  # as items run: in their slot's network namespace
            subprocess.run(cold_pass, check=True)

    variants: dict[str, Callable[[], object]] = {
        "bare": lambda: subprocess.run(BARE, check=True),
        "extra_exec": lambda: subprocess.run(["/usr/bin/env", *BARE], check=True),
        "bwrap_pass": bwrap_pass,
        "process_item": lambda: run_batch(item, backend="process", cache=False, workers=1),
        "bwrap_item": lambda: run_batch(item, backend="bwrap", cache=False, workers=1),
        "warm_item": lambda: run_batch(item, backend="bwrap", mode="warm", cache=False, workers=1),
    }
    for run in variants.values():
        run()  # the probe, the zygote, the caches: outside the clock
    spent: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(samples):
        for name, run in variants.items():
            before = meter.read()
            run()
            spent[name].append(meter.read() - before)
    return {name: round(statistics.median(values), 2) for name, values in spent.items()}


def throughput(n: int, rounds: int) -> dict[str, float]:
    width = len(os.sched_getaffinity(0))
    items = [Item(id=str(i), code=f"x = {i}", tests=f"assert x == {i}") for i in range(n)]
    pinned_pool = batch._pool

    def unpinned(k: int) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=k, thread_name_prefix="sandbox")

    def bare(k: int) -> None:
        with ThreadPoolExecutor(max_workers=k) as pool:
            list(pool.map(lambda _: subprocess.run(BARE, check=True), range(n)))

    def ours(mode: str, k: int, pin: bool) -> None:
        batch._pool = pinned_pool if pin else unpinned  # type: ignore[assignment]
        try:
            run_batch(items, backend="bwrap", mode=mode, cache=False, workers=k)
        finally:
            batch._pool = pinned_pool

    runs: dict[str, Callable[[], None]] = {"bare_1": partial(bare, 1), f"bare_{width}": partial(bare, width)}
    for mode in ("cold", "warm"):
        runs[f"{mode}_1"] = partial(ours, mode, 1, True)
        runs[f"{mode}_{width}_unpinned"] = partial(ours, mode, width, False)
        runs[f"{mode}_{width}_pinned"] = partial(ours, mode, width, True)
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            rates[name].append(n / (time.perf_counter() - t0))
    return {name: round(statistics.median(values), 1) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=200, help="interleaved samples per CPU variant")
    parser.add_argument("--n", type=int, default=120, help="items per throughput run")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0 or not batch.bwrap_available():
        sys.exit("bench/sandbox_cost.py: needs root (a cgroup of its own, warm mode) and bwrap")
    fig: dict[str, Any] = {"cpu_ms": cpu_per_item(args.samples)}
    fig["items_per_s"] = throughput(args.n, args.rounds)
    print(json.dumps(fig))


if __name__ == "__main__":
    main()
