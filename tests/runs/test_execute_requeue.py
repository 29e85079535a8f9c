"""A start message whose gang did not form goes back on the queue it came from (issue #17): the run keeps
its N messages in flight, and no worker holds one back (no countdown, no ETA)."""

import json
from pathlib import Path

import pytest
import redis

from controlplane.celery import app
from runs.tasks import run_execute_task
from tests.workers.trainer.fake_control import FakeControl


@pytest.fixture
def broker(redis_server, monkeypatch):
    """Celery publishes to a private redis-server (as in test_broker_down.py)."""
    monkeypatch.setenv("CELERY_BROKER_URL", redis_server.url(1))
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    return redis.Redis.from_url(redis_server.url(1))


@pytest.fixture
def control(settings, tmp_path: Path):
    fake = FakeControl(token="tok").start()
    fake.spec = {"run_id": 7, "attempt": 1, "resources": {"num_nodes": 2, "procs_per_node": 1, "gpu": False}}
    # Another run of the pool is gathering its nodes: not now.
    fake.gang = lambda _kind, _body: (
        409,
        {"error": "run #9 is gathering its nodes (1 of 2 claimed)", "desired_state": "queued", "retry": True},
    )
    settings.TRIAD_CONTROL_URL = fake.url
    settings.TRIAD_RUNS_DIR = tmp_path / "runs"
    settings.TRIAD_CHECKPOINT_DIR = tmp_path / "checkpoints"
    settings.TRIAD_NODE_ADDRESS = "10.0.0.5"
    yield fake
    fake.stop()


def _messages(broker: redis.Redis, queue: str) -> list[dict]:
    return [json.loads(raw) for raw in broker.lrange(queue, 0, -1)]


def test_a_requeued_start_goes_back_on_the_queue_it_came_from_with_the_same_arguments(broker, control):
    result = run_execute_task.apply(args=[7, "tok"], routing_key="gpu.h200").get()

    assert result == "requeue"
    [message] = _messages(broker, "gpu.h200")
    assert message["headers"]["task"] == "runs.execute"
    assert message["headers"]["argsrepr"] == "[7, 'tok']"
    assert message["headers"]["eta"] is None  # a held-back ETA message would stall one worker
    assert _messages(broker, "gpu.cpu") == []
    [claim] = control.claim_bodies
    assert claim["address"] == "10.0.0.5"  # the node's announced address (TRIAD_NODE_ADDRESS)


def test_a_start_with_no_queue_of_its_own_goes_back_to_the_default_pools(broker, control, settings):
    settings.TRIAD_DEFAULT_POOL = "cpu"

    assert run_execute_task.apply(args=[7, "tok"]).get() == "requeue"

    assert len(_messages(broker, "gpu.cpu")) == 1
