"""Per-run ingest rate limit: events per second, in a one-second window shared by every web process
(Redis when REDIS_URL is set; this process's memory in embedded mode, where there is one process).

Over the limit the API answers 429 with Retry-After and writes nothing; the ingest client keeps the
batch spooled and sends it again after the wait, so a burst costs time, never data.

Redis is transport, not the record: while it is unreachable the limit is not enforced (the batch is let
through, and a warning logged) rather than failing the ingest.
"""

import logging
import threading
import time
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

_local_lock = threading.Lock()
_local_counts: dict[tuple[int, int], int] = {}
_redis_client: Any = None
_redis_client_url = ""
_REDIS_PAUSE_S = 1.0  # after Redis failed, batches go unmetered this long before it is tried again
_redis_paused_until = 0.0


def _redis() -> Any:
    global _redis_client, _redis_client_url
    if _redis_client is None or _redis_client_url != settings.REDIS_URL:
        _redis_client_url = settings.REDIS_URL
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # One immediate retry (a pooled connection gone stale across a Redis restart), never a sleep.
        _redis_client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 1)
        )
    return _redis_client


def _redis_count(key: str, events: int) -> int | None:
    """The key's count after adding `events`, or None while Redis cannot be reached."""
    global _redis_paused_until
    if time.monotonic() < _redis_paused_until:
        return None
    try:
        pipe = _redis().pipeline(transaction=False)  # one round trip; no MULTI needed
        pipe.incrby(key, events)
        pipe.expire(key, 5)
        return int(pipe.execute()[0])
    except Exception as exc:  # redis.RedisError, or an OS error on the socket
        _redis_paused_until = time.monotonic() + _REDIS_PAUSE_S
        logger.warning("ingest rate limit not enforced: Redis unreachable (%s)", exc)
        return None


def ingest_retry_after(*, run_id: int, events: int) -> int | None:
    """Count `events` against the run's budget of this second; None if allowed, else seconds to wait."""
    limit = settings.TRIAD_INGEST_EVENTS_PER_S
    if limit <= 0:
        return None
    window = int(time.time())
    if settings.REDIS_URL:
        counted = _redis_count(f"triad:ingest:{run_id}:{window}", events)
        if counted is None:
            return None
        used = counted
    else:
        with _local_lock:
            used = _local_counts.get((run_id, window), 0) + events
            _local_counts[(run_id, window)] = used
            for stale in [k for k in _local_counts if k[1] < window - 5]:
                del _local_counts[stale]
    # A single batch larger than the limit is let through alone rather than refused forever.
    if used > limit and used != events:
        return 1
    return None
