"""Per-run ingest rate limit: events per second, in a one-second window shared by every web process
(Redis when REDIS_URL is set; this process's memory in embedded mode, where there is one process).

Over the limit the API answers 429 with Retry-After and writes nothing; the ingest client keeps the
batch spooled and sends it again after the wait, so a burst costs time, never data.
"""

import threading
import time
from typing import Any

from django.conf import settings

_local_lock = threading.Lock()
_local_counts: dict[tuple[int, int], int] = {}
_redis_client: Any = None


def _redis() -> Any:
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    return _redis_client


def ingest_retry_after(*, run_id: int, events: int) -> int | None:
    """Count `events` against the run's budget of this second; None if allowed, else seconds to wait."""
    limit = settings.TRIAD_INGEST_EVENTS_PER_S
    if limit <= 0:
        return None
    window = int(time.time())
    if settings.REDIS_URL:
        key = f"triad:ingest:{run_id}:{window}"
        pipe = _redis().pipeline()
        pipe.incrby(key, events)
        pipe.expire(key, 5)
        used = int(pipe.execute()[0])
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
