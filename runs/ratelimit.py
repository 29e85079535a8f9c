"""Rate limits shared by every web process: fixed windows counted in Redis when REDIS_URL is set, and in
this process's memory in embedded mode, where there is one process.

- Ingest, per run: events per second. Over the limit the API answers 429 with Retry-After and writes
  nothing; the ingest client keeps the batch spooled and sends it again after the wait, so a burst costs
  time, never data. Redis is transport, not the record: while it is unreachable this limit is not
  enforced (the batch is let through, and a warning logged) rather than failing the ingest.
- REST API, per personal token: calls per clock minute. While Redis is unreachable it falls back to this
  process's own count, as compare does: a limit on callers is never silently off.
- Review compare, per user: new test-by-test matrices (sandbox work) per minute. While Redis is
  unreachable this one falls back to this process's own count: it limits sandbox work, so it stays on.
"""

import logging
import math
import threading
import time
from typing import Any

from django.conf import settings

from controlplane.redis_client import redis_client

logger = logging.getLogger(__name__)

_local_lock = threading.Lock()
# (scope, subject, window number) -> count; a window is `time // window_s`.
_local_counts: dict[tuple[str, int, int], int] = {}
_redis_client: Any = None
_redis_client_url = ""
_REDIS_PAUSE_S = 1.0  # after Redis failed, counts skip it this long before it is tried again
_redis_paused_until = 0.0


def _redis() -> Any:
    global _redis_client, _redis_client_url
    if _redis_client is None or _redis_client_url != settings.REDIS_URL:
        _redis_client_url = settings.REDIS_URL
        _redis_client = redis_client(settings.REDIS_URL, socket_timeout=1)
    return _redis_client


def _redis_count(key: str, amount: int, expire_s: int) -> int | None:
    """The key's count after adding `amount`, or None while Redis cannot be reached."""
    global _redis_paused_until
    if time.monotonic() < _redis_paused_until:
        return None
    try:
        pipe = _redis().pipeline(transaction=False)  # one round trip; no MULTI needed
        pipe.incrby(key, amount)
        pipe.expire(key, expire_s)
        return int(pipe.execute()[0])
    except Exception as exc:  # redis.RedisError, or an OS error on the socket
        _redis_paused_until = time.monotonic() + _REDIS_PAUSE_S
        logger.warning("rate limit: Redis unreachable (%s)", exc)
        return None


def _local_count(scope: str, subject: int, window: int, amount: int) -> int:
    with _local_lock:
        used = _local_counts.get((scope, subject, window), 0) + amount
        _local_counts[(scope, subject, window)] = used
        for stale in [k for k in _local_counts if k[0] == scope and k[2] < window - 5]:
            del _local_counts[stale]
    return used


def ingest_retry_after(*, run_id: int, events: int) -> int | None:
    """Count `events` against the run's budget of this second; None if allowed, else seconds to wait."""
    limit = settings.TRIAD_INGEST_EVENTS_PER_S
    if limit <= 0:
        return None
    window = int(time.time())
    if settings.REDIS_URL:
        counted = _redis_count(f"triad:ingest:{run_id}:{window}", events, 5)
        if counted is None:
            return None
        used = counted
    else:
        used = _local_count("ingest", run_id, window, events)
    # A single batch larger than the limit is let through alone rather than refused forever.
    if used > limit and used != events:
        return 1
    return None


COMPARE_WINDOW_S = 60
API_WINDOW_S = 60


def api_retry_after(*, token_id: int) -> int | None:
    """Count one call against the token's budget of this clock minute; None if allowed, else the seconds
    until the next minute starts."""
    limit = settings.TRIAD_API_CALLS_PER_MIN
    if limit <= 0:
        return None
    now = time.time()
    window = int(now // API_WINDOW_S)
    used = None
    if settings.REDIS_URL:
        used = _redis_count(f"triad:api:{token_id}:{window}", 1, API_WINDOW_S + 5)
    if used is None:  # embedded mode, or Redis unreachable: this process's own count
        used = _local_count("api", token_id, window, 1)
    if used > limit:
        return max(1, math.ceil((window + 1) * API_WINDOW_S - now))
    return None


def compare_retry_after(*, user_id: int) -> int | None:
    """Count one new compare matrix against the user's budget of this clock minute; None if allowed,
    else the seconds until the next minute starts."""
    limit = settings.TRIAD_COMPARE_PER_MIN
    if limit <= 0:
        return None
    now = time.time()
    window = int(now // COMPARE_WINDOW_S)
    used = None
    if settings.REDIS_URL:
        used = _redis_count(f"triad:compare:{user_id}:{window}", 1, COMPARE_WINDOW_S + 5)
    if used is None:  # embedded mode, or Redis unreachable: this process's own count
        used = _local_count("compare", user_id, window, 1)
    if used > limit:
        return max(1, math.ceil((window + 1) * COMPARE_WINDOW_S - now))
    return None
