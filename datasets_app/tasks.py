"""Celery tasks of datasets: verification chunks and analysis on the sandbox queue, and the reaper of
verifications that never reached the broker. Thin: they call services, imported lazily."""

import logging
from typing import Any

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="datasets.verify_chunk", bind=True, acks_late=True, ignore_result=True, max_retries=3)
def problem_verify_chunk_task(self: Any, version_id: int, problem_ids: list[int]) -> int:
    """Runs on a sandbox worker: verify these problems by execution. Idempotent (pending ones only)."""
    from datasets_app.checking import problem_verify_chunk, problem_verify_give_up
    from workers.sandbox import SandboxUnavailable

    reason = "the sandbox failed on every attempt (sandbox_error)"
    try:
        undecided = problem_verify_chunk(version_id=version_id, problem_ids=problem_ids)
    except SandboxUnavailable as exc:  # this node cannot isolate code: another node may, so retry
        undecided = len(problem_ids)
        reason = f"the sandbox on {self.request.hostname or 'this worker'} refused to run code: {exc}"
    if undecided:
        if self.request.retries >= self.max_retries:
            return problem_verify_give_up(version_id=version_id, problem_ids=problem_ids, reason=reason)
        queue = (self.request.delivery_info or {}).get("routing_key")
        raise self.retry(countdown=5, queue=queue)
    return len(problem_ids)


@shared_task(name="datasets.analyse_version", acks_late=True, ignore_result=True)
def dataset_version_analyse_task(version_id: int) -> int:
    """Flag near-duplicates and HumanEval overlap in a version. Idempotent."""
    from datasets_app.checking import dataset_version_analyse

    return dataset_version_analyse(version_id=version_id)


@shared_task(name="datasets.reap_unenqueued", ignore_result=True, acks_late=True, expires=60)
def dataset_version_reap_unenqueued_task() -> list[int]:
    """Beat, on the control queue: versions whose verification never reached the broker say so. Idempotent."""
    from datasets_app.checking import dataset_version_reap_unenqueued

    return dataset_version_reap_unenqueued()


# --- generation jobs (datasets_app/genjobs.py) ------------------------------------------------------------


@shared_task(name="datasets.generation_step", ignore_result=True, acks_late=True)
def generation_job_step_task(job_id: int) -> str:
    """On the control queue (it needs the network and the job's API key): one step of a generation job,
    then the next step or its sandbox batch enqueued. Idempotent: a step holds the job's lease."""
    from datasets_app.genjobs import enqueue_sandbox, enqueue_step, generation_job_step

    step = generation_job_step(job_id=job_id)
    if step.action == "sandbox" and step.batch is not None:
        enqueue_sandbox(job_id, step.batch)
    elif step.action == "again":
        enqueue_step(job_id)
    return step.action


@shared_task(name="datasets.generation_sandbox", bind=True, ignore_result=True, acks_late=True, max_retries=3)
def generation_sandbox_task(self: Any, job_id: int, batch: dict[str, Any]) -> int:
    """On the sandbox queue: a job's gate items run, their results stored on the candidates, and the
    job's next step enqueued on the control queue (never waited for here: one worker may serve both)."""
    from datasets_app.genjobs import enqueue_step, generation_sandbox_give_up, generation_sandbox_run
    from workers.sandbox import SandboxUnavailable

    try:
        stored = generation_sandbox_run(job_id=job_id, batch=batch)
    except SandboxUnavailable as exc:  # this node cannot isolate code: another may
        if self.request.retries < self.max_retries:
            queue = (self.request.delivery_info or {}).get("routing_key")
            raise self.retry(countdown=5, queue=queue) from None
        reason = f"the sandbox on {self.request.hostname or 'this worker'} refused to run code: {exc}"
        stored = generation_sandbox_give_up(job_id=job_id, batch=batch, reason=reason)
    except Exception as exc:  # an item this node's sandbox cannot take: its candidates end sandbox_error
        logger.exception("generation job %s: sandbox batch failed", job_id)
        reason = f"the sandbox task failed: {type(exc).__name__}: {exc}"
        stored = generation_sandbox_give_up(job_id=job_id, batch=batch, reason=reason)
    enqueue_step(job_id)
    return stored


@shared_task(name="datasets.generation_resume", ignore_result=True, acks_late=True, expires=60)
def generation_jobs_resume_task() -> list[int]:
    """Beat, on the control queue: generation jobs no step holds (a worker restarted) resume. Idempotent."""
    from datasets_app.genjobs import generation_jobs_resume

    return generation_jobs_resume()
