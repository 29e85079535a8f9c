"""A run's attempt is claimed once: a redelivered start task, or a cancel before the start, starts nothing."""

import json
from pathlib import Path

import pytest

from runs.launch import run_resume
from runs.lifecycle import run_cancel
from runs.models import LogLine, Run, RunStatus
from tests.factories import TEST_TOKEN, RunFactory
from tests.workers.stand_in import (
    Launch,
    group_alive,
    kill_groups,
    stand_in_deepspeed,
    supervise_args,
    wait_until,
)
from workers.launcher import run_supervised


def claim(client, run_id, body, token=TEST_TOKEN):
    return client.post(
        f"/api/v1/runs/{run_id}/claim",
        data=json.dumps(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.mark.django_db
def test_the_first_claim_of_an_attempt_starts_the_run_and_the_same_claim_is_accepted_again(client):
    run = RunFactory()

    first = claim(client, run.pk, {"attempt": 1, "claim": "k1@node-a"})
    retried = claim(client, run.pk, {"attempt": 1, "claim": "k1@node-a"})  # its answer was lost

    assert first.status_code == 200 and first.json()["desired_state"] == "starting"
    assert retried.status_code == 200 and retried.json()["desired_state"] == "starting"
    run.refresh_from_db()
    assert (run.status, run.claimed_by, run.started_at is not None) == ("starting", "k1@node-a", True)
    assert LogLine.objects.filter(run=run, message__startswith="status → starting").count() == 1


@pytest.mark.django_db
def test_another_claim_of_a_claimed_attempt_is_refused_with_the_desired_state(client):
    run = RunFactory()
    claim(client, run.pk, {"attempt": 1, "claim": "k1@node-a"})
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)

    response = claim(client, run.pk, {"attempt": 1, "claim": "k2@node-b"})

    assert response.status_code == 409
    assert response.json()["desired_state"] == "running"
    assert Run.objects.get(pk=run.pk).claimed_by == "k1@node-a"


@pytest.mark.django_db
def test_a_claim_for_another_attempt_or_a_cancelled_run_is_refused(client):
    run = RunFactory()

    stale = claim(client, run.pk, {"attempt": 2, "claim": "k1@node-a"})
    assert stale.status_code == 409 and stale.json()["desired_state"] == "queued"

    run_cancel(run_id=run.pk)  # lands between the launcher's spec fetch and its claim
    cancelled = claim(client, run.pk, {"attempt": 1, "claim": "k1@node-a"})
    assert cancelled.status_code == 409 and cancelled.json()["desired_state"] == "cancelled"
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"claim": "k"}, "attempt"),
        ({"attempt": True, "claim": "k"}, "attempt"),
        ({"attempt": 1}, "claim"),
        ({"attempt": 1, "claim": "node\x00a"}, "claim"),
        ({"attempt": 1, "claim": "node\ud800"}, "claim"),
    ],
)
def test_a_malformed_claim_is_a_400_naming_the_field(client, body, field):
    run = RunFactory()

    response = claim(client, run.pk, body)

    assert response.status_code == 400 and response.json()["field"] == field
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED


@pytest.mark.django_db
def test_a_claim_nested_too_deeply_is_a_400_not_a_500(client):
    run = RunFactory()

    response = client.post(
        f"/api/v1/runs/{run.pk}/claim",
        data="[" * 100_000 + "]" * 100_000,
        content_type="application/json",
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
    )

    assert response.status_code == 400 and response.json()["field"] == "body"


@pytest.mark.django_db
def test_a_claim_needs_the_runs_token(client):
    run = RunFactory()

    assert claim(client, run.pk, {"attempt": 1, "claim": "k"}, token="wrong").status_code == 401
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED


@pytest.mark.django_db
def test_resume_is_a_new_attempt_that_only_a_new_claim_takes(client):
    run = RunFactory()
    claim(client, run.pk, {"attempt": 1, "claim": "k1@node-a"})
    Run.objects.filter(pk=run.pk).update(status=RunStatus.LOST)

    resumed = run_resume(run_id=run.pk)

    assert resumed is not None
    run.refresh_from_db()
    assert (run.status, run.attempt, run.claimed_by) == ("queued", 2, "")
    spec = client.get(
        f"/api/v1/runs/{run.pk}/spec", headers={"Authorization": f"Bearer {resumed.token}"}
    ).json()
    assert spec["attempt"] == 2
    old = claim(client, run.pk, {"attempt": 1, "claim": "k1@node-a"}, token=resumed.token)
    assert old.status_code == 409
    new = claim(client, run.pk, {"attempt": 2, "claim": "k2@node-b"}, token=resumed.token)
    assert new.status_code == 200
    assert Run.objects.get(pk=run.pk).claimed_by == "k2@node-b"


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_start_task_starts_no_second_trainer(live_server, tmp_path: Path):
    run = RunFactory()
    stand_in = stand_in_deepspeed(tmp_path)
    # a redelivery to the same node finds the same work dir
    launch = supervise_args(
        stand_in,
        run_id=run.pk,
        token=TEST_TOKEN,
        control_url=live_server.url,
        workdir=tmp_path / "run",
        kill_grace_s=5,
    )
    try:
        first = Launch(**launch)
        wait_until(stand_in.starts, 60, "the first launcher to start its trainer")

        redelivered = Launch(**launch)
        redelivered.wait(30)

        assert redelivered.result == "refused", redelivered.error
        assert len(stand_in.starts()) == 1
        assert Run.objects.get(pk=run.pk).status == RunStatus.STARTING  # the refused one reported nothing
        run_cancel(run_id=run.pk)
        assert first.wait(60)
        assert first.result == "cancelled", first.error
        assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED
        assert all(group_alive(pgid) == [] for pgid in stand_in.starts())
    finally:
        run_cancel(run_id=run.pk)
        kill_groups(stand_in.starts())


@pytest.mark.django_db(transaction=True)
def test_a_cancel_landing_after_the_claim_starts_nothing(live_server, tmp_path: Path):
    run = RunFactory()
    stand_in = stand_in_deepspeed(tmp_path)
    try:
        final = run_supervised(
            **supervise_args(
                stand_in,
                run_id=run.pk,
                token=TEST_TOKEN,
                control_url=live_server.url,
                workdir=tmp_path / "run",
                kill_grace_s=5,
            ),
            on_claimed=lambda: run_cancel(run_id=run.pk),  # right after the claim, before any start
        )

        assert final == "cancelled"
        assert stand_in.starts() == []
        assert not LogLine.objects.filter(run=run, message__contains="SIGTERM").exists()
        assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    finally:
        kill_groups(stand_in.starts())
