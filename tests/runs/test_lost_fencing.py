"""A lost attempt is fenced: its events are refused, its launcher stops its trainer, Cancel ends the run and
only Resume starts it again."""

import json
from pathlib import Path

import pytest

from controlplane.accounts.models import AuditAction, AuditEntry
from runs.lifecycle import run_cancel, run_reap_lost
from runs.models import IngestedEvent, LogLine, MetricPoint, Run, RunStatus
from tests.factories import TEST_TOKEN, RunFactory
from tests.workers.stand_in import (
    Launch,
    group_alive,
    kill_groups,
    stand_in_deepspeed,
    supervise_args,
    wait_until,
)


def post(client, run_id, events, source="trainer"):
    return client.post(
        f"/api/v1/runs/{run_id}/events",
        data=json.dumps({"source": source, "events": events}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
    )


@pytest.mark.django_db
def test_a_lost_run_refuses_every_event_and_a_heartbeat_never_revives_it(client):
    run = RunFactory(status=RunStatus.LOST)
    metric = {"seq": 2, "type": "metric", "step": 7, "time": 1_700_000_000.0, "values": {"loss": 0.5}}

    response = post(
        client,
        run.pk,
        [
            {"seq": 1, "type": "heartbeat"},
            metric,
            {"seq": 3, "type": "status", "status": "running", "message": ""},
        ],
    )

    assert response.status_code == 409
    assert response.json()["desired_state"] == "lost"
    run.refresh_from_db()
    assert (run.status, run.last_heartbeat_at, run.last_step) == (RunStatus.LOST, None, None)
    assert not IngestedEvent.objects.filter(run=run).exists()  # nothing accepted, not even as seen
    assert not MetricPoint.objects.filter(run=run).exists()


@pytest.mark.django_db
def test_a_lost_runs_final_succeeded_is_refused(client):
    run = RunFactory(status=RunStatus.LOST)
    final = {"seq": 9, "type": "status", "status": "succeeded", "message": ""}

    response = post(client, run.pk, [final], source="launcher")

    assert response.status_code == 409
    assert Run.objects.get(pk=run.pk).status == RunStatus.LOST


@pytest.mark.django_db
def test_cancel_on_a_lost_run_cancels_it_for_good_and_is_audited(user):
    run = RunFactory(status=RunStatus.LOST)

    assert run_cancel(run_id=run.pk, user=user) is True

    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.finished_at is not None
    entry = AuditEntry.objects.get(action=AuditAction.RUN_CANCEL, target_id=str(run.pk))
    assert (entry.actor, entry.before, entry.after) == (user, {"status": "lost"}, {"status": "cancelled"})
    assert run_cancel(run_id=run.pk, user=user) is False  # a second click changes nothing


@pytest.mark.django_db
def test_a_lost_runs_page_offers_cancel_and_it_ends_the_run(logged_in):
    run = RunFactory(status=RunStatus.LOST)

    page = logged_in.get(f"/runs/{run.pk}/").content.decode()
    logged_in.post(f"/runs/{run.pk}/cancel/")

    assert 'data-testid="cancel"' in page and 'data-testid="resume"' in page
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED


@pytest.mark.django_db(transaction=True)
def test_a_launcher_told_its_run_is_lost_stops_its_trainer_and_reports_nothing(live_server, tmp_path: Path):
    run = RunFactory()
    stand_in = stand_in_deepspeed(tmp_path, stubborn=True)  # only a SIGKILL ends it
    try:
        launch = Launch(
            **supervise_args(
                stand_in,
                run_id=run.pk,
                token=TEST_TOKEN,
                control_url=live_server.url,
                workdir=tmp_path / "run",
            )
        )
        wait_until(stand_in.starts, 60, "the launcher to start its trainer")
        wait_until(lambda: Run.objects.get(pk=run.pk).last_heartbeat_at, 30, "a heartbeat")

        # The reaper, as beat runs it, with no patience: the run's node counts as silent at once.
        wait_until(lambda: run_reap_lost(timeout_s=0) == [run.pk], 30, "the reaper to mark the run lost")

        assert launch.wait(60), "the launcher went on with a lost run"
        assert launch.result == "lost", launch.error
        assert group_alive(stand_in.starts()[0]) == []
        run.refresh_from_db()
        assert run.status == RunStatus.LOST
        moves = LogLine.objects.filter(run=run, message__startswith="status →").order_by("pk")
        assert [m.message.split(":")[0] for m in moves] == ["status → starting", "status → lost"]
    finally:
        kill_groups(stand_in.starts())
