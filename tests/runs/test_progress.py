import datetime as dt
from decimal import Decimal

import pytest

from runs.models import RunMetricKey, RunStatus
from runs.progress import RATE_MIN_STEPS, duration_label, eta_seconds, run_progress
from runs.spend.models import RunCost
from tests.factories import MetricPointFactory, RunFactory

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def test_eta_is_the_remaining_steps_at_the_recent_rate():
    # Steps 10..19 took 2 s each (18 s for 9 steps): 0.5 steps/s; 100 - 20 done = 80 left → 160 s.
    samples = [(step, 1000.0 + 2 * (step - 10)) for step in range(10, 20)]

    assert eta_seconds(samples=samples, done=20, total=100) == pytest.approx(160.0)


def test_eta_follows_the_window_given_not_the_runs_start():
    # Slow at first (10 s a step), fast lately (1 s a step): only the recent steps are passed in.
    recent = [(50, 500.0), (51, 501.0), (52, 502.0), (53, 503.0)]

    assert eta_seconds(samples=recent, done=54, total=64) == pytest.approx(10.0)


def test_no_eta_until_enough_steps_are_timed():
    assert eta_seconds(samples=[], done=0, total=10) is None
    two = [(0, 1.0), (1, 3.0)]
    assert len(two) < RATE_MIN_STEPS
    assert eta_seconds(samples=two, done=2, total=10) is None


def test_no_eta_when_no_time_passed_between_the_steps():
    assert eta_seconds(samples=[(0, 5.0), (1, 5.0), (2, 5.0)], done=3, total=10) is None


def test_a_step_reported_twice_counts_once_with_its_latest_time():
    # A resumed attempt re-ran step 2, at t=14: from step 0 at t=2 to step 2 at t=14 is 2 steps in
    # 12 s; 7 steps left → 42 s.
    samples = [(0, 2.0), (1, 3.0), (2, 4.0), (2, 14.0)]

    assert eta_seconds(samples=samples, done=3, total=10) == pytest.approx(42.0)


def test_a_finished_run_has_nothing_left():
    assert eta_seconds(samples=[], done=10, total=10) == 0.0


@pytest.mark.parametrize(
    ("seconds", "label"),
    [(None, "–"), (0, "0s"), (12.4, "12s"), (249, "4m 09s"), (7500, "2h 05m"), (90000, "1d 01h")],
)
def test_durations_read_as_people_write_them(seconds, label):
    assert duration_label(seconds) == label


@pytest.mark.django_db
def test_run_progress_reads_steps_time_rate_and_cost():
    run = RunFactory(
        config={"steps": 10},
        status=RunStatus.RUNNING,
        started_at=T0,
        last_step=3,
    )
    for step in range(4):  # one step every 30 s
        MetricPointFactory(run=run, key="loss", step=step, wall_time=T0 + dt.timedelta(seconds=30 * step))
    RunMetricKey.objects.create(run=run, key="loss", last_step=3)
    RunCost.objects.create(run=run, accrued_until=T0, usd=Decimal("1.25"), gpus=1)
    run.refresh_from_db()

    progress = run_progress(run=run, now=T0 + dt.timedelta(seconds=100))

    assert (progress.done, progress.total, progress.percent) == (4, 10, 40)
    assert progress.elapsed_s == 100
    assert progress.eta_s == pytest.approx(6 * 30)
    assert progress.usd == 1.25


@pytest.mark.django_db
def test_a_run_that_is_not_running_has_no_eta_and_no_cost_yet():
    run = RunFactory(config={"steps": 5}, status=RunStatus.QUEUED)

    progress = run_progress(run=run)

    assert (progress.done, progress.total, progress.elapsed_s, progress.eta_s, progress.usd) == (
        0,
        5,
        None,
        None,
        None,
    )
