"""The run page's Attempts card: each attempt's nodes (a gang in node-rank order), the steps it reported,
when it was claimed and how it ended (docs/runs.md, "Gangs")."""

import datetime as dt

import pytest
from django.utils import timezone

from runs.models import RunAttempt, RunStatus
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db


def card(response) -> str:
    page = response.content.decode()
    start = page.index('id="attempts"')
    return page[start : page.index("</section>", start)]


def test_each_attempt_shows_its_nodes_steps_and_how_it_ended(logged_in, user):
    run = RunFactory(created_by=user, status=RunStatus.RUNNING, attempt=2, config={"nodes": 2})
    claimed = timezone.now() - dt.timedelta(hours=1)
    RunAttempt.objects.create(
        run=run,
        attempt=1,
        node="node-a",
        claimed_at=claimed,
        nodes=[
            {"node": "node-a", "node_rank": 0, "address": "10.0.0.1", "ranks": 1},
            {"node": "node-b", "node_rank": 1, "address": "10.0.0.2", "ranks": 1},
        ],
        first_step=1,
        last_step=7,
        ended_at=claimed + dt.timedelta(minutes=5),
        end_status=RunStatus.LOST,
        end_reason="node node-b (node rank 1) sent no heartbeat for 60s",
    )
    RunAttempt.objects.create(
        run=run,
        attempt=2,
        node="node-c",
        claimed_at=timezone.now(),
        nodes=[
            {"node": "node-c", "node_rank": 0, "address": "10.0.1.1", "ranks": 2},
            {"node": "node-d", "node_rank": 1, "address": "10.0.1.2", "ranks": 2},
        ],
        first_step=5,
        last_step=5,
    )

    html = card(logged_in.get(f"/runs/{run.pk}/"))

    first = html.split('data-testid="attempt-row-1"')[1].split("</tr>")[0]
    second = html.split('data-testid="attempt-row-2"')[1].split("</tr>")[0]
    assert "node-a (node rank 0, 1 rank)<br>node-b (node rank 1, 1 rank)" in first
    assert "steps 1–7" in first
    assert "lost" in first and "node node-b (node rank 1) sent no heartbeat for 60s" in first
    assert "node-c (node rank 0, 2 ranks)<br>node-d (node rank 1, 2 ranks)" in second
    assert "step 5" in second and "current (running)" in second
    assert html.index("attempt-row-2") < html.index("attempt-row-1")  # newest first


def test_an_attempt_not_claimed_yet_and_untrusted_names_are_shown_escaped(logged_in, user):
    run = RunFactory(created_by=user, status=RunStatus.QUEUED)
    RunAttempt.objects.create(run=run, attempt=1, nodes=[{"node": "<script>x</script>", "node_rank": 0}])

    html = card(logged_in.get(f"/runs/{run.pk}/"))

    assert "<script>x</script>" not in html
    assert "&lt;script&gt;x&lt;/script&gt; (node rank 0)" in html
    assert "not yet" in html and "current (queued)" in html


def test_a_run_without_attempts_has_no_attempts_card(logged_in, user):
    run = RunFactory(created_by=user, status=RunStatus.QUEUED)

    assert 'id="attempts"' not in logged_in.get(f"/runs/{run.pk}/").content.decode()
