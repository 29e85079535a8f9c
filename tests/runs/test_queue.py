"""The queue page of a pool: queued runs in the broker's order, what each waits for, the pool's nodes,
and how long the head has waited; runs of other teams keep their place without their names."""

import datetime as dt
import sys
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from controlplane.accounts.models import Role
from runs.attempts import attempt_spec_record
from runs.lifecycle import run_claim
from runs.models import RunStatus
from runs.nodes import NodeInfo, node_register, run_node_assign
from runs.queue import pool_queue, pool_queue_list, run_queue_place
from runs.spend.models import CostEntry
from runs.spend.services import monthly_budget_set, team_monthly_budget_set
from tests.factories import RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


@pytest.fixture(autouse=True)
def _now(monkeypatch):
    """Each test's "now", taken as it starts: the pages read the real clock, so a module-wide one would
    drift by however long the suite ran before this test."""
    monkeypatch.setattr(sys.modules[__name__], "NOW", timezone.now())


def queued(minutes_ago: float | None, **kwargs):
    """A queued run whose start task reached the broker `minutes_ago` (None: it has not yet)."""
    enqueued = None if minutes_ago is None else NOW - dt.timedelta(minutes=minutes_ago)
    kwargs.setdefault("pool", "a100")
    return RunFactory(status=RunStatus.QUEUED, enqueued_at=enqueued, **kwargs)


def node(name: str, pool: str = "a100"):
    return node_register(info=NodeInfo(name=name, hostname=name, pool=pool, gpu_type="A100", gpu_count=8))


@pytest.fixture
def alpha():
    team = TeamFactory(name="alpha")
    return UserFactory(username="ana", password=None, membership__team=team)


def page(client, user, url: str) -> str:
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def test_queued_runs_are_in_the_order_the_broker_took_them_and_the_head_wait_is_the_oldest(alpha):
    queued(1, created_by=alpha, name="late")  # made first, taken third
    first = queued(30, created_by=alpha, name="first")
    not_sent = queued(None, created_by=alpha, name="not-sent")
    middle = queued(5, created_by=alpha, name="middle")
    queued(60, created_by=alpha, pool="h100")  # another pool's queue
    RunFactory(status=RunStatus.RUNNING, created_by=alpha, pool="a100", enqueued_at=NOW)  # no longer waits

    queue = pool_queue(user=alpha, pool="a100", now=NOW)

    assert [(e.position, e.run.name) for e in queue.entries] == [
        (1, "first"),
        (2, "middle"),
        (3, "late"),
        (4, "not-sent"),
    ]
    assert queue.length == 4 and queue.head_waiting_since == first.enqueued_at
    assert run_queue_place(run=middle) == (2, 4)
    assert run_queue_place(run=not_sent) == (4, 4)
    assert any("has not reached the broker" in reason for reason in queue.entries[3].reasons)


def test_a_pool_without_nodes_says_to_start_a_worker_on_its_queue(client, alpha):
    run = queued(2, created_by=alpha)

    (entry,) = pool_queue(user=alpha, pool="a100").entries

    assert entry.run == run
    assert entry.reasons == ["no node is registered in the a100 pool: start a worker on gpu.a100"]
    assert "-Q gpu.a100 -P solo" in page(client, alpha, reverse("runs:queue", args=["a100"]))


def test_a_run_waits_for_a_free_node_and_for_the_runs_ahead_of_it(alpha):
    busy, idle = node("gpu@h1"), node("gpu@h2")
    node("gpu@h3", pool="h100")  # another pool's node frees nothing here
    holder = RunFactory(status=RunStatus.RUNNING, created_by=alpha, pool="a100")
    assert run_node_assign(run_id=holder.pk, node_name=busy.name)
    queued(10, created_by=alpha)
    queued(5, created_by=alpha)

    queue = pool_queue(user=alpha, pool="a100")

    assert (queue.healthy, queue.free) == (2, 1)
    head, second = queue.entries
    assert head.reasons == []  # the idle node takes it
    assert second.reasons == ["needs 1 node, 1 free, taken first by the runs ahead"]
    assert [(row.node.name, row.run) for row in queue.nodes] == [("gpu@h1", holder), (idle.name, None)]


def test_a_silent_node_is_not_free(alpha):
    silent = node("gpu@h1")
    type(silent).objects.filter(pk=silent.pk).update(last_heartbeat_at=NOW - dt.timedelta(hours=1))
    queued(3, created_by=alpha)

    (entry,) = pool_queue(user=alpha, pool="a100").entries

    assert entry.reasons == ["needs 1 node, 0 free (1 silent: no heartbeat)"]


def test_a_node_held_by_a_claim_whose_trainer_has_not_started_is_named_as_such(client, alpha):
    node("gpu@h1")
    claimed = queued(20, created_by=alpha, name="claimed")
    assert run_claim(run_id=claimed.pk, attempt=1, claim="launcher-1@h1").claimed
    assert run_node_assign(run_id=claimed.pk, node_name="gpu@h1")
    queued(2, created_by=alpha)

    queue = pool_queue(user=alpha, pool="a100")

    (entry,) = queue.entries
    assert entry.reasons == ["needs 1 node, 0 free (1 node held by a claim whose trainer has not started)"]
    assert queue.nodes[0].claim_waiting and queue.nodes[0].run.name == "claimed"
    assert "claimed, trainer not started yet" in page(client, alpha, reverse("runs:queue", args=["a100"]))


def test_a_run_whose_start_task_a_node_took_waits_for_its_claim(alpha):
    node("gpu@h1")
    run = queued(1, created_by=alpha)
    attempt_spec_record(run_id=run.pk, attempt=1, spec={"run_id": run.pk})

    (entry,) = pool_queue(user=alpha, pool="a100").entries

    assert entry.reasons == ["a node took its start task and has not claimed it yet"]


def test_a_spent_monthly_budget_of_the_user_or_the_team_is_named(alpha):
    node("gpu@h1")
    node("gpu@h2")
    spender = RunFactory(status=RunStatus.SUCCEEDED, created_by=alpha, pool="a100")
    CostEntry.objects.create(run=spender, day=NOW.date(), usd=Decimal("12.5"), gpu_hours=1)
    monthly_budget_set(user=alpha, usd_per_month=Decimal(10), actor=None)
    team_monthly_budget_set(team=spender.team, usd_per_month=Decimal(100), actor=None)  # not spent
    queued(1, created_by=alpha)

    (entry,) = pool_queue(user=alpha, pool="a100", now=NOW).entries

    assert entry.reasons == [
        "ana's monthly budget is spent ($12.50 of $10.00): it stops as soon as it starts"
    ]

    team_monthly_budget_set(team=spender.team, usd_per_month=Decimal(12), actor=None)
    (entry,) = pool_queue(user=alpha, pool="a100", now=NOW).entries
    assert (
        entry.reasons[1]
        == "team alpha's monthly budget is spent ($12.50 of $12.00): it stops as soon as it starts"
    )


def test_another_teams_queued_runs_keep_their_place_without_their_names(client, alpha):
    secret = queued(9, created_by=alpha, name="alpha-secret-run")
    queued(8, created_by=alpha, name="alpha-other-secret")
    node("gpu@h1")
    holder = RunFactory(status=RunStatus.RUNNING, created_by=alpha, pool="a100", name="alpha-running")
    assert run_node_assign(run_id=holder.pk, node_name="gpu@h1")
    beta = TeamFactory(name="beta")
    lou = UserFactory(username="lou", password=None, membership__team=beta, membership__role=Role.ADMIN)
    mine = queued(1, created_by=lou, team=beta, name="lous-run")

    queue = pool_queue(user=lou, pool="a100")

    assert [(e.position, e.last_position, e.run, e.hidden_count) for e in queue.entries] == [
        (1, 2, None, 2),
        (3, 3, mine, 0),
    ]
    assert queue.nodes[0].run is None and queue.nodes[0].held_elsewhere
    html = page(client, lou, reverse("runs:queue", args=["a100"]))
    assert "2 runs of another team" in html and "lous-run" in html and "busy: a run of another team" in html
    assert "alpha-secret-run" not in html and "alpha-other-secret" not in html and "ana" not in html
    assert "alpha-running" not in html and reverse("runs:detail", args=[holder.pk]) not in html
    assert reverse("runs:detail", args=[secret.pk]) not in html


def test_a_user_in_no_team_sees_only_how_many_runs_wait(client, alpha):
    queued(9, created_by=alpha, name="alpha-secret-run")
    loner = UserFactory(username="loner", password=None, membership=None)

    html = page(client, loner, reverse("runs:queue", args=["a100"]))

    assert "1 run of another team" in html and "1 run waiting" in html
    assert "alpha-secret-run" not in html and "no node is registered in the a100 pool:" not in html


def test_the_runs_team_and_superusers_see_its_name_and_reasons(client, alpha):
    queued(4, created_by=alpha, name="alpha-run")
    boss = UserFactory(username="boss", password=None, is_superuser=True, membership=None)

    for user in (alpha, boss):
        html = page(client, user, reverse("runs:queue", args=["a100"]))
        assert "alpha-run" in html and "no node is registered in the a100 pool" in html
        assert "1 run of another team" not in html


def test_an_empty_queue_says_where_to_launch_one(client, alpha):
    html = page(client, alpha, reverse("runs:queue", args=["a100"]))

    assert "No run waits in the a100 pool." in html and reverse("runs:launch") in html


def test_run_names_are_escaped(client, alpha):
    queued(1, created_by=alpha, name="<script>alert(1)</script>")

    html = page(client, alpha, reverse("runs:queue", args=["a100"]))

    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_queues_page_lists_each_pool_with_its_length_and_head_wait(client, alpha):
    node("gpu@h1")
    node("gpu@c1", pool="cpu")
    head = queued(45, created_by=alpha)
    queued(3, created_by=alpha)
    other = TeamFactory(name="beta")
    queued(10, created_by=UserFactory(membership__team=other), team=other, name="beta-secret")

    pools = {summary.pool: summary for summary in pool_queue_list(now=NOW)}

    assert (pools["a100"].length, pools["a100"].head_waiting_since, pools["a100"].free) == (
        3,
        head.enqueued_at,
        1,
    )
    assert (pools["cpu"].length, pools["cpu"].head_waiting_since) == (0, None)
    html = page(client, alpha, reverse("runs:queue-list"))
    assert reverse("runs:queue", args=["a100"]) in html and "3 runs" in html and "45" in html
    assert "beta-secret" not in html


def test_the_nodes_page_links_to_the_queues_and_a_queued_runs_page_says_its_place(client, alpha):
    queued(9, created_by=alpha)
    run = queued(2, created_by=alpha)

    assert reverse("runs:queue-list") in page(client, alpha, reverse("runs:nodes"))
    html = page(client, alpha, reverse("runs:detail", args=[run.pk]))
    assert "Position 2 of 2 in the" in html and reverse("runs:queue", args=["a100"]) in html


@pytest.mark.parametrize("name, args", [("runs:queue-list", []), ("runs:queue", ["a100"])])
def test_the_queue_pages_need_a_login(client, name, args):
    response = client.get(reverse(name, args=args))

    assert response.status_code == 302 and response.url.startswith(reverse("login"))
