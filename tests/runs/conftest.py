"""Celery for the tests of tasks that go to a pool's nodes (models, exports, evaluations): a private
broker the test may stop and the messages waiting on its queues (`eager`, every task run where it is
sent, is in tests/conftest.py)."""

import json
from collections.abc import Callable
from typing import Any

import pytest
import redis

from controlplane.celery import app


@pytest.fixture
def broker(redis_server, monkeypatch):
    """Celery publishes to a private redis-server, which the test may stop as a crash would."""
    monkeypatch.setenv("CELERY_BROKER_URL", redis_server.url(1))  # Celery reads it before its settings
    # The app keeps its connection pools for the broker it first used: make fresh ones for this one
    # (monkeypatch puts the old ones back afterwards).
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    return redis_server


@pytest.fixture
def queued(broker) -> Callable[[str], list[dict[str, Any]]]:
    """The messages waiting on a queue of the private broker, the newest first (Celery LPUSHes)."""

    def read(queue: str) -> list[dict[str, Any]]:
        return [json.loads(m) for m in redis.Redis.from_url(broker.url(1)).lrange(queue, 0, -1)]

    return read
