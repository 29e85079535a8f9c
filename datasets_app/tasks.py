"""Celery tasks of datasets. Thin: they call services, imported lazily.

The tasks on the sandbox queue (`datasets.verify_run`, `datasets.generation_sandbox`) need no database:
their payload carries everything they run, and they send what came out to a task on the control queue
that stores it (docs/sandbox.md, "What a sandbox node needs"). Everything else runs on the control queue."""

import logging
from typing import Any

from celery import shared_task

logger = logging.getLogger(__name__)


# --- verification: control (payload) -> sandbox (verdicts, no database) -> control (record) -----------


@shared_task(name="datasets.verify_chunk", acks_late=True, ignore_result=True)
def problem_verify_chunk_task(version_id: int, problem_ids: list[int]) -> int:
    """Control queue: the chunk's pending problems made a self-contained payload and handed to the
    sandbox queue. Idempotent (pending ones only; none pending: nothing sent)."""
    from datasets_app import conf
    from datasets_app.checking import problem_verify_payload

    payload = problem_verify_payload(version_id=version_id, problem_ids=problem_ids)
    if payload is None:
        return 0
    problem_verify_run_task.apply_async(args=(payload,), queue=conf.sandbox_queue())
    return len(payload["specs"]) + len(payload["repo"])


@shared_task(name="datasets.verify_run", bind=True, acks_late=True, ignore_result=True, max_retries=3)
def problem_verify_run_task(self: Any, payload: dict[str, Any]) -> int:
    """Sandbox queue, no database: run the payload, send the verdicts to the control queue. Problems the
    sandbox failed on (sandbox_error, or a node that cannot isolate code) are retried, only they, and
    after the last retry sent back as given up, with the reason."""
    from datasets_app.verification import chunk_ids, chunk_narrowed, verdict_to_json, verify_chunk_payload
    from workers.sandbox import SandboxUnavailable

    ids = chunk_ids(payload)
    reason = "the sandbox failed on every attempt (sandbox_error)"
    try:
        verdicts = verify_chunk_payload(payload)
    except SandboxUnavailable as exc:  # this node cannot isolate code: another node may, so retry
        verdicts = [None] * len(ids)
        reason = f"the sandbox on {self.request.hostname or 'this worker'} refused to run code: {exc}"
    undecided = [pk for pk, verdict in zip(ids, verdicts, strict=True) if verdict is None]
    last = self.request.retries >= self.max_retries
    decided = [verdict_to_json(v) for v in verdicts if v is not None]
    if decided or (undecided and last):
        problem_verdicts_record_task.apply_async(
            args=(payload["version_id"], decided, undecided if last else [], reason), queue=_control()
        )
    if undecided and not last:
        queue = (self.request.delivery_info or {}).get("routing_key")
        raise self.retry(args=(chunk_narrowed(payload, undecided),), countdown=5, queue=queue)
    return len(decided)


@shared_task(name="datasets.verify_record", acks_late=True, ignore_result=True)
def problem_verdicts_record_task(
    version_id: int, verdicts: list[dict[str, Any]], gave_up: list[int], reason: str
) -> int:
    """Control queue: a sandbox worker's verdicts stored. Idempotent (pending problems only)."""
    from datasets_app.checking import problem_verdicts_record

    return problem_verdicts_record(version_id=version_id, verdicts=verdicts, gave_up=gave_up, reason=reason)


@shared_task(name="datasets.analyse_version", acks_late=True, ignore_result=True)
def dataset_version_analyse_task(version_id: int) -> int:
    """Control queue (it reads the whole version; it runs no code): flag near-duplicates and HumanEval
    overlap in a version. Idempotent."""
    from datasets_app.checking import dataset_version_analyse

    return dataset_version_analyse(version_id=version_id)


def _control() -> str:
    from django.conf import settings

    return str(settings.TRIAD_CONTROL_QUEUE)


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
    """Sandbox queue, no database: a job's gate items run and their results sent to the control queue,
    which stores them and enqueues the job's next step (never waited for here: one worker may serve
    both)."""
    from datasets_app.genjobs import generation_sandbox_refused, generation_sandbox_results
    from workers.sandbox import SandboxUnavailable

    try:
        results = generation_sandbox_results(batch=batch)
    except SandboxUnavailable as exc:  # this node cannot isolate code: another may
        if self.request.retries < self.max_retries:
            queue = (self.request.delivery_info or {}).get("routing_key")
            raise self.retry(countdown=5, queue=queue) from None
        reason = f"the sandbox on {self.request.hostname or 'this worker'} refused to run code: {exc}"
        results = generation_sandbox_refused(batch=batch, reason=reason)
    except Exception as exc:  # an item this node's sandbox cannot take: its candidates end sandbox_error
        logger.exception("generation job %s: sandbox batch failed", job_id)
        reason = f"the sandbox task failed: {type(exc).__name__}: {exc}"
        results = generation_sandbox_refused(batch=batch, reason=reason)
    generation_record_task.apply_async(args=(job_id, results), queue=_control())
    return len(results)


@shared_task(name="datasets.generation_record", ignore_result=True, acks_late=True)
def generation_record_task(job_id: int, results: list[dict[str, Any]]) -> int:
    """Control queue: a sandbox batch's results stored on the job's candidates, then its next step
    enqueued. Idempotent (candidates without results only)."""
    from datasets_app.genjobs import enqueue_step, generation_candidates_record

    stored = generation_candidates_record(job_id=job_id, results=results)
    enqueue_step(job_id)
    return stored


@shared_task(name="datasets.generation_resume", ignore_result=True, acks_late=True, expires=60)
def generation_jobs_resume_task() -> list[int]:
    """Beat, on the control queue: generation jobs no step holds (a worker restarted) resume. Idempotent."""
    from datasets_app.genjobs import generation_jobs_resume

    return generation_jobs_resume()
