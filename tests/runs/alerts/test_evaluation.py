"""Rules fire once per breach and re-arm when the condition clears: thresholds and NaN on new points
(evaluated after an ingest batch), silence (the beat), a run's status (after a transition)."""

import datetime as dt
import time

import pytest
from django.utils import timezone

from runs.alerts import hooks
from runs.alerts.evaluation import alert_metrics_evaluate, alert_silence_evaluate, alert_state_evaluate
from runs.alerts.models import AlertFiring, AlertRuleRun, Notification
from runs.lifecycle import run_budget_stop, transition
from runs.models import RunStatus
from tests.factories import TEST_TOKEN, MetricPointFactory, RunFactory, TeamFactory

pytestmark = pytest.mark.django_db


def points(run, key, values, start=0):
    for i, value in enumerate(values):
        MetricPointFactory(run=run, key=key, step=start + i, value=value)


def test_a_threshold_rule_fires_once_per_breach_and_re_arms_when_it_clears(run, make_rule, member):
    rule = make_rule(condition="below", metric_key="reward/mean", threshold=0.1)
    points(run, "reward/mean", [0.5, 0.05, 0.02, 0.01])  # one breach over three points
    assert len(alert_metrics_evaluate(run_id=run.pk)) == 1
    firing = AlertFiring.objects.get(rule=rule)
    assert (firing.step, firing.value, firing.cleared_at) == (1, 0.05, None)
    assert "reward/mean = 0.05 at step 1" in firing.message
    assert len(alert_metrics_evaluate(run_id=run.pk)) == 0  # nothing new: nothing fires again
    points(run, "reward/mean", [0.3, 0.2], start=4)  # cleared: re-armed
    assert len(alert_metrics_evaluate(run_id=run.pk)) == 0
    assert AlertFiring.objects.get(rule=rule).cleared_at is not None
    points(run, "reward/mean", [0.09], start=6)  # a second breach
    assert len(alert_metrics_evaluate(run_id=run.pk)) == 1
    assert list(AlertFiring.objects.filter(rule=rule).order_by("step").values_list("step", flat=True)) == [
        1,
        6,
    ]
    assert Notification.objects.filter(user=member, read_at__isnull=True).count() == 2


def test_an_above_rule_watches_its_own_key_only(run, make_rule):
    above = make_rule(condition="above", metric_key="kl", threshold=0.2)
    points(run, "kl", [0.1, 0.3])
    points(run, "other", [99.0])
    assert len(alert_metrics_evaluate(run_id=run.pk)) == 1
    assert AlertFiring.objects.get(rule=above).value == 0.3


def post_events(client, run, events):
    return client.post(
        f"/api/v1/runs/{run.pk}/events",
        {"events": events},
        content_type="application/json",
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
    )


def test_a_nan_rule_fires_on_a_nan_the_ingest_api_refuses_and_re_arms_on_the_next_finite_point(
    client, run, make_rule, eager, settings, django_capture_on_commit_callbacks
):
    settings.TRIAD_ALERTS_EVAL_DELAY_S = 0.1
    rule = make_rule(condition="nan", metric_key="loss")
    make_rule(condition="nan", metric_key="kl")  # another key: not told
    nan = '{"events": [{"seq": 1, "type": "metric", "step": 7, "values": {"loss": NaN, "kl": 0.1}}]}'
    for _ in range(2):  # the client drops the refused event; a second NaN of the same breach fires nothing
        response = client.post(
            f"/api/v1/runs/{run.pk}/events",
            nan,
            content_type="application/json",
            headers={"Authorization": f"Bearer {TEST_TOKEN}"},
        )
        assert response.status_code == 400 and response.json()["field"] == "values.loss"
    firing = AlertFiring.objects.get(rule__metric_key="loss")
    assert firing.rule == rule and firing.step == 7 and firing.message.startswith("loss = nan at step 7")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_events(
            client, run, [{"seq": 2, "type": "metric", "step": 8, "values": {"loss": 0.5}}]
        )
    assert response.status_code == 200
    assert AlertFiring.objects.get(rule=rule).cleared_at is not None


def test_a_team_rule_watches_every_run_of_its_team_and_no_other(run, make_rule, member):
    rule = make_rule(run_id=None, team_id=run.team_id, condition="above", metric_key="kl", threshold=1)
    sibling = RunFactory(created_by=member, status="running")
    stranger = RunFactory(status="running", team=TeamFactory(name="rivals"))  # another team's
    for r in (run, sibling, stranger):
        points(r, "kl", [5.0])
        alert_metrics_evaluate(run_id=r.pk)
    assert set(AlertFiring.objects.filter(rule=rule).values_list("run_id", flat=True)) == {run.pk, sibling.pk}


def test_a_new_rule_judges_the_latest_point_not_the_history(run, make_rule):
    points(run, "kl", [9.0, 9.0, 0.0, 9.0, 0.0])  # old breaches, cleared by now
    rule = make_rule(condition="above", metric_key="kl", threshold=1)
    assert len(alert_metrics_evaluate(run_id=run.pk)) == 0
    points(run, "kl", [3.0], start=5)
    assert len(alert_metrics_evaluate(run_id=run.pk)) == 1
    assert AlertFiring.objects.get(rule=rule).step == 5


def test_a_disabled_rule_does_not_fire(run, make_rule):
    make_rule(condition="above", metric_key="kl", threshold=1, enabled=False)
    points(run, "kl", [5.0])
    assert len(alert_metrics_evaluate(run_id=run.pk)) == 0


def poster(client, run, capture):
    """post(seq, step, kl) through the ingest API, its on-commit callbacks run as a commit would."""

    def post(seq, step, value):
        with capture(execute=True):
            response = post_events(
                client, run, [{"seq": seq, "type": "metric", "step": step, "values": {"kl": value}}]
            )
        assert response.status_code == 200, response.content

    return post


def test_points_posted_through_the_ingest_api_are_evaluated_by_the_task_after_commit(
    client, run, make_rule, eager, settings, django_capture_on_commit_callbacks
):
    settings.TRIAD_ALERTS_EVAL_DELAY_S = 0.2
    rule = make_rule(condition="above", metric_key="kl", threshold=0.5)

    post = poster(client, run, django_capture_on_commit_callbacks)

    post(1, 0, 0.1)
    time.sleep(0.3)  # past the evaluation window: the next batch enqueues its own task
    post(2, 1, 0.9)
    firing = AlertFiring.objects.get(rule=rule)
    assert (firing.step, firing.value) == (1, 0.9)


def test_a_rule_made_just_after_a_point_sees_the_next_batch_at_once(
    client, run, make_rule, eager, settings, django_capture_on_commit_callbacks, monkeypatch
):
    # given a point posted while no rule watched the run, and a rule made within the window after it
    settings.TRIAD_ALERTS_EVAL_DELAY_S = 5
    # (without Redis the windows live in this process: an earlier test's run of the same pk, as SQLite
    # hands pks out again after a rollback, must not hold this one's)
    monkeypatch.setattr(hooks, "_local_until", {})

    post = poster(client, run, django_capture_on_commit_callbacks)

    post(1, 0, 0.1)
    rule = make_rule(condition="above", metric_key="kl", threshold=0.5)
    # when the next batch breaches it, still inside what would have been the first batch's window
    post(2, 1, 0.9)
    # then it is evaluated now, not after a later batch
    firing = AlertFiring.objects.get(rule=rule)
    assert (firing.step, firing.value) == (1, 0.9)


def test_the_evaluation_window_lets_one_task_through_per_run_per_window(settings):
    settings.TRIAD_ALERTS_EVAL_DELAY_S = 0.2
    run_id = 10_000_000 + int(time.time() * 1000) % 1_000_000  # a key no other test uses
    assert hooks._first_in_window(run_id, 0.2)
    assert not hooks._first_in_window(run_id, 0.2)
    assert hooks._first_in_window(run_id + 1, 0.2)
    time.sleep(0.3)
    assert hooks._first_in_window(run_id, 0.2)


def test_a_no_data_rule_fires_after_its_minutes_of_silence_and_re_arms_on_a_new_point(run, make_rule):
    rule = make_rule(condition="no_data", metric_key="reward/mean", minutes=5)
    old = timezone.now() - dt.timedelta(minutes=6)
    MetricPointFactory(run=run, key="reward/mean", step=0, value=1.0, wall_time=old)
    assert len(alert_silence_evaluate()) == 1
    assert len(alert_silence_evaluate()) == 0  # still silent: fired once
    firing = AlertFiring.objects.get(rule=rule)
    assert "no new reward/mean point for 6 min" in firing.message
    MetricPointFactory(run=run, key="reward/mean", step=1, value=1.0)
    assert len(alert_silence_evaluate()) == 0
    assert AlertFiring.objects.get(rule=rule).cleared_at is not None
    assert not AlertRuleRun.objects.get(rule=rule, run=run).firing


def test_a_no_data_rule_counts_from_the_start_of_a_run_without_points_and_ignores_stopped_runs(
    member, make_rule
):
    started = timezone.now() - dt.timedelta(minutes=11)
    quiet = RunFactory(created_by=member, status="running", started_at=started)
    done = RunFactory(created_by=member, status="succeeded", started_at=started)
    rule = make_rule(run_id=None, team_id=quiet.team_id, condition="no_data", metric_key="loss", minutes=10)
    assert len(alert_silence_evaluate()) == 1
    assert list(AlertFiring.objects.filter(rule=rule).values_list("run_id", flat=True)) == [quiet.pk]
    assert done.pk not in AlertRuleRun.objects.values_list("run_id", flat=True)


def test_a_state_rule_fires_when_the_run_fails_and_re_arms_when_it_is_resumed(
    run, make_rule, eager, django_capture_on_commit_callbacks
):
    rule = make_rule(condition="state", states=["failed", "lost"])
    with django_capture_on_commit_callbacks(execute=True):
        transition(run.pk, RunStatus.FAILED, "CUDA error: out of memory")
    firing = AlertFiring.objects.get(rule=rule)
    assert firing.message == f"run #{run.pk} grpo-7b: Failed: CUDA error: out of memory"
    assert len(alert_state_evaluate(run_id=run.pk, status="failed")) == 0  # a repeated task: fired once
    with django_capture_on_commit_callbacks(execute=True):  # the tasks run after all three moves
        transition(run.pk, RunStatus.QUEUED, "resumed")
        transition(run.pk, RunStatus.RUNNING)
        transition(run.pk, RunStatus.LOST, "no heartbeat")
    assert AlertFiring.objects.filter(rule=rule).count() == 2


def test_a_state_rule_ignores_the_states_it_does_not_watch(
    run, make_rule, eager, django_capture_on_commit_callbacks
):
    rule = make_rule(condition="state", states=["budget_stopped"])
    with django_capture_on_commit_callbacks(execute=True):
        transition(run.pk, RunStatus.SUCCEEDED)
    assert not AlertFiring.objects.filter(rule=rule).exists()
    other = RunFactory(created_by=run.created_by, status="running")
    make_rule(run_id=other.pk, condition="state", states=["budget_stopped"])
    with django_capture_on_commit_callbacks(execute=True):
        run_budget_stop(run_id=other.pk, message="over the team's monthly budget")
    assert AlertFiring.objects.get(run=other).message.endswith(
        "Budget Stopped: over the team's monthly budget"
    )


def test_a_rule_author_who_left_the_team_is_no_longer_notified(run, make_rule, member):
    from controlplane.accounts.models import Membership

    rule = make_rule(condition="above", metric_key="kl", threshold=1)
    Membership.objects.filter(user=member).delete()
    points(run, "kl", [5.0])
    assert len(alert_metrics_evaluate(run_id=run.pk)) == 1  # recorded, on the rule's page
    assert AlertFiring.objects.filter(rule=rule).exists() and not Notification.objects.exists()
