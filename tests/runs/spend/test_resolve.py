"""A repository run's resolve rate and spend per resolved task (docs/spend.md, "Spend per resolved
task"), on the run page's cost line and the spend page, computed by hand here."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from runs.models import RunStatus
from runs.spend.models import CostEntry, RunCost
from runs.spend.selectors import run_resolve_stats
from tests.factories import GenerationFactory, MetricPointFactory, RunFactory

pytestmark = pytest.mark.django_db

TODAY = dt.datetime.now(dt.UTC).date()


def repo_run(user, usd, **config):
    run = RunFactory(created_by=user, status=RunStatus.SUCCEEDED, config={"steps": 3, **config})
    RunCost.objects.create(
        run=run, accrued_until=dt.datetime.now(dt.UTC), usd=Decimal(usd), gpu_hours=1, gpus=1
    )
    CostEntry.objects.create(run=run, day=TODAY, usd=Decimal(usd), gpu_hours=1)
    return run


def episodes(run, outcome, n, step=0):
    for _ in range(n):
        GenerationFactory(
            run=run,
            step=step,
            outcome=outcome,
            passed=outcome == "resolved",
            error_class="passed" if outcome == "resolved" else "wrong_answer",
            repo={"outcome": outcome, "trajectory": []},
        )


def cost_line(client, run):
    return client.get(reverse("spend:run-cost", kwargs={"run_id": run.pk})).content.decode()


def test_a_run_that_posts_every_episode_counts_its_stored_ones(logged_in, user):
    # given a run that posts all its episodes: 3 resolved, 4 tests_fail, 1 sandbox_error; $2.10 spent
    run = repo_run(user, "2.10", generations_keep="all")
    episodes(run, "resolved", 3)
    episodes(run, "tests_fail", 4, step=1)
    episodes(run, "sandbox_error", 1)
    # then 3 of 7 scored episodes resolved (the sandbox error is not scored): 43%, $2.10 / 3 = $0.70
    stats = run_resolve_stats(run=run)
    assert (stats.source, stats.scored, stats.resolved) == ("stored", 7.0, 3.0)
    assert stats.usd_per_resolved == Decimal("0.7000")
    page = cost_line(logged_in, run)
    assert 'data-testid="resolve-rate">43%<' in page and "3 of 7 scored episodes" in page
    assert 'data-testid="usd-per-resolved">$0.7000<' in page


def test_a_sampled_run_counts_from_its_resolve_rate_per_step(logged_in, user):
    # given a run of 4 prompts × 2 episodes a step that posts only a sample (one resolved stored),
    # whose trainer logged resolve rates 0.25, 0.5, 0.5 and a quarter of sandbox errors at step 1
    run = repo_run(user, "4.50", prompts_per_step=4, group_size=2)
    episodes(run, "resolved", 1)
    for step, rate in enumerate((0.25, 0.5, 0.5)):
        MetricPointFactory(run=run, key="repo/resolve_rate", step=step, value=rate)
    MetricPointFactory(run=run, key="repo/outcome/sandbox_error", step=1, value=0.25)
    # then scored = 8 + 6 + 8 = 22, resolved = 0.25×8 + 0.5×6 + 0.5×8 = 9: 41%, $4.50 / 9 = $0.50
    stats = run_resolve_stats(run=run)
    assert (stats.source, stats.scored, stats.resolved) == ("metrics", 22.0, 9.0)
    page = cost_line(logged_in, run)
    assert 'data-testid="resolve-rate">41%<' in page and "9 of 22 scored episodes" in page
    assert "from repo/resolve_rate per step" in page
    assert 'data-testid="usd-per-resolved">$0.5000<' in page


def test_none_resolved_shows_a_dash(logged_in, user):
    run = repo_run(user, "1.00", generations_keep="all")
    episodes(run, "turn_limit", 2)
    page = cost_line(logged_in, run)
    assert 'data-testid="resolve-rate">0%<' in page and 'data-testid="usd-per-resolved">—<' in page


def test_a_sample_without_metrics_claims_no_spend_per_resolved_task(logged_in, user):
    # given a capped run (a sample of its episodes posted) whose trainer logged no resolve rate
    run = repo_run(user, "1.00")
    episodes(run, "resolved", 1)
    episodes(run, "tests_fail", 1)
    # then the sample's rate is shown as such, and no dollars per resolved task
    page = cost_line(logged_in, run)
    assert "1 of 2 scored episodes, of the posted sample" in page
    assert 'data-testid="usd-per-resolved">—<' in page


def test_a_run_without_episodes_has_no_resolve_line(logged_in, user):
    run = repo_run(user, "1.00")
    GenerationFactory(run=run)  # a function problem's sample
    assert run_resolve_stats(run=run) is None
    assert 'data-testid="resolve"' not in cost_line(logged_in, run)


def test_the_spend_page_lists_dollars_per_resolved_task_per_run(logged_in, user):
    run = repo_run(user, "2.10", generations_keep="all")
    episodes(run, "resolved", 3)
    episodes(run, "tests_fail", 1)
    plain = repo_run(user, "5.00")
    page = logged_in.get(reverse("spend:dashboard")).content.decode()
    rows = page.split('data-testid="top-runs"')[1].split("</table>")[0].split("<tr>")[1:]
    by_name = {row.split("</a>")[0].rsplit(" ", 1)[-1]: row for row in rows if "</a>" in row}
    assert '<td data-testid="usd-per-resolved">0.7000</td>' in by_name[run.name]
    assert "75%" in by_name[run.name]
    assert '<td data-testid="usd-per-resolved">—</td>' in by_name[plain.name]


def test_the_spend_api_by_run_carries_the_resolve_figures(user):
    from tests.controlplane.api.conftest import api_client_for

    run = repo_run(user, "2.10", generations_keep="all")
    episodes(run, "resolved", 3)
    episodes(run, "sandbox_error", 2)
    rows = api_client_for(user).get("/spend", {"by": "run"}).json()["rows"]
    row = next(r for r in rows if r["run_id"] == run.pk)
    assert (
        row["resolve_rate"] == 1.0 and row["usd_per_resolved"] == 0.7 and row["resolved_source"] == "stored"
    )
