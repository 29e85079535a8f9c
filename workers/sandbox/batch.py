"""run_batch: many items, each in its own child, on a pool of threads (see docs/sandbox.md)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import cache

from . import backends, bwrap, cgroup
from .types import Item, Limits, Result

logger = logging.getLogger(__name__)
_warned = False
_warn_lock = threading.Lock()
MODES = ("cold", "warm")
RETRIES = 2  # extra attempts for a sandbox_error, after RETRY_BACKOFF_S * 4**attempt
RETRY_BACKOFF_S = 0.05
# Verdicts that do not depend on the machine's load or health are cached; timeouts and our own
# failures are not.
UNCACHED = frozenset({"sandbox_error", "timeout"})


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


class ResultCache:
    """A bounded, thread-safe LRU of results keyed by (code, tests, entry_point, the verifier
    and its problem, limits, backend)."""

    def __init__(self, maxsize: int = 4096) -> None:
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._data: OrderedDict[str, Result] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(item: Item, limits: Limits, backend: str) -> str:
        h = hashlib.sha256()
        # The verifier's problem matters only with a verifier: without one, the key is as it was.
        custom = (item.verifier, item.task_id, item.prompt) if item.verifier else ()
        # A program's cases matter only for programs: a function's key is as it was.
        program = (
            (
                item.kind,
                repr(item.cases),
                item.compare,
                repr(item.float_tol),
                repr(item.stop_at_first_failure),
            )
            if item.is_program
            else ()
        )
        for part in (item.code, item.tests, item.entry_point, *custom, *program, repr(limits), backend):
            data = part.encode("utf-8", "surrogatepass")
            h.update(len(data).to_bytes(8, "little"))
            h.update(data)
        return h.hexdigest()

    def get(self, key: str) -> Result | None:
        with self._lock:
            result = self._data.get(key)
            if result is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return result

    def put(self, key: str, result: Result) -> None:
        if result.error_class in UNCACHED or self.maxsize <= 0:
            return
        with self._lock:
            self._data[key] = result
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0


_slots = _SlotPool()
DEFAULT_LIMITS = Limits()
RESULT_CACHE = ResultCache()


def _pool(n: int) -> ThreadPoolExecutor:
    """n worker threads; when they are as many as the CPUs we may use, each is pinned to one.

    An item is a chain of processes that hand work to each other (bwrap, the judge, the candidate,
    the parent reading their pipes); pinned, a chain stays on one CPU instead of waking up on the
    one the other chains are busy on. On 2 CPUs that is +4 to +8 % items/s cold and warm
    (docs/sandbox.md). Children inherit the pin, so an item's code gets one CPU of its own, which is
    all it would get from a full batch anyway. Smaller pools are not pinned: many small batches in
    several processes would all crowd the first CPUs.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if n < 2 or n != len(cpus):
        return ThreadPoolExecutor(max_workers=n, thread_name_prefix="sandbox")
    free = list(reversed(cpus))
    lock = threading.Lock()

    def pin() -> None:
        with lock:
            cpu = free.pop()
        with contextlib.suppress(OSError):  # an initializer that raises would break the pool
            os.sched_setaffinity(0, {cpu})  # this thread only, and the processes it starts

    return ThreadPoolExecutor(max_workers=n, thread_name_prefix="sandbox", initializer=pin)


def _run_once(item: Item, limits: Limits, backend: str, mode: str) -> Result:
    slot = _slots.acquire()
    try:
        if mode == "warm":
            from . import warm

            return warm.execute(item, limits, slot)
        return backends.execute(item, limits, backend, slot)
    finally:
        _slots.release(slot)


def _run_one(item: Item, limits: Limits, backend: str, mode: str = "cold") -> Result:
    """One item; a sandbox_error (the infrastructure's fault) is retried with backoff."""
    result = _run_once(item, limits, backend, mode)
    for attempt in range(RETRIES):
        if result.error_class != "sandbox_error":
            break
        logger.info(
            "sandbox_error on %s (attempt %d), retrying: %s", item.id, attempt + 1, result.stderr[-300:]
        )
        time.sleep(RETRY_BACKOFF_S * 4**attempt)
        result = _run_once(item, limits, backend, "cold" if attempt else mode)
    return result


UNISOLATED_ENV = "TRIAD_SANDBOX_UNISOLATED"  # "1": run code unisolated where bwrap fails (trusted code only)
BACKEND_ENV = "TRIAD_SANDBOX_BACKEND"  # the default backend: "bwrap" (unset) or "docker"
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap) and allow user namespaces "
    "(sysctl kernel.unprivileged_userns_clone=1, or run the worker as root), or use the docker backend "
    f"({BACKEND_ENV}=docker); for trusted code only, {UNISOLATED_ENV}=1 runs it without isolation"
)


class SandboxUnavailable(RuntimeError):
    """Isolation does not work on this machine, so the sandbox refuses to run code (fail closed)."""


@cache
def bwrap_unavailable_reason() -> str:
    """Why bwrap cannot isolate an item here ("" when a trivial item passes under it). Once per process."""
    if not os.access(bwrap.BWRAP, os.X_OK):
        return f"{bwrap.BWRAP} is not installed"
    if reason := cgroup.unavailable_reason():  # no slot cgroup, no guarantee: see cgroup.py
        return f"no cgroup per slot can be made, so an item's processes could outlive it ({reason})"
    probe = Item(id="probe", code="x = 1", tests="assert x == 1")
    result = _run_once(probe, Limits(timeout_s=10.0), "bwrap", "cold")
    if result.passed:
        return ""
    detail = result.stderr.strip().splitlines()[-1:] or [result.error_class]
    logger.info("bwrap probe failed: %s %s", result.error_class, result.stderr[-500:])
    return f"{bwrap.BWRAP} cannot create its sandbox here ({result.error_class}: {detail[0][:200]})"


def bwrap_available() -> bool:
    return not bwrap_unavailable_reason()


def _env_flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise SandboxUnavailable(f"{name}: expected 1 or 0, got {os.environ[name]!r}")


def _default_backend() -> str:
    """The backend for ``backend=None``: bwrap, or what the operator chose. Never a silent fallback:
    without working isolation the sandbox refuses unless the operator opted in (docs/sandbox.md)."""
    chosen = os.environ.get(BACKEND_ENV, "").strip() or "bwrap"
    if chosen not in ("bwrap", "docker"):
        raise SandboxUnavailable(f"{BACKEND_ENV}: expected bwrap or docker, got {chosen!r}")
    if chosen == "docker":
        return resolve_backend("docker")
    reason = bwrap_unavailable_reason()
    if not reason:
        return "bwrap"
    if not _env_flag(UNISOLATED_ENV):
        raise SandboxUnavailable(f"the sandbox refuses to run code unisolated: {reason}; {INSTALL_HINT}")
    global _warned
    with _warn_lock:
        if not _warned:
            _warned = True
            logger.warning(
                "SANDBOX UNISOLATED (%s=1): %s; running code with the 'process' backend, which has no "
                "network, filesystem or pid isolation. Only for trusted code.",
                UNISOLATED_ENV,
                reason,
            )
    return "process"


def resolve_backend(backend: str | None) -> str:
    """The backend to run with, or SandboxUnavailable saying why none can (and what to do)."""
    if backend is None:
        return _default_backend()
    if backend not in backends.BACKENDS:
        raise ValueError(f"unknown sandbox backend {backend!r}; expected one of {backends.BACKENDS}")
    if backend == "bwrap" and (reason := bwrap_unavailable_reason()):
        raise SandboxUnavailable(f"the bwrap backend does not work here: {reason}; {INSTALL_HINT}")
    if backend == "docker":
        from . import docker_backend

        reason = docker_backend.unavailable_reason()
        if reason:
            raise SandboxUnavailable(f"the docker backend does not work here: {reason}")
    return backend


def resolve_mode(mode: str, backend: str) -> str:
    if mode not in MODES:
        raise ValueError(f"unknown sandbox mode {mode!r}; expected one of {MODES}")
    if mode == "warm" and not (backend == "bwrap" and os.geteuid() == 0):
        logger.info("warm mode needs the bwrap backend as root; running %s items cold", backend)
        return "cold"
    return mode


def run_batch(
    items: Sequence[Item],
    limits: Limits = DEFAULT_LIMITS,
    *,
    backend: str | None = None,
    workers: int | None = None,
    mode: str = "cold",
    cache: bool = True,
) -> list[Result]:
    """Run every item in its own isolated child; results in input order.

    mode="warm" forks each item from a prepared sandbox (bwrap as root; otherwise cold). With
    cache=True, identical (code, tests, entry_point, limits) run once per batch and their verdicts
    are remembered in RESULT_CACHE (not timeouts, not sandbox errors). Raises SandboxUnavailable,
    running nothing, where the backend's isolation does not work here (see ``resolve_backend``).
    """
    name = resolve_backend(backend)
    how = resolve_mode(mode, name)
    keys = [ResultCache.key(item, limits, name) for item in items]
    if not cache:  # every item runs, duplicates included
        keys = [f"{key}:{i}" for i, key in enumerate(keys)]
    done: dict[str, Result] = {}
    todo: dict[str, Item] = {}
    for key, item in zip(keys, items, strict=True):
        if key in done or key in todo:
            continue
        hit = RESULT_CACHE.get(key) if cache else None
        if hit is not None:
            done[key] = hit
        else:
            todo[key] = item
    if todo:
        n = max(1, min(workers or len(os.sched_getaffinity(0)), len(todo)))  # the CPUs we may use
        with _pool(n) as pool:
            fresh = list(pool.map(lambda item: _run_one(item, limits, name, how), todo.values()))
        for key, result in zip(todo, fresh, strict=True):
            done[key] = result
            if cache:
                RESULT_CACHE.put(key, result)
    return [
        result if (result := done[key]).id == item.id else replace(result, id=item.id)
        for key, item in zip(keys, items, strict=True)
    ]
