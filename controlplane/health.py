"""The health endpoint for load balancers: `GET /healthz` (docs/deploy.md, "Health").

Each check answers "ok", "failed" or "not configured" and nothing more: the endpoint needs no login, so why
a check failed goes to the log, never into the answer. The checks run side by side, each bounded by
TRIAD_HEALTH_TIMEOUT_S, so a hung dependency costs the probe seconds, not the proxy's whole timeout.
"""

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from urllib.parse import urlparse

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from controlplane.celery import app
from controlplane.redis_client import redis_client

logger = logging.getLogger(__name__)

OK, FAILED, NOT_CONFIGURED = "ok", "failed", "not configured"
# Brokers that are a folder or memory of this machine (the embedded default): nothing to reach.
_SERVERLESS_BROKERS = {"filesystem", "memory"}
# A check still hanging after its timeout keeps its thread until its own socket timeout; a few spare.
_pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="healthz")


def _database() -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()  # this pool thread's own connection (back to the pool on PostgreSQL)


def _redis() -> None:
    timeout = settings.TRIAD_HEALTH_TIMEOUT_S
    client = redis_client(settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


def _broker() -> None:
    with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
        # One attempt, no retry: a broker that refuses is down for the probe.
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=settings.TRIAD_HEALTH_TIMEOUT_S)


def health_check() -> dict[str, str]:
    """Each dependency of the web tier: "ok", "failed" or "not configured" (and so passing)."""
    checks: dict[str, Callable[[], None] | None] = {
        "database": _database,
        "redis": _redis if settings.REDIS_URL else None,
        "broker": None if urlparse(settings.CELERY_BROKER_URL).scheme in _SERVERLESS_BROKERS else _broker,
    }
    futures = {name: _pool.submit(check) for name, check in checks.items() if check is not None}
    wait(futures.values(), timeout=settings.TRIAD_HEALTH_TIMEOUT_S)
    results = {name: NOT_CONFIGURED for name, check in checks.items() if check is None}
    for name, future in futures.items():
        if not future.done():
            logger.warning("health: %s did not answer within %gs", name, settings.TRIAD_HEALTH_TIMEOUT_S)
            results[name] = FAILED
        elif (exc := future.exception()) is not None:
            logger.warning("health: %s failed: %s: %s", name, type(exc).__name__, exc)
            results[name] = FAILED
        else:
            results[name] = OK
    return {name: results[name] for name in checks}


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    checks = health_check()
    failed = FAILED in checks.values()
    return JsonResponse({"status": FAILED if failed else OK, "checks": checks}, status=503 if failed else 200)
