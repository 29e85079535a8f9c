"""The whole loop for real: launch → Celery worker → deepspeed trainer → sandbox → ingest → WebSocket."""

import asyncio
import json

import pytest
import websockets
from django.test import Client

from datasets_app.services import dataset_import
from runs.launch import run_launch
from runs.lifecycle import run_cancel
from runs.models import Generation, MetricPoint, Run, RunStatus
from tests.e2e.conftest import processes_mentioning, wait_until, wait_verified
from tests.factories import UserFactory
from workers.spec import RunConfig

pytestmark = pytest.mark.e2e

DATASET = (
    '{"task_id": "E/0", "prompt": "def add(a, b):\\n", "entry_point": "add", "canonical_solution": '
    '"    return a + b\\n", "test": "def check(candidate):\\n    assert candidate(1, 2) == 3\\n"}\n'
    '{"task_id": "E/1", "prompt": "def ident(x):\\n", "entry_point": "ident", "canonical_solution": '
    '"    return x\\n", "test": "def check(candidate):\\n    assert candidate(3) == 3\\n"}\n'
)


def launch(stack, steps: int, sandbox_mode: str = "local"):
    import io

    user = UserFactory(username="e2e")
    version = dataset_import(user=user, name="e2e", fileobj=io.BytesIO(DATASET.encode())).version
    wait_verified(version.pk)
    config = RunConfig(
        steps=steps, group_size=4, prompts_per_step=2, max_new_tokens=32, sandbox_mode=sandbox_mode
    )
    return user, run_launch(
        user=user, dataset_version=version, name="e2e", config=config, pool=stack.pool
    ).run


async def receive_metrics(url: str, cookie: str, origin: str, want: int) -> list[dict]:
    received: list[dict] = []
    async with websockets.connect(url, additional_headers={"Cookie": cookie, "Origin": origin}) as ws:
        while sum(len(m.get("metrics", [])) for m in received) < want:
            received.append(json.loads(await asyncio.wait_for(ws.recv(), timeout=120)))
    return received


def test_a_run_trains_under_deepspeed_and_streams_metrics_to_a_websocket(stack):
    """Scored through the sandbox fleet (sandbox_mode fleet): a sandbox node of its own, with no
    database URL, runs the trainer's batches (the other tests here score on the trainer's node)."""
    fleet_node = stack.start_sandbox_node()
    user, run = launch(stack, steps=4, sandbox_mode="fleet")
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    ws_url = stack.base_url.replace("http", "ws") + f"/ws/runs/{run.pk}/"

    messages = asyncio.run(receive_metrics(ws_url, cookie, stack.base_url, want=1))

    assert any(p["key"] == "reward/mean" for m in messages for p in m.get("metrics", []))
    wait_until(
        lambda: Run.objects.get(pk=run.pk).status in (RunStatus.SUCCEEDED, RunStatus.FAILED),
        300,
        f"run to finish\n{stack.log_tail()}",
    )
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, f"{run.status_message}\n{stack.log_tail()}"
    steps = set(MetricPoint.objects.filter(run=run, key="pass_rate").values_list("step", flat=True))
    assert steps == {0, 1, 2, 3}
    for key in ("reward/mean", "pass_rate", "loss", "time/step_s", "sandbox/infra_error_frac"):
        assert MetricPoint.objects.filter(run=run, key=key).count() == 4, key
    infra = MetricPoint.objects.filter(run=run, key="sandbox/infra_error_frac").values_list(
        "value", flat=True
    )
    assert set(infra) == {0.0}
    fleet_log = (stack.var_dir / f"worker-{stack.workers.index(fleet_node)}.log").read_text()
    assert fleet_log.count("Task sandbox.run_batch[") >= 2 * 4  # received and succeeded, every step
    assert Generation.objects.filter(run=run).exists()
    # The worker registered itself as a node of the pool, and the run knows where it ran.
    wait_until(lambda: Run.objects.get(pk=run.pk).node_id is not None, 30, "the run's node")
    assert Run.objects.select_related("node").get(pk=run.pk).node.pool == stack.pool


def test_cancel_ends_the_run_and_every_process_of_it(stack):
    _, run = launch(stack, steps=500)
    wait_until(
        lambda: MetricPoint.objects.filter(run=run).exists(), 240, f"a first metric\n{stack.log_tail()}"
    )

    assert run_cancel(run_id=run.pk)

    wait_until(
        lambda: Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED,
        90,
        f"the run to be cancelled\n{stack.log_tail()}",
    )
    spec_path = str(stack.var_dir / "runs" / str(run.pk) / "spec.json")
    wait_until(lambda: not processes_mentioning(spec_path), 15, "the trainer processes to exit")


def test_a_run_whose_worker_dies_is_lost_then_resumes_from_its_checkpoint(stack):
    from runs.launch import run_resume
    from runs.lifecycle import run_reap_lost

    user = UserFactory(username="e2e-lost")
    import io

    version = dataset_import(user=user, name="e2e-lost", fileobj=io.BytesIO(DATASET.encode())).version
    wait_verified(version.pk)
    config = RunConfig(steps=40, group_size=4, prompts_per_step=2, max_new_tokens=16, checkpoint_every=2)
    run = run_launch(user=user, dataset_version=version, name="lost", config=config, pool=stack.pool).run
    wait_until(lambda: (Run.objects.get(pk=run.pk).last_step or 0) >= 5, 240, f"step 5\n{stack.log_tail()}")

    stack.kill_worker(stack.workers[0])

    spec_path = str(stack.var_dir / "runs" / str(run.pk) / "spec.json")
    wait_until(
        lambda: not processes_mentioning(spec_path), 30, "the orphaned trainer to die with its launcher"
    )
    wait_until(lambda: run_reap_lost(timeout_s=2) == [run.pk], 30, "the reaper to mark the run lost")
    assert Run.objects.get(pk=run.pk).status == RunStatus.LOST

    stack.start_worker()
    assert run_resume(run_id=run.pk) is not None

    wait_until(
        lambda: Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED,
        300,
        f"the resumed run\n{stack.log_tail()}",
    )
    steps = sorted(MetricPoint.objects.filter(run=run, key="pass_rate").values_list("step", flat=True))
    assert steps[-1] == 39
    assert set(steps) == set(range(40))  # the curve continues: no step missing
    assert steps.count(0) == 1  # resumed from a checkpoint, not from scratch
