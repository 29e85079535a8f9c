"""Celery tasks of evaluation jobs: the node evaluates (`evals.execute` on gpu.<pool>), the control
queue records its answers (`evals.record`) — a GPU node holds no database credentials — and the
sending of the job (docs/evals.md)."""

from typing import Any

from celery import shared_task

# A 7B model's codex protocol on all of HumanEval is about an hour on one GPU; a job stuck past this
# gives the GPU queue back (the subprocess is stopped a minute before, so the answer still goes out).
EVAL_TIME_LIMIT_S = 4 * 3600


@shared_task(
    name="evals.execute",
    bind=True,
    ignore_result=True,
    # Acked on start, as runs.execute: a job longer than the broker's visibility timeout would otherwise
    # be delivered again and evaluated twice. A worker that dies mid-job stops saying it is running, and
    # the lost-job reaper (evals.reap_lost) fails the job after TRIAD_EVAL_LOST_AFTER_S; run it again.
    acks_late=False,
    soft_time_limit=EVAL_TIME_LIMIT_S + 30,
    time_limit=EVAL_TIME_LIMIT_S + 90,
)
def eval_job_execute_task(self: Any, job_id: int, message: dict[str, Any]) -> None:
    """On a `gpu.<pool>` worker: say it started, evaluate in a subprocess (saying it is still at it every
    TRIAD_NODE_HEARTBEAT_S), send the answer."""
    from pathlib import Path

    from django.conf import settings

    from runs.evals.node import evaluate_on_node

    node = self.request.hostname or ""
    eval_job_record_task.delay(job_id, {"state": "running", "node": node})
    answer = evaluate_on_node(
        message,
        node=node,
        runs_dir=Path(settings.TRIAD_RUNS_DIR),
        checkpoint_dir=Path(settings.TRIAD_CHECKPOINT_DIR),
        timeout_s=EVAL_TIME_LIMIT_S,
        # "still running", as often as the node heartbeats: what keeps the job from the lost-job reaper
        beat=lambda: eval_job_record_task.delay(job_id, {"state": "running", "node": node}),
        beat_s=settings.TRIAD_NODE_HEARTBEAT_S,
    )
    eval_job_record_task.delay(job_id, answer)


@shared_task(name="evals.record", ignore_result=True, acks_late=True)
def eval_job_record_task(job_id: int, answer: dict[str, Any]) -> None:
    """Control queue: write a node's answer. Idempotent (eval_job_record's conditional updates)."""
    from runs.evals.answers import eval_job_record

    eval_job_record(job_id=job_id, answer=answer)


def eval_job_send(*, job_id: int) -> None:
    """Hand `evals.execute` to the job's pool. A broker that is down fails the job at once, saying so,
    instead of leaving it queued for ever."""
    from controlplane.celery import BROKER_ERRORS, broker_unreachable
    from runs.evals.answers import eval_job_fail
    from runs.evals.models import EvalJob, EvalJobStatus
    from runs.evals.spec import eval_message

    job = (
        EvalJob.objects.filter(pk=job_id, status=EvalJobStatus.QUEUED)
        .select_related("model", "run__model", "dataset_version")
        .first()
    )
    if job is None:
        return
    try:
        message = eval_message(job=job)
    except Exception as exc:  # a run's settings since changed meaning, say: not queued for ever
        eval_job_fail(job_id=job.pk, error=f"not sent: the job's spec could not be built: {exc}")
        return
    try:
        eval_job_execute_task.apply_async(args=[job.pk, message], queue=f"gpu.{job.pool}")
    except BROKER_ERRORS as exc:
        eval_job_fail(job_id=job.pk, error=f"not sent: {broker_unreachable(exc)}; evaluate it again")


@shared_task(name="evals.reap_lost", ignore_result=True, acks_late=True, expires=60)
def eval_job_reap_lost_task() -> list[int]:
    """Beat, on the control queue: running jobs whose node went silent become failed. Idempotent."""
    from runs.evals.answers import eval_job_reap_lost

    return eval_job_reap_lost()
