"""The trainer's "checkpoints" report: validated (bounded, every field named in errors), stored as the
run's kept checkpoints, and only from the run's current attempt."""

import json

import pytest

from runs.events import MAX_CHECKPOINTS, EventError, parse_batch
from runs.launch import run_resume
from runs.models import Run, RunStatus
from tests.factories import TEST_TOKEN, RunFactory

pytestmark = pytest.mark.django_db


def report(*steps: int, attempt: int = 1, quota: int = 0) -> dict:
    kept = [
        {"attempt": attempt, "step": s, "tag": f"step{s}", "bytes": 1000, "why": ["last"], "metric": None}
        for s in steps
    ]
    return {"kept": kept, "used_bytes": 1000 * len(steps), "quota_bytes": quota}


def event(seq: int, body: dict) -> dict:
    return {"seq": seq, "type": "checkpoints", **body}


def post(client, run_id, events, *, attempt=None, token=TEST_TOKEN):
    body = {"source": "trainer", "events": events}
    if attempt is not None:
        body["attempt"] = attempt
    return client.post(
        f"/api/v1/runs/{run_id}/events",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_a_report_becomes_the_runs_kept_checkpoints(client):
    run = RunFactory(status=RunStatus.RUNNING)
    body = report(4, 6, quota=5000)
    body["kept"][0].update(why=["best"], metric=0.75)

    response = post(client, run.pk, [event(0, body)], attempt=1)

    assert response.status_code == 200, response.json()
    run.refresh_from_db()
    assert run.checkpoints == {**body, "attempt": 1}


def test_the_newest_report_of_a_batch_wins_and_a_later_one_replaces_it(client):
    run = RunFactory(status=RunStatus.RUNNING)

    post(client, run.pk, [event(1, report(2, 4)), event(0, report(2))], attempt=1)
    assert [k["step"] for k in Run.objects.get(pk=run.pk).checkpoints["kept"]] == [2, 4]

    post(client, run.pk, [event(2, report(4, 6))], attempt=1)
    assert [k["step"] for k in Run.objects.get(pk=run.pk).checkpoints["kept"]] == [4, 6]


def test_a_report_of_an_attempt_given_up_on_is_not_stored(client):
    run = RunFactory(status=RunStatus.RUNNING)
    post(client, run.pk, [event(0, report(2))], attempt=1)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.LOST)
    resumed = run_resume(run_id=run.pk)
    assert resumed is not None
    post(client, run.pk, [event(0, report(2, 4, attempt=2))], attempt=2, token=resumed.token)

    # Attempt 1's trainer, still alive somewhere, with the run's token: its attempt is fenced.
    response = post(client, run.pk, [event(1, report(2, 8))], attempt=1, token=resumed.token)

    assert response.status_code == 409
    kept = Run.objects.get(pk=run.pk).checkpoints
    assert kept["attempt"] == 2 and [k["step"] for k in kept["kept"]] == [2, 4]


def test_an_empty_report_says_nothing_is_kept(client):
    run = RunFactory(status=RunStatus.RUNNING)

    post(client, run.pk, [event(0, report())], attempt=1)

    assert Run.objects.get(pk=run.pk).checkpoints == {
        "kept": [],
        "used_bytes": 0,
        "quota_bytes": 0,
        "attempt": 1,
    }


def test_a_bad_report_is_refused_with_a_400_naming_the_field(client):
    run = RunFactory(status=RunStatus.RUNNING)
    body = report(2)
    body["kept"][0]["why"] = ["favourite"]

    response = post(client, run.pk, [event(0, body)], attempt=1)

    assert response.status_code == 400
    assert response.json()["field"] == "kept[0].why"
    assert Run.objects.get(pk=run.pk).checkpoints == {}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b.update(kept="all"), "kept"),
        (lambda b: b.update(kept=[{} for _ in range(MAX_CHECKPOINTS + 1)]), "kept"),
        (lambda b: b["kept"].__setitem__(0, "step2"), "kept[0]"),
        (lambda b: b["kept"][0].update(attempt=0), "kept[0].attempt"),
        (lambda b: b["kept"][0].update(step=-1), "kept[0].step"),
        (lambda b: b["kept"][0].update(tag=7), "kept[0].tag"),
        (lambda b: b["kept"][0].update(bytes=2**63), "kept[0].bytes"),
        (lambda b: b["kept"][0].update(why=[]), "kept[0].why"),
        (lambda b: b["kept"][0].update(metric="high"), "kept[0].metric"),
        (lambda b: b.pop("used_bytes"), "used_bytes"),
        (lambda b: b.update(quota_bytes=-1), "quota_bytes"),
    ],
)
def test_each_bad_field_of_a_report_is_named(change, field):
    body = report(2, 4)
    change(body)

    with pytest.raises(EventError) as caught:
        parse_batch({"source": "trainer", "events": [event(0, body)]}, max_events=10)

    assert caught.value.field == field
    assert caught.value.message.startswith(f"events[0].{field}:")


def test_a_full_report_of_the_most_entries_parses():
    body = report(*range(MAX_CHECKPOINTS))

    batch = parse_batch({"source": "trainer", "events": [event(0, body)]}, max_events=10)

    assert len(batch.events[0].data["kept"]) == MAX_CHECKPOINTS
