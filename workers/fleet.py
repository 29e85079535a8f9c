"""The sandbox fleet's client: a trainer's batch scored by the `sandbox` queue's workers instead of its own
node (docs/sandbox.md, "The sandbox fleet"; the run spec's `sandbox_mode: fleet`).

The batch is split into chunks, each a `sandbox.run_batch` task (workers/tasks.py: the CLI's JSON in and
out) sent through Celery to the sandbox queue, with at most `in_flight` chunks outstanding (back-pressure:
a trainer never floods the queue the whole fleet shares). Results come back through the Redis result
backend and are put back in input order. Items that come back `sandbox_error` are sent once more
through the queue (another worker may serve them); a chunk that never returns within its timeout is a
`sandbox_error` for its items, never a verdict on the model.

Plain Python: no Django, no database. The broker, the result backend and the queue come from the
environment the trainer inherits from its node's Celery worker (CELERY_BROKER_URL, CELERY_RESULT_BACKEND or
else REDIS_URL, TRIAD_SANDBOX_QUEUE)."""

from __future__ import annotations

import collections
import dataclasses
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeout

from workers.sandbox.types import Item, Limits, Result
from workers.sandbox.verdict import infra

logger = logging.getLogger(__name__)

TASK = "sandbox.run_batch"
INFRA_ERROR = "sandbox_error"
REDIS_SCHEMES = ("redis://", "rediss://", "redis+socket://")
BROKER_ENV = "CELERY_BROKER_URL"
BACKEND_ENV = "CELERY_RESULT_BACKEND"
REDIS_ENV = "REDIS_URL"
QUEUE_ENV = "TRIAD_SANDBOX_QUEUE"
CHUNK_ITEMS_ENV = "TRIAD_FLEET_CHUNK_ITEMS"
IN_FLIGHT_ENV = "TRIAD_FLEET_IN_FLIGHT"
TIMEOUT_ENV = "TRIAD_FLEET_CHUNK_TIMEOUT_S"


class FleetUnavailable(RuntimeError):
    """Fleet mode cannot work here (no Redis broker or result backend): refused before anything is sent."""


def result_backend_url(environ: Mapping[str, str]) -> str:
    """Where results come back: CELERY_RESULT_BACKEND, else REDIS_URL (as controlplane/settings.py)."""
    return (environ.get(BACKEND_ENV) or environ.get(REDIS_ENV) or "").strip()


def fleet_unavailable_reason(broker_url: str, backend_url: str) -> str:
    """Why fleet mode cannot run with this broker and result backend ("" when it can): both must be Redis.
    The embedded default's filesystem broker has no result backend, and its one machine needs no fleet."""
    if not broker_url.startswith(REDIS_SCHEMES):
        where = broker_url.split("://", 1)[0] + "://" if broker_url else "none"
        return (
            f"sandbox_mode fleet needs a Redis broker (CELERY_BROKER_URL; this one is {where}); "
            "use sandbox_mode local"
        )
    if not backend_url.startswith(REDIS_SCHEMES):
        return (
            "sandbox_mode fleet needs a Redis result backend (CELERY_RESULT_BACKEND or REDIS_URL; "
            f"{'none is set' if not backend_url else 'this one is not Redis'}); use sandbox_mode local"
        )
    return ""


def _positive(environ: Mapping[str, str], name: str, default: float, kind: type) -> Any:
    raw = environ.get(name, "").strip()
    if not raw:
        return kind(default)
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if not value > 0:
        raise ValueError(f"{name}: expected a number > 0, got {raw!r}")
    return value


@dataclass(frozen=True)
class FleetConfig:
    broker_url: str
    backend_url: str
    queue: str = "sandbox"
    chunk_items: int = 16  # items per task: large enough to amortise a round trip, small enough to spread
    in_flight: int = 4  # chunks outstanding at once, per client (per trainer rank)
    chunk_timeout_s: float = 600.0  # from its send: queueing behind other trainers' chunks counts

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FleetConfig:
        """The config from the environment; FleetUnavailable (saying what is missing) without Redis."""
        env = os.environ if environ is None else environ
        broker, backend = env.get(BROKER_ENV, "").strip(), result_backend_url(env)
        if reason := fleet_unavailable_reason(broker, backend):
            raise FleetUnavailable(reason)
        return cls(
            broker_url=broker,
            backend_url=backend,
            queue=env.get(QUEUE_ENV, "").strip() or "sandbox",
            chunk_items=_positive(env, CHUNK_ITEMS_ENV, cls.chunk_items, int),
            in_flight=_positive(env, IN_FLIGHT_ENV, cls.in_flight, int),
            chunk_timeout_s=_positive(env, TIMEOUT_ENV, cls.chunk_timeout_s, float),
        )


@dataclass
class FleetStats:
    """What the client did, summed over its batches (for logs, the bench and tests)."""

    chunks: int = 0
    peak_in_flight: int = 0
    retried_items: int = 0
    timed_out_chunks: int = 0
    failed_chunks: int = 0  # the task raised, or the worker died under it


@dataclass
class _Pending:
    start: int  # index of its first item in the batch
    size: int
    result: Any  # celery.result.AsyncResult
    deadline: float


class FleetClient:
    """Scores batches on the sandbox queue's workers; `run_batch` has the signature of the local one."""

    def __init__(self, config: FleetConfig):
        self.config = config
        self.stats = FleetStats()
        self.app = Celery(
            "triad-fleet", broker=config.broker_url, backend=config.backend_url, set_as_current=False
        )
        self.app.conf.update(
            task_serializer="json",
            result_serializer="json",
            accept_content=["json"],
            result_expires=3600,  # a result nobody collects (the trainer died) does not stay in Redis
            broker_connection_timeout=5.0,
            # Same as the control plane's (controlplane/celery.py): a chunk is never redelivered early.
            broker_transport_options={"visibility_timeout": 3600},
        )

    def run_batch(
        self, items: Sequence[Item], limits: Limits, *, cache: bool = True, **_local: Any
    ) -> list[Result]:
        """Every item's result, in input order; `sandbox_error` items are sent once more. Options of the
        local run_batch that choose how this node runs items (`workers`, `mode`, `backend`) do not
        apply: each sandbox worker runs its chunks its own way."""
        results = self._run(items, limits, cache=cache)
        redo = [k for k, r in enumerate(results) if r.error_class == INFRA_ERROR]
        if redo:
            self.stats.retried_items += len(redo)
            again = self._run([items[k] for k in redo], limits, cache=cache)
            for k, r in zip(redo, again, strict=True):
                results[k] = r
        return results

    def close(self) -> None:
        self.app.close()

    def _run(self, items: Sequence[Item], limits: Limits, *, cache: bool) -> list[Result]:
        out: list[Result | None] = [None] * len(items)
        pending: collections.deque[_Pending] = collections.deque()
        size = self.config.chunk_items
        limits_json = dataclasses.asdict(limits)
        for start in range(0, len(items), size):
            while len(pending) >= self.config.in_flight:  # back-pressure: wait for the oldest chunk
                self._collect(pending.popleft(), items, out)
            chunk = [dataclasses.asdict(item) for item in items[start : start + size]]
            batch = {"limits": limits_json, "items": chunk, "cache": cache}
            sent = self.app.send_task(TASK, args=[batch], queue=self.config.queue)
            pending.append(_Pending(start, len(chunk), sent, time.monotonic() + self.config.chunk_timeout_s))
            self.stats.chunks += 1
            self.stats.peak_in_flight = max(self.stats.peak_in_flight, len(pending))
        while pending:
            self._collect(pending.popleft(), items, out)
        return [r for r in out if r is not None]

    def _collect(self, p: _Pending, items: Sequence[Item], out: list[Result | None]) -> None:
        """Waits for chunk `p` (until its deadline) and puts its results in `out`."""
        why = ""
        try:
            answer = p.result.get(timeout=max(0.01, p.deadline - time.monotonic()), propagate=False)
        except CeleryTimeout:
            self.stats.timed_out_chunks += 1
            why = f"no answer from the sandbox fleet within {self.config.chunk_timeout_s:g} s"
            p.result.revoke()  # still queued: no worker runs it later for nobody
        else:
            if p.result.successful() and isinstance(answer, dict):
                results = answer.get("results")
                if isinstance(results, list) and len(results) == p.size:
                    for k, raw in enumerate(results):
                        out[p.start + k] = Result(**raw)
                    p.result.forget()
                    return
                count = len(results) if isinstance(results, list) else "no"
                why = f"the sandbox worker answered {count} results for {p.size} items"
            else:
                why = f"the sandbox task failed: {type(answer).__name__}: {answer}"
            self.stats.failed_chunks += 1
            p.result.forget()
        logger.warning(
            "sandbox fleet: chunk %s (items %d-%d, queue %s): %s; its items are sandbox_error",
            p.result.id,
            p.start,
            p.start + p.size - 1,
            self.config.queue,
            why,
        )
        now = time.monotonic()
        for k in range(p.size):
            out[p.start + k] = infra(items[p.start + k], now, f"sandbox fleet: {why}")
