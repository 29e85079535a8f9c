"""The one way the web tier builds a synchronous Redis client (rate limits, live-update publishing).

Redis is transport, never the record: callers fail fast and carry on without it, so a client retries
once at once (a pooled connection gone stale across a Redis restart) and never sleeps.
"""

from typing import Any


def redis_client(url: str, *, socket_timeout: float, socket_connect_timeout: float = 1) -> Any:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_connect_timeout,
        retry=Retry(NoBackoff(), 1),
    )
