"""The queue page of a pool with runs on several nodes (gangs): what a waiting gang needs, the gang whose
claims are being gathered, the runs that wait for it, and the nodes its claims hold (docs/runs.md, "The
queue")."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from runs.models import Run, RunClaim, RunStatus
from runs.nodes import NodeInfo, node_register, run_node_assign
from runs.queue import nodes_needed, pool_queue, pool_queue_list
from tests.factories import RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _claim_ttl(settings):
    """Claims count as fresh for an hour here, so that how long a test takes never makes one stale."""
    settings.TRIAD_GANG_CLAIM_TTL_S = 3600.0


@pytest.fixture
def alpha():
    team = TeamFactory(name="alpha")
    return UserFactory(username="ana", password=None, membership__team=team)


def node(name: str, pool: str = "a100"):
    return node_register(info=NodeInfo(name=name, hostname=name, pool=pool, gpu_type="A100", gpu_count=8))


def queued(minutes_ago: float, *, nodes: int = 1, **kwargs) -> Run:
    kwargs.setdefault("pool", "a100")
    return RunFactory(
        status=RunStatus.QUEUED,
        enqueued_at=timezone.now() - dt.timedelta(minutes=minutes_ago),
        config={"steps": 2, "nodes": nodes},
        **kwargs,
    )


def claim(run: Run, node_name: str, *, rank: int, attempt: int = 1, hours_ago: float = 0) -> RunClaim:
    """A node's claim, as runs/gang.py records it, last seen `hours_ago`."""
    seen = timezone.now() - dt.timedelta(hours=hours_ago)
    return RunClaim.objects.create(
        run=run,
        attempt=attempt,
        node=node_name,
        key=f"launcher-{rank}@{node_name}",
        node_rank=rank,
        claimed_at=seen,
        last_seen_at=seen,
    )


def page(client, user, pool: str = "a100") -> str:
    client.force_login(user)
    response = client.get(reverse("runs:queue", args=[pool]))
    assert response.status_code == 200
    return response.content.decode()


def test_a_gang_waits_until_its_pool_has_as_many_free_nodes_as_it_needs(client, alpha):
    busy = node("gpu@h1")
    node("gpu@h2")
    holder = RunFactory(status=RunStatus.RUNNING, created_by=alpha, pool="a100")
    assert run_node_assign(run_id=holder.pk, node_name=busy.name)
    gang = queued(5, nodes=2, created_by=alpha, name="the-gang")

    (entry,) = pool_queue(user=alpha, pool="a100").entries

    assert nodes_needed(gang) == 2
    assert entry.reasons == ["needs 2 nodes, 1 free"]
    html = page(client, alpha)
    assert "the-gang" in html and "· 2 nodes" in html and "needs 2 nodes, 1 free" in html


def test_the_gang_gathering_its_nodes_says_so_and_the_runs_behind_it_wait_for_it(client, alpha):
    node("gpu@h1")
    node("gpu@h2")
    node("gpu@h3")
    earlier = queued(30, created_by=alpha, name="earlier")  # ahead in the broker, yet the gang gathers
    gang = queued(10, nodes=2, created_by=alpha, name="the-gang")
    claim(gang, "gpu@h2", rank=0)
    later = queued(1, nodes=2, created_by=alpha, name="later-gang")

    queue = pool_queue(user=alpha, pool="a100")

    reasons = {entry.run.pk: entry.reasons for entry in queue.entries}
    assert reasons[gang.pk] == ["gathering: 1 of 2 nodes claimed"]
    assert reasons[earlier.pk] == [f"waits while run #{gang.pk} gathers its nodes"]
    assert reasons[later.pk] == [
        f"waits while run #{gang.pk} gathers its nodes",
        "needs 2 nodes, 2 free, taken first by the runs ahead",
    ]
    assert queue.free == 2  # its claim holds gpu@h2
    held = {row.node.name: row for row in queue.nodes}
    assert held["gpu@h2"].run == gang and held["gpu@h2"].gathering
    assert held["gpu@h1"].run is None
    html = page(client, alpha)
    assert "gathering: 1 of 2 nodes claimed" in html
    assert f"waits while run #{gang.pk} gathers its nodes" in html
    assert "claimed, waiting for the rest of its nodes" in html


def test_a_stale_claim_holds_no_node_and_gathers_nothing(alpha):
    node("gpu@h1")
    node("gpu@h2")
    gang = queued(10, nodes=2, created_by=alpha)
    claim(gang, "gpu@h1", rank=0, hours_ago=2)  # its launcher gave up: the claim server drops it

    queue = pool_queue(user=alpha, pool="a100")

    (entry,) = queue.entries
    assert entry.reasons == [] and queue.free == 2 and queue.gathering is None


def test_a_started_gang_holds_every_node_it_claimed_and_no_earlier_attempts_node(alpha):
    for name in ("gpu@h1", "gpu@h2", "gpu@h3"):
        node(name)
    gang = RunFactory(
        status=RunStatus.RUNNING, created_by=alpha, pool="a100", config={"steps": 2, "nodes": 2}, attempt=2
    )
    assert run_node_assign(run_id=gang.pk, node_name="gpu@h1")  # its launchers assign one node only
    claim(gang, "gpu@h1", rank=0, attempt=2)
    claim(gang, "gpu@h2", rank=1, attempt=2)
    claim(gang, "gpu@h3", rank=1, attempt=1)  # the lost attempt's node: free again
    queued(1, created_by=alpha)

    queue = pool_queue(user=alpha, pool="a100")

    assert [(row.node.name, row.run) for row in queue.nodes] == [
        ("gpu@h1", gang),
        ("gpu@h2", gang),
        ("gpu@h3", None),
    ]
    assert queue.free == 1 and queue.entries[0].reasons == []
    (summary,) = pool_queue_list()
    assert (summary.nodes, summary.free, summary.length) == (3, 1, 1)


def test_a_claim_naming_the_host_holds_the_node_of_that_host(alpha):
    node_register(info=NodeInfo(name="gpu@host-1", hostname="host-1", pool="a100", gpu_count=8))
    node("gpu@h2")
    gang = queued(3, nodes=2, created_by=alpha)
    claim(gang, "host-1", rank=0)  # an older launcher sends its host

    queue = pool_queue(user=alpha, pool="a100")

    assert {row.node.name: row.run for row in queue.nodes} == {"gpu@host-1": gang, "gpu@h2": None}


def test_another_teams_gathering_gang_is_not_named(client, alpha):
    node("gpu@h1")
    node("gpu@h2")
    beta = TeamFactory(name="beta")
    theirs = queued(9, nodes=2, created_by=UserFactory(membership__team=beta), team=beta, name="beta-gang")
    claim(theirs, "gpu@h1", rank=0)
    mine = queued(1, created_by=alpha, name="mine")

    queue = pool_queue(user=alpha, pool="a100")

    assert queue.entries[1].run == mine
    assert queue.entries[1].reasons == [
        "waits while a run of another team gathers its nodes",
        "needs 1 node, 1 free, taken first by the runs ahead",  # the gang takes gpu@h2 next
    ]
    html = page(client, alpha)
    assert "waits while a run of another team gathers its nodes" in html
    assert "beta-gang" not in html and f"#{theirs.pk}" not in html
