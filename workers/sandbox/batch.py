"""run_batch: many items, each in its own child, on a pool of threads (see docs/sandbox.md)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache

from . import backends
from .types import Item, Limits, Result

logger = logging.getLogger(__name__)
_warned = False
_warn_lock = threading.Lock()


class _SlotPool:
    """Small integers for concurrently running children (process-wide): slot -> uid."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[int] = []
        self._next = 0

    def acquire(self) -> int:
        with self._lock:
            if self._free:
                return self._free.pop()
            self._next += 1
            return self._next - 1

    def release(self, slot: int) -> None:
        with self._lock:
            self._free.append(slot)


_slots = _SlotPool()
DEFAULT_LIMITS = Limits()


def _run_one(item: Item, limits: Limits, backend: str) -> Result:
    slot = _slots.acquire()
    try:
        return backends.execute(item, limits, backend, slot)
    finally:
        _slots.release(slot)


@cache
def bwrap_available() -> bool:
    """Does a trivial item pass under bwrap here? Checked once per process."""
    if not os.access(backends.BWRAP, os.X_OK):
        return False
    probe = Item(id="probe", code="x = 1", tests="assert x == 1")
    result = _run_one(probe, Limits(timeout_s=10.0), "bwrap")
    if not result.passed:
        logger.info("bwrap probe failed: %s %s", result.error_class, result.stderr[-500:])
    return result.passed


def resolve_backend(backend: str | None) -> str:
    global _warned
    if backend is None:
        if bwrap_available():
            return "bwrap"
        with _warn_lock:
            if not _warned:
                _warned = True
                logger.warning(
                    "SANDBOX FALLBACK: bwrap does not work here; running untrusted code with the "
                    "'process' backend, whose isolation is much weaker (no network, filesystem or "
                    "pid namespace)."
                )
        return "process"
    if backend not in backends.BACKENDS:
        raise ValueError(f"unknown sandbox backend {backend!r}; expected one of {backends.BACKENDS}")
    if backend == "bwrap" and not bwrap_available():
        raise RuntimeError(f"the bwrap backend does not work here ({backends.BWRAP})")
    return backend


def run_batch(
    items: Sequence[Item],
    limits: Limits = DEFAULT_LIMITS,
    *,
    backend: str | None = None,
    workers: int | None = None,
) -> list[Result]:
    """Run every item in its own isolated child; results in input order."""
    name = resolve_backend(backend)
    n = max(1, min(workers or os.cpu_count() or 1, len(items) or 1))
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="sandbox") as pool:
        return list(pool.map(lambda item: _run_one(item, limits, name), items))
