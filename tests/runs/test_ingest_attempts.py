"""Telemetry keyed by attempt: a resumed attempt on a fresh node starts its sequence at 0 again and its
events land; an earlier attempt's are refused (fenced); a step re-run after a resume replaces the
points the lost attempt posted; a batch sent again within an attempt is stored once."""

import datetime as dt
import json
import random

import pytest

from runs.launch import run_resume
from runs.metric_store import SMALL_BATCH, metric_points_write
from runs.models import IngestedEvent, MetricPoint, MetricRollup, Run, RunStatus
from tests.factories import TEST_TOKEN, RunFactory

pytestmark = pytest.mark.django_db

ROLLUP_FIELDS = (
    "key", "width", "bucket", "n", "min_value", "min_step", "max_value", "max_step",
    "first_step", "first_value", "last_step", "last_value",
)  # fmt: skip


def post(client, run_id, events, *, attempt=None, token=TEST_TOKEN, source="trainer"):
    body = {"source": source, "events": events}
    if attempt is not None:
        body["attempt"] = attempt
    return client.post(
        f"/api/v1/runs/{run_id}/events",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def metric(seq, step, value):
    return {"seq": seq, "type": "metric", "step": step, "time": 1_700_000_000.0, "values": {"loss": value}}


def points(run):
    return list(
        MetricPoint.objects.filter(run=run).order_by("key", "step").values_list("key", "step", "value")
    )


def rollups(run_id):
    return list(
        MetricRollup.objects.filter(run_id=run_id).order_by(*ROLLUP_FIELDS[:3]).values_list(*ROLLUP_FIELDS)
    )


def lost_then_resumed(client):
    """A run whose attempt 1 posted steps 0..4 (seqs 0..4), was lost and resumed: attempt 2, a new token."""
    run = RunFactory(status=RunStatus.RUNNING)
    assert post(client, run.pk, [metric(i, i, 1.0) for i in range(5)], attempt=1).json()["accepted"] == 5
    Run.objects.filter(pk=run.pk).update(status=RunStatus.LOST)
    resumed = run_resume(run_id=run.pk)
    assert resumed is not None
    return Run.objects.get(pk=run.pk), resumed.token


def test_a_resumed_attempt_whose_seqs_restart_at_0_lands_and_replaces_the_steps_it_reruns(client):
    run, token = lost_then_resumed(client)
    assert run.attempt == 2

    # A fresh node: its spool starts at seq 0; the checkpoint was at step 3, so steps 3 and 4 run again.
    response = post(
        client, run.pk, [metric(0, 3, 2.0), metric(1, 4, 2.0), metric(2, 5, 2.0)], attempt=2, token=token
    )

    assert response.status_code == 200, response.json()
    assert (response.json()["accepted"], response.json()["duplicates"]) == (3, 0)
    assert points(run) == [
        ("loss", 0, 1.0),
        ("loss", 1, 1.0),
        ("loss", 2, 1.0),
        ("loss", 3, 2.0),
        ("loss", 4, 2.0),
        ("loss", 5, 2.0),
    ]
    keys = IngestedEvent.objects.filter(run=run).order_by("attempt", "seq").values_list("attempt", "seq")
    assert list(keys) == [(1, 0), (1, 1), (1, 2), (1, 3), (1, 4), (2, 0), (2, 1), (2, 2)]
    assert Run.objects.get(pk=run.pk).last_step == 5


def test_the_old_attempts_late_batch_is_refused_as_fenced_and_moves_nothing(client):
    run, token = lost_then_resumed(client)
    assert post(client, run.pk, [metric(0, 3, 2.0)], attempt=2, token=token).status_code == 200
    before = Run.objects.get(pk=run.pk)

    # Attempt 1's trainer, still alive somewhere: its old token is refused (resume changed it) and, with
    # the run's token, its attempt is.
    assert post(client, run.pk, [metric(5, 5, 9.0)], attempt=1).status_code == 401
    response = post(
        client, run.pk, [metric(5, 5, 9.0), {"seq": 6, "type": "heartbeat"}], attempt=1, token=token
    )

    assert response.status_code == 409
    assert response.json()["desired_state"] == "lost"  # what stops that trainer
    assert "attempt 1 is fenced: the run is on attempt 2" in response.json()["error"]
    after = Run.objects.get(pk=run.pk)
    assert (after.status, after.last_heartbeat_at, after.last_step) == (
        before.status,
        before.last_heartbeat_at,
        before.last_step,
    )
    assert not IngestedEvent.objects.filter(run=run, attempt=1, seq__gte=5).exists()
    assert (
        MetricPoint.objects.get(run=run, step=3).value,
        MetricPoint.objects.filter(run=run, step=5).exists(),
    ) == (
        2.0,
        False,
    )


def test_a_batch_of_an_attempt_the_run_has_not_reached_is_refused(client):
    run = RunFactory(status=RunStatus.RUNNING)

    response = post(client, run.pk, [metric(0, 0, 1.0)], attempt=2)

    assert response.status_code == 409
    assert not IngestedEvent.objects.filter(run=run).exists()


def test_a_batch_sent_again_within_an_attempt_is_stored_once(client):
    run, token = lost_then_resumed(client)
    batch = [metric(0, 3, 2.0), {"seq": 1, "type": "log", "level": "info", "message": "hi", "time": 0}]

    first = post(client, run.pk, batch, attempt=2, token=token)
    again = post(client, run.pk, batch, attempt=2, token=token)

    assert (first.json()["accepted"], again.json()["accepted"], again.json()["duplicates"]) == (2, 0, 2)
    assert MetricPoint.objects.filter(run=run, step=3).count() == 1
    assert IngestedEvent.objects.filter(run=run, attempt=2).count() == 2


def test_an_old_client_without_an_attempt_counts_as_the_current_attempt(client):
    run, token = lost_then_resumed(client)

    response = post(client, run.pk, [metric(0, 3, 2.0)], token=token)

    assert response.json()["accepted"] == 1  # seq 0 of attempt 1 was taken: keyed as attempt 2's
    assert IngestedEvent.objects.filter(run=run, attempt=2, seq=0).exists()
    assert post(client, run.pk, [metric(0, 3, 2.0)], token=token).json()["duplicates"] == 1


@pytest.mark.parametrize("attempt", [0, -1, "2", 1.5, True])
def test_an_attempt_that_is_not_a_positive_integer_is_a_400_naming_the_field(client, attempt):
    run = RunFactory(status=RunStatus.RUNNING)

    response = post(client, run.pk, [metric(0, 0, 1.0)], attempt=attempt)

    assert response.status_code == 400
    assert response.json()["field"] == "attempt"


def test_two_events_of_one_step_keep_one_point_the_later(client):
    run = RunFactory(status=RunStatus.RUNNING)

    post(client, run.pk, [metric(0, 7, 1.0), metric(1, 7, 3.0)], attempt=1)

    assert points(run) == [("loss", 7, 3.0)]


def series(run_id, steps, seed):
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    return [(run_id, key, step, rng.uniform(-1, 1), now) for step in steps for key in ("loss", "kl")]


@pytest.mark.parametrize("per_write", [30, 2 * SMALL_BATCH], ids=["step-sized", "copy-sized"])
def test_replaced_points_leave_the_rollups_of_the_series_written_once(per_write):
    """A lost attempt posted steps 0..1499, its resume re-runs 1000..1599 with other values: the points
    and every rollup are those of the final series written in one go (counts, extremes, first, last)."""
    resumed, once = RunFactory(), RunFactory()
    lost = series(resumed.pk, range(1500), seed=1)
    rerun = series(resumed.pk, range(1000, 1600), seed=2)
    for rows in (lost, rerun):
        for start in range(0, len(rows), per_write):
            metric_points_write(rows[start : start + per_write])
    final = {(k, s): (v, w) for _, k, s, v, w in lost + rerun}
    metric_points_write([(once.pk, k, s, v, w) for (k, s), (v, w) in sorted(final.items())])

    assert points(resumed) == points(once)
    assert len(points(resumed)) == 2 * 1600
    assert rollups(resumed.pk) == rollups(once.pk)
    widest = MetricRollup.objects.get(run=resumed, key="loss", width=262144)
    assert (widest.n, widest.max_value) == (1600, max(v for (k, _), (v, _) in final.items() if k == "loss"))
