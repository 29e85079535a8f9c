import json

import pytest

from runs.models import Generation, LogLine, MetricPoint, RunStatus
from tests.factories import TEST_TOKEN, RunFactory

pytestmark = pytest.mark.django_db


def post(client, run_id, body, token=TEST_TOKEN, raw=None):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    data = raw if raw is not None else json.dumps(body)
    return client.post(
        f"/api/v1/runs/{run_id}/events", data=data, content_type="application/json", headers=headers
    )


def metric(seq, step, **values):
    return {
        "seq": seq,
        "type": "metric",
        "step": step,
        "time": 1_700_000_000.0 + step,
        "values": values or {"reward/mean": 0.5, "pass_rate": 0.25},
    }


def test_metrics_are_stored_and_the_answer_carries_the_desired_state(client):
    run = RunFactory(status=RunStatus.RUNNING)

    response = post(client, run.pk, {"events": [metric(1, 0), metric(2, 1)]})

    assert response.status_code == 200
    assert response.json() == {"accepted": 2, "duplicates": 0, "desired_state": "running"}
    assert MetricPoint.objects.filter(run=run).count() == 4
    run.refresh_from_db()
    assert run.last_step == 1 and run.last_heartbeat_at is not None


def test_a_repeated_seq_is_accepted_and_ignored(client):
    run = RunFactory(status=RunStatus.RUNNING)
    post(client, run.pk, {"events": [metric(1, 0)]})

    response = post(client, run.pk, {"events": [metric(1, 0), metric(2, 1), metric(2, 1)]})

    assert response.json()["accepted"] == 1
    assert response.json()["duplicates"] == 2
    assert MetricPoint.objects.filter(run=run, key="pass_rate").count() == 2


def test_the_same_seq_from_another_source_is_a_different_event(client):
    run = RunFactory(status=RunStatus.RUNNING)
    post(client, run.pk, {"source": "trainer", "events": [metric(1, 0)]})

    response = post(client, run.pk, {"source": "launcher", "events": [{"seq": 1, "type": "heartbeat"}]})

    assert response.json()["accepted"] == 1


def test_generations_and_logs_are_stored(client):
    run = RunFactory(status=RunStatus.RUNNING)
    generation = {
        "seq": 1,
        "type": "generation",
        "step": 3,
        "problem_id": "T/1",
        "completion": "return 1",
        "reward": 0.0,
        "passed": False,
        "error_class": "wrong_answer",
        "tests_passed": 0,
        "tests_total": 2,
        "stderr": "AssertionError",
    }

    post(
        client,
        run.pk,
        {"events": [generation, {"seq": 2, "type": "log", "message": "hello", "level": "warning"}]},
    )

    stored = Generation.objects.get(run=run)
    assert (stored.step, stored.error_class, stored.tests_total) == (3, "wrong_answer", 2)
    assert LogLine.objects.filter(run=run, message="hello", level="warning").exists()


def test_missing_token_is_refused(client):
    run = RunFactory()

    response = post(client, run.pk, {"events": [metric(1, 0)]}, token=None)

    assert response.status_code == 401
    assert "Bearer" in response.json()["error"]


def test_a_wrong_token_is_refused_and_nothing_is_written(client):
    run = RunFactory()

    response = post(client, run.pk, {"events": [metric(1, 0)]}, token="triad_run_wrong")

    assert response.status_code == 401
    assert MetricPoint.objects.count() == 0


def test_a_token_of_another_run_is_refused(client):
    mine, other = RunFactory(), RunFactory(token_hash="0" * 64)

    response = post(client, other.pk, {"events": [metric(1, 0)]})

    assert response.status_code == 401
    assert mine.pk != other.pk


def test_an_unknown_run_and_a_wrong_token_get_the_same_401(client):
    run = RunFactory()

    unknown = post(client, 999_999, {"events": [metric(1, 0)]})
    wrong = post(client, run.pk, {"events": [metric(1, 0)]}, token="triad_run_wrong")

    # the answer does not tell which run ids exist
    assert (unknown.status_code, wrong.status_code) == (401, 401)
    assert unknown.json()["error"].replace("999999", "N") == wrong.json()["error"].replace(str(run.pk), "N")


def test_a_run_id_past_64_bits_is_the_same_401(client):
    # on SQLite the id could not even be bound to the query: it was a 500
    response = post(client, 2**64, {"events": [metric(1, 0)]})

    assert response.status_code == 401
    assert response.json()["error"] == f"run {2**64}: no such run, or the token does not match it"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"seq": 1, "type": "metric", "values": {"a": 1}}, "step"),
        ({"seq": "x", "type": "metric", "step": 0, "values": {"a": 1}}, "seq"),
        ({"seq": 1, "type": "bogus"}, "type"),
        ({"seq": 1, "type": "metric", "step": 0, "values": {"loss": "high"}}, "values.loss"),
        ({"seq": 1, "type": "metric", "step": 0, "values": {}}, "values"),
        (
            {
                "seq": 1,
                "type": "generation",
                "step": 0,
                "problem_id": "p",
                "completion": "c",
                "reward": 1,
                "passed": "yes",
                "error_class": "passed",
            },
            "passed",
        ),
        ({"seq": 1, "type": "status", "status": "exploded"}, "status"),
    ],
)
def test_a_bad_event_is_refused_naming_the_event_and_field(client, event, field):
    run = RunFactory()

    response = post(client, run.pk, {"events": [metric(1, 0), event]})

    assert response.status_code == 400
    body = response.json()
    assert body["event_index"] == 1 and body["field"] == field
    assert f"events[1].{field}" in body["error"]
    assert MetricPoint.objects.count() == 0  # nothing half-written


def test_nan_is_refused_by_name(client):
    run = RunFactory()

    response = post(
        client,
        run.pk,
        {},
        raw='{"events": [{"seq": 1, "type": "metric", "step": 0, "values": {"loss": NaN}}]}',
    )

    assert response.status_code == 400
    assert response.json()["field"] == "values.loss"


def test_malformed_json_is_refused_with_its_position(client):
    run = RunFactory()

    response = post(client, run.pk, {}, raw='{"events": [')

    assert response.status_code == 400
    assert "invalid JSON" in response.json()["error"]


def test_an_oversized_body_is_413(client, settings):
    settings.TRIAD_INGEST_MAX_BYTES = 1000
    run = RunFactory()

    response = post(client, run.pk, {"events": [metric(i, i) for i in range(100)]})

    assert response.status_code == 413


def test_status_events_move_the_run_forward_but_never_back(client):
    run = RunFactory()
    post(
        client, run.pk, {"source": "launcher", "events": [{"seq": 1, "type": "status", "status": "starting"}]}
    )
    post(client, run.pk, {"events": [{"seq": 1, "type": "status", "status": "running"}]})
    post(
        client,
        run.pk,
        {"source": "launcher", "events": [{"seq": 2, "type": "status", "status": "succeeded"}]},
    )

    response = post(
        client, run.pk, {"source": "launcher", "events": [{"seq": 3, "type": "status", "status": "running"}]}
    )

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.started_at is not None and run.finished_at is not None
    assert response.json()["desired_state"] == "succeeded"


def test_spec_endpoint_gives_the_problems_to_a_token_holder(client):
    from tests.factories import ProblemFactory

    run = RunFactory()
    ProblemFactory(version=run.dataset_version, task_id="X/1")

    response = client.get(f"/api/v1/runs/{run.pk}/spec", headers={"Authorization": f"Bearer {TEST_TOKEN}"})

    assert response.status_code == 200
    spec = response.json()
    assert spec["run_id"] == run.pk
    assert [p["task_id"] for p in spec["problems"]] == ["X/1"]
    assert spec["train"]["steps"] == 2


def test_spec_of_a_cancelled_run_is_409(client):
    run = RunFactory(status=RunStatus.CANCELLED)

    response = client.get(f"/api/v1/runs/{run.pk}/spec", headers={"Authorization": f"Bearer {TEST_TOKEN}"})

    assert response.status_code == 409


def test_a_burst_past_the_rate_limit_gets_429_with_retry_after_and_writes_nothing(
    client, settings, monkeypatch
):
    monkeypatch.setattr("runs.ratelimit.time.time", lambda: 1_800_000_000.5)  # both posts in one window
    settings.TRIAD_INGEST_EVENTS_PER_S = 3
    run = RunFactory(status=RunStatus.RUNNING)
    post(client, run.pk, {"events": [metric(1, 0), metric(2, 1)]})

    response = post(client, run.pk, {"events": [metric(3, 2), metric(4, 3)]})

    assert response.status_code == 429
    assert response["Retry-After"] == "1"
    assert "events/s" in response.json()["error"]
    assert MetricPoint.objects.filter(run=run, key="pass_rate").count() == 2


def test_with_redis_unreachable_the_rate_limit_lets_batches_through_rather_than_fail_them(
    client, settings, monkeypatch
):
    from tests.processes import free_port

    monkeypatch.setattr("runs.ratelimit._redis_paused_until", 0.0)  # restored after: later tests count again
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    settings.TRIAD_INGEST_EVENTS_PER_S = 3
    run = RunFactory(status=RunStatus.RUNNING)

    answers = [post(client, run.pk, {"events": [metric(s, s), metric(s + 1, s + 1)]}) for s in (1, 3)]

    assert [a.status_code for a in answers] == [200, 200]  # Redis is transport: ingest never waits on it
    assert MetricPoint.objects.filter(run=run, key="pass_rate").count() == 4
