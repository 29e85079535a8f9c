"""A per-run budget stops a real run: deepspeed trainer on CPU ranks, checkpoint, no process left."""

import io
from decimal import Decimal

import pytest

from datasets_app.services import dataset_import
from runs.launch import run_launch
from runs.models import Run, RunStatus
from runs.spend.models import GpuPrice, RunCost
from runs.spend.services import run_cost_accrue
from tests.e2e.conftest import processes_mentioning, stack, wait_until, wait_verified  # noqa: F401 (fixture)
from tests.e2e.test_loop import DATASET
from tests.factories import UserFactory
from workers.spec import RunConfig

pytestmark = pytest.mark.e2e


def test_a_tiny_run_budget_stops_a_real_run_with_a_checkpoint(stack):  # noqa: F811 (the fixture)
    # $36 per process-hour: a cent per process-second, so a one-cent budget is spent within a second.
    GpuPrice.objects.create(pool=stack.pool, gpu_type="cpu", usd_per_gpu_hour=Decimal(36))
    user = UserFactory(username="e2e-budget")
    version = dataset_import(user=user, name="e2e-budget", fileobj=io.BytesIO(DATASET.encode())).version
    wait_verified(version.pk)
    config = RunConfig(steps=500, group_size=4, prompts_per_step=2, max_new_tokens=16, budget_usd=0.01)
    run = run_launch(user=user, dataset_version=version, name="budget", config=config, pool=stack.pool).run
    wait_until(lambda: (Run.objects.get(pk=run.pk).last_step or 0) >= 1, 240, f"step 1\n{stack.log_tail()}")

    stopped = run_cost_accrue().budget_stopped  # what Celery beat does every few seconds

    assert stopped == [run.pk]
    run.refresh_from_db()
    assert run.status == RunStatus.BUDGET_STOPPED
    assert "run budget reached" in run.status_message
    spec_path = str(stack.var_dir / "runs" / str(run.pk) / "spec.json")
    wait_until(lambda: not processes_mentioning(spec_path), 60, f"the trainer to exit\n{stack.log_tail()}")
    # The stack's nodes keep checkpoints under TRIAD_CHECKPOINT_DIR (default <TRIAD_VAR_DIR>/checkpoints).
    checkpoints = stack.var_dir / "checkpoints" / f"run-{run.pk}"
    assert checkpoints.is_dir() and any(checkpoints.iterdir()), stack.log_tail()
    run_cost_accrue()  # the last stretch, up to the stop
    cost = RunCost.objects.get(run=run)
    assert cost.final and cost.usd >= Decimal("0.01")
    assert (
        Run.objects.get(pk=run.pk).status == RunStatus.BUDGET_STOPPED
    )  # the launcher's report changes nothing
