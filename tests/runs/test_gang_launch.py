"""Launching a run on several nodes at once (`nodes`, a gang; docs/runs.md): the setting on the form and in
the YAML, the refusal of a pool too small, one start message per node, the spec's nodes and its ranks
pinned on resume, and what a gang costs: every node of it."""

import datetime as dt
from decimal import Decimal

import pytest
import redis
from django.urls import reverse
from django.utils import timezone

from controlplane.celery import app
from runs.config_schema import ConfigError, config_from_yaml
from runs.launch import RunLaunchError, run_launch, run_resume
from runs.models import Run, RunClaim, RunStatus
from runs.nodes import NodeInfo, node_register, run_node_assign
from runs.resources import ModelSize, NodeResources, Pool, launch_refusal, node_memory_estimate
from runs.spec import run_resources
from runs.spend.models import GpuPrice, RunCost
from runs.spend.selectors import spend_estimate
from runs.spend.services import run_cost_accrue
from tests.factories import ProblemFactory, RunFactory
from tests.runs.launch_form import LAUNCH_FORM
from workers.spec import RunConfig

T0 = dt.datetime(2025, 5, 10, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def _node(name: str, pool: str, *, gpus: int = 0, gpu_type: str = "cpu"):
    return node_register(
        info=NodeInfo(name=name, hostname=name, pool=pool, gpu_type=gpu_type, gpu_count=gpus, cpu_count=16)
    )


def _claims(run: Run, *, attempt: int, ranks: int, nodes: list[str]) -> None:
    """The claims of an attempt, one per node in rank order, as runs/gang.py records them."""
    now = timezone.now()
    for rank, node in enumerate(nodes):
        RunClaim.objects.create(
            run=run,
            attempt=attempt,
            node=node,
            key=f"launcher-{rank}@{node}",
            node_rank=rank,
            ranks=ranks,
            claimed_at=now,
            last_seen_at=now,
        )


# --------------------------------------------------------------------------- the setting


@pytest.mark.django_db
def test_the_launch_form_and_the_yaml_take_the_nodes_of_a_run(logged_in):
    version = ProblemFactory().version

    response = logged_in.post(
        reverse("runs:launch"), {**LAUNCH_FORM, "dataset_version": version.pk, "nodes": 2}
    )

    assert response.status_code == 302
    assert Run.objects.get().config["nodes"] == 2
    assert config_from_yaml("nodes: 3\n").config.nodes == 3
    assert RunConfig().nodes == 1  # left out: one node, as before gangs


@pytest.mark.django_db
def test_the_launch_form_shows_nodes_among_the_resources(logged_in):
    ProblemFactory()

    html = logged_in.get(reverse("runs:launch")).content.decode()

    resources = html[html.index("<legend>Resources</legend>") :]
    assert 'name="nodes"' in resources
    assert "Nodes of the pool the run trains on at once" in resources


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value, error",
    [
        ("0", "Nodes: Ensure this value is greater than or equal to 1."),
        ("65", "Nodes: Ensure this value is less than or equal to 64."),
        ("x", "Nodes: Enter a whole number."),
    ],
)
def test_the_launch_form_refuses_nodes_out_of_range_on_its_field(logged_in, value, error):
    version = ProblemFactory().version

    response = logged_in.post(
        reverse("runs:launch"), {**LAUNCH_FORM, "dataset_version": version.pk, "nodes": value}
    )

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Run.objects.exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("nodes: 0", "config line 1, 'nodes': must be an integer ≥ 1"),
        ("nodes: 65", "config line 1, 'nodes': must be an integer ≤ 64"),
        ("nodes: x", "config line 1, 'nodes': must be an integer from 1 to 64, got 'x'"),
    ],
)
def test_the_yaml_refuses_nodes_out_of_range_naming_the_key(text, message):
    with pytest.raises(ConfigError) as caught:
        config_from_yaml(text)

    assert str(caught.value).startswith(message)


# --------------------------------------------------------------------------- the pool


@pytest.mark.django_db
def test_a_gang_larger_than_the_pools_registered_nodes_is_refused_before_anything_is_stored(user):
    version = ProblemFactory().version
    _node("gpu@c1", "a100")

    with pytest.raises(RunLaunchError) as refused:
        run_launch(user=user, dataset_version=version, name="", config=RunConfig(nodes=2), pool="a100")

    assert refused.value.field == "nodes"
    assert str(refused.value).startswith("2 nodes asked, the a100 pool has 1 registered")
    assert not Run.objects.exists()
    # Enough nodes, or none registered yet (the run waits for them): it launches.
    _node("gpu@c2", "a100")
    run_launch(user=user, dataset_version=version, name="", config=RunConfig(nodes=2), pool="a100")
    run_launch(user=user, dataset_version=version, name="", config=RunConfig(nodes=64), pool="empty")
    assert Run.objects.count() == 2


@pytest.mark.django_db
def test_the_launch_page_refuses_a_gang_too_large_on_the_nodes_field(logged_in):
    version = ProblemFactory().version
    _node("gpu@c1", "a100")

    response = logged_in.post(
        reverse("runs:launch"), {**LAUNCH_FORM, "dataset_version": version.pk, "pool": "a100", "nodes": 3}
    )

    assert response.status_code == 200
    assert "Nodes: 3 nodes asked, the a100 pool has 1 registered" in response.content.decode()
    assert not Run.objects.exists()


def test_zero_shards_over_every_rank_of_the_gang():
    size = ModelSize(name="model m", params=1_000_000_000)
    nodes = tuple(
        NodeResources(name=f"gpu@h{i}", gpu_type="A100", gpu_count=8, gpu_memory_gb=80.0) for i in (1, 2)
    )
    alone = RunConfig(precision="bf16", zero_stage=3, gpus_per_node=4)
    gang = RunConfig(precision="bf16", zero_stage=3, gpus_per_node=4, nodes=2)

    one, two = (node_memory_estimate(config=c, size=size, node=nodes[0]) for c in (alone, gang))

    assert one is not None and two is not None
    assert (one.world_size, two.world_size) == (4, 8)
    # ZeRO-3, bf16: 2 B of weights, 2 of gradients and 12 of optimizer states per parameter, ÷ world size.
    assert (one.total, two.total) == (16 * 10**9 // 4, 16 * 10**9 // 8)
    assert launch_refusal(config=gang, size=size, pool=Pool(name="a100", nodes=nodes)) is None


# --------------------------------------------------------------------------- the start messages


@pytest.fixture
def broker(redis_server, monkeypatch):
    """Celery publishes to a private redis-server (as in test_broker_down.py)."""
    monkeypatch.setenv("CELERY_BROKER_URL", redis_server.url(1))
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    return redis.Redis.from_url(redis_server.url(1))


@pytest.mark.django_db(transaction=True)
def test_a_gang_launch_and_its_resume_publish_one_start_message_per_node(user, broker):
    version = ProblemFactory().version

    gang = run_launch(user=user, dataset_version=version, name="gang", config=RunConfig(nodes=3)).run
    assert broker.llen("gpu.cpu") == 3
    single = run_launch(user=user, dataset_version=version, name="one", config=RunConfig()).run
    assert broker.llen("gpu.cpu") == 4

    Run.objects.filter(pk=gang.pk).update(status=RunStatus.LOST)
    assert run_resume(run_id=gang.pk, user=user) is not None
    assert broker.llen("gpu.cpu") == 7

    assert Run.objects.get(pk=gang.pk).enqueued_at is not None
    assert Run.objects.get(pk=single.pk).enqueued_at is not None


# --------------------------------------------------------------------------- the spec


@pytest.mark.django_db
def test_the_spec_asks_for_the_runs_nodes():
    assert run_resources(run=RunFactory(config={"steps": 2, "nodes": 4}))["num_nodes"] == 4
    assert run_resources(run=RunFactory(config={"steps": 2}))["num_nodes"] == 1  # stored before gangs


@pytest.mark.django_db
def test_a_resumed_gang_keeps_the_ranks_per_node_its_last_formed_attempt_ran_with():
    run = RunFactory(config={"steps": 2, "nodes": 2, "gpus_per_node": 8}, attempt=1)
    assert run_resources(run=run)["procs_per_node"] == 8  # the first attempt: what it asks for
    _claims(run, attempt=1, ranks=4, nodes=["gpu@h1", "gpu@h2"])  # formed on nodes that started 4 each
    Run.objects.filter(pk=run.pk).update(attempt=2)
    _claims(Run.objects.get(pk=run.pk), attempt=2, ranks=8, nodes=["gpu@h3"])  # gathered, never formed
    Run.objects.filter(pk=run.pk).update(attempt=3)

    resources = run_resources(run=Run.objects.get(pk=run.pk))

    # Its ZeRO checkpoint is sharded over 2 × 4 ranks: the new attempt starts 4 per node, on any nodes.
    assert (resources["num_nodes"], resources["procs_per_node"]) == (2, 4)


@pytest.mark.django_db
def test_a_resumed_single_node_run_asks_for_its_gpus_per_node_as_before():
    run = RunFactory(config={"steps": 2, "gpus_per_node": 2}, attempt=1)
    _claims(run, attempt=1, ranks=8, nodes=["gpu@h1"])
    Run.objects.filter(pk=run.pk).update(attempt=2)

    assert run_resources(run=Run.objects.get(pk=run.pk))["procs_per_node"] == 2


# --------------------------------------------------------------------------- what it costs


@pytest.fixture
def h200(settings):
    settings.TRIAD_SPEND_GRACE_S = 30
    GpuPrice.objects.create(pool="h200", gpu_type="H200", usd_per_gpu_hour=Decimal("3.60"))


@pytest.mark.django_db
def test_a_gangs_estimate_counts_every_node(h200):
    one = spend_estimate(dataset_version_id=None, pool="h200", steps=10, gpus=2)
    three = spend_estimate(dataset_version_id=None, pool="h200", steps=10, gpus=2, nodes=3)

    assert (one.units, three.units) == (2, 6)
    assert three.usd == one.usd * 3
    assert "× 2 GPU(s) ×" in one.explanation and "nodes" not in one.explanation
    assert "× 3 nodes × 2 GPU(s) ×" in three.explanation


@pytest.mark.django_db
def test_the_launch_pages_estimate_counts_every_node(logged_in, h200):
    one = logged_in.get(reverse("spend:estimate"), {"pool": "h200", "steps": 100, "gpus_per_node": 2})
    two = logged_in.get(
        reverse("spend:estimate"), {"pool": "h200", "steps": 100, "gpus_per_node": 2, "nodes": 2}
    )

    assert "× 2 GPU(s) ×" in one.content.decode()
    assert "× 2 nodes × 2 GPU(s) ×" in two.content.decode()


def _running(*, nodes: int, gpus_per_node: int) -> Run:
    run = RunFactory(
        pool="h200",
        config={"steps": 100, "nodes": nodes, "gpus_per_node": gpus_per_node},
        status=RunStatus.RUNNING,
        started_at=T0,
        last_heartbeat_at=T0 + HOUR,
    )
    return run


def _billed(run: Run) -> tuple[int, Decimal]:
    run_cost_accrue(now=T0 + HOUR)
    cost = RunCost.objects.get(run=run)
    return cost.gpus, cost.usd


@pytest.mark.django_db
def test_a_gang_is_billed_for_the_ranks_every_node_of_its_attempt_started(h200):
    _node("gpu@h1", "h200", gpus=8, gpu_type="H200")
    left_to_the_nodes = _running(nodes=2, gpus_per_node=0)
    _claims(left_to_the_nodes, attempt=1, ranks=4, nodes=["gpu@h1", "gpu@h2"])
    asked = _running(nodes=2, gpus_per_node=2)
    _claims(asked, attempt=1, ranks=2, nodes=["gpu@h1", "gpu@h2"])

    assert _billed(left_to_the_nodes) == (8, Decimal("28.800000"))  # 2 nodes × 4 GPUs × 1 h × $3.60
    assert _billed(asked) == (4, Decimal("14.400000"))


@pytest.mark.django_db
def test_a_gang_without_claims_is_billed_for_one_node_times_its_nodes_and_one_node_as_before(h200):
    _node("gpu@h1", "h200", gpus=8, gpu_type="H200")
    gang = _running(nodes=3, gpus_per_node=2)
    unresolved = _running(nodes=2, gpus_per_node=0)
    assert run_node_assign(run_id=unresolved.pk, node_name="gpu@h1")
    single = _running(nodes=1, gpus_per_node=2)

    assert _billed(gang)[0] == 6
    assert _billed(unresolved)[0] == 16  # its node's 8 GPUs, on each of 2 nodes
    assert _billed(single) == (2, Decimal("7.200000"))
