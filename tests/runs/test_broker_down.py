"""Launching or resuming while the Celery broker is down (docs/runs.md, "Broker down")."""

import datetime as dt
import socket
import threading

import pytest
import redis
from django.db import connection
from django.utils import timezone

from controlplane.celery import app
from runs.launch import RunNotQueuedError, run_launch, run_resume
from runs.lifecycle import run_reap_unenqueued
from runs.models import LogLine, Run, RunStatus
from tests.factories import ProblemFactory, RunFactory
from tests.runs.launch_form import LAUNCH_FORM
from workers.spec import RunConfig

FORM = LAUNCH_FORM


@pytest.mark.django_db(transaction=True)
def test_a_launch_records_when_the_broker_took_its_start_task(user, broker):
    version = ProblemFactory().version

    result = run_launch(user=user, dataset_version=version, name="up", config=RunConfig())

    run = Run.objects.get(pk=result.run.pk)
    assert run.status == RunStatus.QUEUED
    assert run.enqueued_at is not None
    assert redis.Redis.from_url(broker.url(1)).llen("gpu.cpu") == 1


@pytest.mark.django_db(transaction=True)
def test_launching_while_the_broker_is_down_fails_the_run_and_says_why(logged_in, broker):
    version = ProblemFactory().version
    broker.stop()

    response = logged_in.post("/runs/new/", {**FORM, "dataset_version": version.pk, "name": "down"})

    assert response.status_code == 503
    page = response.content.decode()
    run = Run.objects.get()
    assert f"Run #{run.pk} was not started: the task broker at 127.0.0.1:{broker.port}" in page
    assert "launch again when it is back" in page
    assert run.status == RunStatus.FAILED
    assert run.status_message.startswith(f"not started: the task broker at 127.0.0.1:{broker.port}")
    assert "is unreachable: " in run.status_message
    assert run.enqueued_at is None
    assert run.finished_at is not None
    assert LogLine.objects.filter(run=run, level="error", message__contains="unreachable").exists()


@pytest.mark.django_db(transaction=True)
def test_resuming_while_the_broker_is_down_fails_the_run_again_and_says_why(logged_in, user, broker):
    run = RunFactory(created_by=user, status=RunStatus.LOST)
    broker.stop()

    response = logged_in.post(f"/runs/{run.pk}/resume/", follow=True)

    assert response.status_code == 200
    assert "resume it again when it is back" in response.content.decode()
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED  # failed is resumable: the Resume button is there again
    assert "is unreachable" in run.status_message
    assert b'data-testid="resume"' in response.content


# The Redis socket timeouts under test are set when the settings name a Redis broker at start.
@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_hung_broker_fails_the_launch_instead_of_hanging_it(user, monkeypatch):
    # A "broker" that accepts connections and never answers, as a wedged server or a dead peer does.
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{hung.getsockname()[1]}/1")
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    version = ProblemFactory().version
    outcome: list[BaseException] = []

    def launch() -> None:
        try:
            run_launch(user=user, dataset_version=version, name="hung", config=RunConfig())
        except RunNotQueuedError as exc:
            outcome.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=launch, daemon=True)
    thread.start()
    thread.join(timeout=120)  # only a bound on a hang: the publish gives up after TRIAD_BROKER_TIMEOUT_S

    hung.close()
    assert not thread.is_alive(), "the launch hung on a broker that never answers"
    assert outcome and "Timeout" in str(outcome[0])
    assert Run.objects.get().status == RunStatus.FAILED


def _queued(*, age_s: float, enqueued: bool, status: str = RunStatus.QUEUED) -> Run:
    run = RunFactory(status=status)
    created = timezone.now() - dt.timedelta(seconds=age_s)
    Run.objects.filter(pk=run.pk).update(created_at=created, enqueued_at=created if enqueued else None)
    return run


@pytest.mark.django_db
def test_the_reaper_fails_only_queued_runs_that_never_reached_the_broker(settings):
    settings.TRIAD_ENQUEUE_GRACE_S = 120
    never = _queued(age_s=600, enqueued=False)
    waiting = _queued(age_s=6 * 3600, enqueued=True)  # e.g. a multi-node run waiting for nodes
    fresh = _queued(age_s=5, enqueued=False)  # its enqueue may be under way
    resumed = _queued(age_s=600, enqueued=False)
    LogLine.objects.create(
        run=resumed, source="control", message="status → queued: resumed", time=timezone.now()
    )
    running = _queued(age_s=600, enqueued=False, status=RunStatus.RUNNING)

    reaped = run_reap_unenqueued()

    assert reaped == [never.pk]
    statuses = dict(Run.objects.values_list("pk", "status"))
    assert statuses[never.pk] == RunStatus.FAILED
    assert [statuses[r.pk] for r in (waiting, fresh, resumed)] == [RunStatus.QUEUED] * 3
    assert statuses[running.pk] == RunStatus.RUNNING
    never.refresh_from_db()
    assert never.status_message.startswith("not started: never reached the task broker within 120s")
    assert run_reap_unenqueued() == []  # a second pass is a no-op


@pytest.mark.django_db
def test_a_resume_that_never_reached_the_broker_is_reaped_like_a_launch(settings):
    settings.TRIAD_ENQUEUE_GRACE_S = 120
    run = _queued(age_s=3600, enqueued=True, status=RunStatus.LOST)

    # the resume commits, and the process stops before it hands the start task over (no on_commit here)
    assert run_resume(run_id=run.pk) is not None
    run.refresh_from_db()
    assert (run.status, run.attempt, run.enqueued_at) == (RunStatus.QUEUED, 2, None)
    assert run_reap_unenqueued() == []  # the resume is recent: its enqueue may be under way
    LogLine.objects.filter(run=run).update(time=timezone.now() - dt.timedelta(seconds=600))

    assert run_reap_unenqueued() == [run.pk]
