"""A run that leaves its GPUs per node to the node (0) is billed for what its node resolved
(docs/spend.md)."""

import datetime as dt
from decimal import Decimal

import pytest

from runs.lifecycle import run_claim
from runs.models import Run, RunStatus
from runs.nodes import NodeInfo, node_register, run_node_assign
from runs.spend.models import GpuPrice, RunCost
from runs.spend.selectors import spend_estimate
from runs.spend.services import run_cost_accrue
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2025, 5, 10, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


@pytest.fixture(autouse=True)
def prices(settings):
    settings.TRIAD_SPEND_GRACE_S = 30
    settings.TRIAD_PROCS_PER_NODE = 2
    GpuPrice.objects.create(pool="h200", gpu_type="H200", usd_per_gpu_hour=Decimal("3.60"))
    assert GpuPrice.objects.get(pool="cpu").usd_per_gpu_hour == Decimal("0.10")  # seeded, per process


def started_run(*, pool: str, gpus_per_node: int = 0, ranks: int | None = None, attempt: int = 1) -> Run:
    """A run claimed by a launcher that resolved `ranks` (None: an older one that said nothing), then
    running for an hour."""
    run = RunFactory(pool=pool, config={"steps": 100, "gpus_per_node": gpus_per_node}, attempt=attempt)
    provenance = {"hostname": "h1"}
    if ranks is not None:
        provenance["resources"] = {"num_nodes": 1, "procs_per_node": ranks, "gpu": pool != "cpu"}
    assert run_claim(run_id=run.pk, attempt=attempt, claim="key@h1", provenance=provenance).claimed
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, started_at=T0, last_heartbeat_at=T0 + HOUR)
    return run


def billed(run: Run) -> tuple[int, Decimal]:
    run_cost_accrue(now=T0 + HOUR)
    cost = RunCost.objects.get(run=run)
    return cost.gpus, cost.usd


def test_a_run_that_left_its_gpus_to_the_node_is_billed_for_the_ranks_its_node_resolved():
    run = started_run(pool="h200", ranks=4)

    assert billed(run) == (4, Decimal("14.400000"))  # 4 GPUs × 1 h × $3.60


def test_without_resolved_ranks_it_is_billed_for_its_nodes_gpus_else_one():
    node_register(info=NodeInfo(name="gpu@h1", hostname="h1", pool="h200", gpu_type="H200", gpu_count=8))
    on_a_node = started_run(pool="h200")
    assert run_node_assign(run_id=on_a_node.pk, node_name="gpu@h1")
    nowhere = started_run(pool="h200")

    assert billed(on_a_node) == (8, Decimal("28.800000"))
    assert billed(nowhere) == (1, Decimal("3.600000"))


def test_a_cpu_run_is_billed_for_the_processes_its_node_started_else_the_setting():
    assert billed(started_run(pool="cpu", ranks=3)) == (3, Decimal("0.300000"))
    assert billed(started_run(pool="cpu")) == (2, Decimal("0.200000"))  # TRIAD_PROCS_PER_NODE


def test_gpus_the_run_set_are_billed_whatever_the_node_resolved():
    assert billed(started_run(pool="h200", gpus_per_node=2, ranks=8))[0] == 2


def test_a_resumed_run_is_billed_for_what_its_new_attempt_resolved():
    run = started_run(pool="h200", ranks=4)
    billed(run)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.LOST, finished_at=T0 + HOUR)
    run_cost_accrue(now=T0 + 2 * HOUR)  # its last tick: billed to its end
    # Resumed (runs.lifecycle.run_resume): a new attempt, claimed by a node that resolved 2 GPUs.
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED, attempt=2, claimed_by="", finished_at=None)
    provenance = {"resources": {"num_nodes": 1, "procs_per_node": 2, "gpu": True}}
    assert run_claim(run_id=run.pk, attempt=2, claim="key@h2", provenance=provenance).claimed
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, last_heartbeat_at=T0 + 4 * HOUR)

    run_cost_accrue(now=T0 + 3 * HOUR)  # reopens at the restart
    run_cost_accrue(now=T0 + 4 * HOUR)

    cost = RunCost.objects.get(run=run)
    assert cost.gpus == 2
    assert cost.usd == Decimal("14.400000") + Decimal("7.200000")  # 4 GPUs × 1 h, then 2 GPUs × 1 h


def test_the_launch_estimate_of_a_run_that_leaves_its_gpus_to_the_node_counts_the_pools_largest_node():
    node_register(info=NodeInfo(name="gpu@h1", hostname="h1", pool="h200", gpu_type="H200", gpu_count=4))
    node_register(info=NodeInfo(name="gpu@h2", hostname="h2", pool="h200", gpu_type="H200", gpu_count=8))

    left_to_the_node = spend_estimate(dataset_version_id=None, pool="h200", steps=10, gpus=0)
    two = spend_estimate(dataset_version_id=None, pool="h200", steps=10, gpus=2)
    no_node_yet = spend_estimate(dataset_version_id=None, pool="a100", steps=10, gpus=0)

    assert (left_to_the_node.units, two.units, no_node_yet.units) == (8, 2, 1)
    assert "× 8 GPU(s)" in left_to_the_node.explanation
