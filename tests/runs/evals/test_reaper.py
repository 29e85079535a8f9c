"""Jobs a dead worker left running are failed, saying so; any finished job is evaluated again as a new
job with the same inputs (docs/evals.md)."""

import datetime as dt

import pytest
from django.utils import timezone

from controlplane.celery import CONTROL, app
from runs.evals.answers import eval_job_reap_lost, eval_job_record
from runs.evals.models import EvalJob, EvalJobStatus
from runs.evals.services import EvalJobError, eval_job_again
from runs.evals.tasks import eval_job_reap_lost_task
from tests.factories import ProblemFactory, RegisteredModelFactory
from tests.runs.evals.factories import eval_job, node_result

pytestmark = pytest.mark.django_db


def _running(user, *, node="gpu-0@a", heard_s_ago: float | None, started_s_ago: float = 600):
    now = timezone.now()
    job = eval_job(user, status=EvalJobStatus.RUNNING, node=node)
    heard = None if heard_s_ago is None else now - dt.timedelta(seconds=heard_s_ago)
    EvalJob.objects.filter(pk=job.pk).update(
        started_at=now - dt.timedelta(seconds=started_s_ago), last_heartbeat_at=heard
    )
    return job


def test_a_running_job_whose_node_went_silent_fails_naming_the_node_and_the_rest_are_left(user, settings):
    settings.TRIAD_EVAL_LOST_AFTER_S = 120
    silent = _running(user, heard_s_ago=200)
    never_heard = _running(user, node="gpu-1@b", heard_s_ago=None)  # from before heartbeats: its start
    alive = _running(user, node="gpu-2@c", heard_s_ago=30)
    young = _running(user, node="gpu-3@d", heard_s_ago=None, started_s_ago=10)
    waiting = eval_job(user)  # queued: no node took it yet, which is no worker's death
    EvalJob.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - dt.timedelta(hours=5))

    reaped = eval_job_reap_lost()

    assert sorted(reaped) == sorted([silent.pk, never_heard.pk])
    silent.refresh_from_db()
    assert silent.status == EvalJobStatus.FAILED and silent.finished_at is not None
    assert silent.error == (
        "no word from node gpu-0@a for 120 s: its worker stopped while evaluating (it died or was "
        "killed); evaluate it again"
    )
    statuses = EvalJob.objects.in_bulk([alive.pk, young.pk, waiting.pk])
    assert [statuses[j.pk].status for j in (alive, young, waiting)] == ["running", "running", "queued"]
    assert eval_job_reap_lost() == []  # a repeat changes nothing


def test_the_node_saying_it_is_still_running_keeps_the_job_and_another_node_does_not(user, settings):
    settings.TRIAD_EVAL_LOST_AFTER_S = 120
    job = _running(user, node="gpu-0@a", heard_s_ago=200)

    eval_job_record(job_id=job.pk, answer={"state": "running", "node": "gpu-9@z"})  # not its node
    eval_job_record(job_id=job.pk, answer={"state": "running", "node": "gpu-0@a"})

    assert eval_job_reap_lost() == []
    job.refresh_from_db()
    assert job.status == EvalJobStatus.RUNNING and job.node == "gpu-0@a"
    assert timezone.now() - job.last_heartbeat_at < dt.timedelta(seconds=5)


def test_beat_reaps_lost_jobs_on_the_control_queue(user, settings):
    settings.TRIAD_EVAL_LOST_AFTER_S = 60
    job = _running(user, heard_s_ago=90)

    [entry] = [e for e in app.conf.beat_schedule.values() if e["task"] == "evals.reap_lost"]
    assert app.conf.task_routes["evals.reap_lost"] == {"queue": CONTROL}
    assert entry["schedule"] <= 60
    assert eval_job_reap_lost_task() == [job.pk]


@pytest.mark.parametrize("status", [EvalJobStatus.SUCCEEDED, EvalJobStatus.FAILED])
def test_a_finished_job_is_evaluated_again_as_a_new_job_with_the_same_inputs(
    user, status, django_capture_on_commit_callbacks
):
    model = RegisteredModelFactory(registered_by=user, pool="a100")
    first = eval_job(user, status=status, model=model, result=node_result([("T/0", 4, 1, False)]))
    ProblemFactory(version=first.dataset_version)
    EvalJob.objects.filter(pk=first.pk).update(eval_temperature=0.6, max_new_tokens=64)
    first.refresh_from_db()

    with django_capture_on_commit_callbacks():  # the send itself: tests/runs/evals/test_tasks.py
        again = eval_job_again(user=user, job=first)

    assert again.pk != first.pk and again.status == EvalJobStatus.QUEUED
    inputs = ("model", "run", "dataset_version", "builtin_set", "builtin_problems", "eval_protocol")
    inputs += ("eval_samples", "eval_k", "eval_temperature", "max_new_tokens")
    assert [getattr(again, f) for f in inputs] == [getattr(first, f) for f in inputs]
    assert again.pool == "a100"  # the model's pool, as for any new job
    assert EvalJob.objects.get(pk=first.pk).status == status  # the first stays, to compare with


def test_a_job_still_waiting_is_not_evaluated_again(user):
    job = eval_job(user, status=EvalJobStatus.RUNNING)

    with pytest.raises(EvalJobError, match="is running: evaluate it again once it has finished"):
        eval_job_again(user=user, job=job)
    assert EvalJob.objects.count() == 1
