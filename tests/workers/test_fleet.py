"""The sandbox fleet (docs/sandbox.md, "The sandbox fleet"): the client in workers/fleet.py against a real
`celery worker` on the sandbox queue, on Redis, holding no database URL, as a sandbox node does."""

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.conf import settings

from workers.fleet import FleetClient, FleetConfig, FleetUnavailable, fleet_unavailable_reason
from workers.sandbox import Item, Limits, run_batch
from workers.tasks import STOPPED_TASK
from workers.trainer.rewards import score_completions
from workers.trainer.spec import Problem, SandboxSpec

pytestmark = pytest.mark.postgres_only  # a Redis broker and result backend

REPO = Path(__file__).resolve().parents[2]
LIMITS = Limits(timeout_s=5, memory_mb=512)
GOOD = Item(id="good", code="def f(x):\n    return x\n", tests="assert f(1) == 1\n")
WRONG = Item(id="wrong", code="def f(x):\n    return 0\n", tests="assert f(1) == 1\n")
SYNTAX = Item(id="syntax", code="def f(x)\n    return x\n", tests="assert f(1) == 1\n")
# Tests that cannot run are a sandbox_error, decided before any sandbox starts (docs/sandbox.md).
CELERY = (sys.executable, "-m", "celery", "-A", "controlplane", "worker", "-P", "solo", "--loglevel", "INFO")
BROKEN = Item(id="broken", code="def f(x):\n    return x\n", tests="assert f(1 ==\n")


def redis_url() -> str:
    url = str(settings.CELERY_BROKER_URL)
    if not url.startswith("redis"):
        pytest.skip("the fleet needs a Redis broker")
    return url


@dataclass
class Worker:
    name: str
    queue: str
    control_queue: str
    log: Path
    proc: subprocess.Popen

    def tasks_done(self) -> int:
        return self.log.read_text(errors="replace").count("] succeeded in")


def start_worker(tmp_path: Path) -> Iterator[Worker]:
    """A sandbox node: `celery worker -Q <its own queue>`, no DATABASE_URL, its control queue its own."""
    tag = uuid.uuid4().hex[:8]
    url = redis_url()
    worker = Worker(
        name=f"fleet-{tag}@test",
        queue=f"sandbox-fleet-{tag}",
        control_queue=f"control-fleet-{tag}",
        log=tmp_path / f"worker-{tag}.log",
        proc=None,  # type: ignore[arg-type]
    )
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        CELERY_BROKER_URL=url,
        REDIS_URL=url,
        TRIAD_SANDBOX_QUEUE=worker.queue,
        TRIAD_CONTROL_QUEUE=worker.control_queue,
        TRIAD_VAR_DIR=str(tmp_path / "var"),
        TRIAD_DEV="true",
        PYTHONUNBUFFERED="1",
    )
    with worker.log.open("wb") as log:
        worker.proc = subprocess.Popen(
            [*CELERY, "-Q", worker.queue, "-n", worker.name],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while "ready." not in worker.log.read_text(errors="replace"):
        assert worker.proc.poll() is None, worker.log.read_text(errors="replace")
        assert time.monotonic() < deadline, "the sandbox worker did not start\n" + worker.log.read_text()
        time.sleep(0.1)
    try:
        yield worker
    finally:
        os.killpg(worker.proc.pid, signal.SIGTERM)
        try:
            worker.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(worker.proc.pid, signal.SIGKILL)
            worker.proc.wait()
        redis.Redis.from_url(url).delete(worker.queue, worker.control_queue)


@pytest.fixture(scope="module")
def worker(tmp_path_factory) -> Iterator[Worker]:
    yield from start_worker(tmp_path_factory.mktemp("fleet"))


def client(queue: str, **options) -> FleetClient:
    url = redis_url()
    return FleetClient(FleetConfig(broker_url=url, backend_url=url, queue=queue, **options))


def verdicts(results) -> list[tuple]:
    return [(r.id, r.passed, r.error_class, r.tests_passed, r.tests_total) for r in results]


def test_the_fleet_gives_the_local_verdicts_in_input_order_over_bounded_chunks(worker):
    items = [
        Item(id=f"{base.id}-{i}", code=base.code, tests=base.tests)
        for i, base in enumerate([GOOD, WRONG, SYNTAX, GOOD, WRONG, GOOD, GOOD, SYNTAX, WRONG, GOOD])
    ]
    fleet = client(worker.queue, chunk_items=3, in_flight=2)

    results = fleet.run_batch(items, LIMITS)

    assert verdicts(results) == verdicts(run_batch(items, LIMITS))
    assert [r.id for r in results] == [item.id for item in items]
    assert (fleet.stats.chunks, fleet.stats.peak_in_flight, fleet.stats.retried_items) == (4, 2, 0)
    assert worker.tasks_done() >= 4


def test_sandbox_error_items_go_once_more_through_the_queue_and_only_they(worker):
    items = [GOOD, BROKEN, Item(id="wrong", code=WRONG.code, tests=WRONG.tests), BROKEN]
    fleet = client(worker.queue, chunk_items=2, in_flight=2)
    before = worker.tasks_done()

    results = fleet.run_batch(items, LIMITS)

    assert [r.error_class for r in results] == ["passed", "sandbox_error", "wrong_answer", "sandbox_error"]
    assert fleet.stats.retried_items == 2
    assert fleet.stats.chunks == 3  # two chunks, then the two broken items in one chunk again, not more
    deadline = time.monotonic() + 10
    while worker.tasks_done() - before < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert worker.tasks_done() - before == 3


def test_the_trainer_scores_the_same_through_the_fleet_as_on_its_node(worker):
    problems = [
        Problem(task_id="p/0", prompt="def f(x):\n", entry_point="f", tests="assert f(2) == 2\n"),
        Problem(
            task_id="p/1",
            prompt="def g(a, b):\n",
            entry_point="g",
            tests="assert g(1, 2) == 3\nassert g(0, 0) == 0\n",
        ),
    ]
    completions = [
        ["    return x\n", "    return 0\n", "    return x +\n"],
        ["    return a + b\n", "    return a\n", "    return b * 0\n"],
    ]
    fleet = client(worker.queue, chunk_items=2, in_flight=2)

    def fields(scores):
        return [[(s.reward, s.valid, s.passed, s.error_class, s.tests_passed) for s in g] for g in scores]

    there = score_completions(problems, completions, sandbox=SandboxSpec(), partial_credit=True, fleet=fleet)
    here = score_completions(problems, completions, sandbox=SandboxSpec(), partial_credit=True)

    assert fields(there) == fields(here)
    assert fields(there)[1][1] == (0.5, True, False, "wrong_answer", 1)  # partial credit survives the trip
    assert fleet.stats.chunks == 3


def test_with_no_worker_at_most_in_flight_chunks_wait_and_unanswered_ones_are_sandbox_error(caplog):
    queue = f"sandbox-nobody-{uuid.uuid4().hex[:8]}"
    fleet = client(queue, chunk_items=1, in_flight=2, chunk_timeout_s=1.0)
    db = redis.Redis.from_url(redis_url())
    queued: list[int] = []
    items = [Item(id=f"i{k}", code=GOOD.code, tests=GOOD.tests) for k in range(3)]
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(fleet.run_batch(items, LIMITS)))
    try:
        thread.start()
        deadline = time.monotonic() + 0.6
        while db.llen(queue) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # were it unbounded, the third chunk would be queued by now
        queued.append(db.llen(queue))
        thread.join(timeout=30)
    finally:
        db.delete(queue)

    assert queued == [2]
    assert not thread.is_alive()
    (results,) = outcome
    assert [(r.id, r.error_class) for r in results] == [
        ("i0", "sandbox_error"),
        ("i1", "sandbox_error"),
        ("i2", "sandbox_error"),
    ]
    assert "no answer from the sandbox fleet within 1 s" in results[0].stderr
    assert fleet.stats.timed_out_chunks == 6  # each chunk, then once more each
    assert "its items are sandbox_error" in caplog.text


def test_fleet_mode_needs_redis_for_the_broker_and_the_results():
    assert fleet_unavailable_reason("redis://h:6379/1", "redis://h:6379/2") == ""
    assert "Redis broker" in fleet_unavailable_reason("filesystem://", "")
    assert "none is set" in fleet_unavailable_reason("redis://h/1", "")
    with pytest.raises(FleetUnavailable, match="Redis broker"):
        FleetConfig.from_env({})
    with pytest.raises(ValueError, match="TRIAD_FLEET_IN_FLIGHT"):
        FleetConfig.from_env(
            {"CELERY_BROKER_URL": "redis://h/1", "REDIS_URL": "redis://h/2", "TRIAD_FLEET_IN_FLIGHT": "0"}
        )


# Last: it takes the module's worker out of its queue.
def test_a_worker_whose_batches_fail_twice_in_a_row_leaves_the_queue_and_reports_itself(worker):
    fleet = client(worker.queue, chunk_items=1, in_flight=1, chunk_timeout_s=1.5)
    db = redis.Redis.from_url(redis_url())
    assert fleet.run_batch([GOOD], LIMITS)[0].passed  # a batch with a verdict: none failed in a row now
    for k in range(2):  # two whole batches of sandbox_error, straight to the queue (no client retry)
        sent = fleet.app.send_task(
            "sandbox.run_batch",
            args=[{"limits": {"timeout_s": 5}, "items": [{**BROKEN.__dict__, "id": f"b{k}"}]}],
            queue=worker.queue,
        )
        assert sent.get(timeout=30)["results"][0]["error_class"] == "sandbox_error"

    raw = db.lrange(worker.control_queue, 0, -1)
    assert len(raw) == 1, raw
    message = json.loads(raw[0])
    assert message["headers"]["task"] == STOPPED_TASK
    _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (kwargs["name"], kwargs["queue"], kwargs["batches"]) == (worker.name, worker.queue, 2)
    assert kwargs["reason"].startswith("tests do not compile")
    time.sleep(1.0)  # the cancel_consumer broadcast is handled once the solo pool's task returned

    results = fleet.run_batch([GOOD], LIMITS)  # nobody takes it any more

    assert results[0].error_class == "sandbox_error"
    assert fleet.stats.timed_out_chunks == 2
    assert "stops consuming" in worker.log.read_text()
