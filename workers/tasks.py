"""Celery tasks: thin wrappers that own queues, limits and retries, and call the launcher or a service.

Tasks take ids (and, for a run, its token: GPU nodes have no database to read it from), never objects.
"""

import logging
from pathlib import Path
from typing import Any

from celery import shared_task
from django.conf import settings

logger = logging.getLogger(__name__)


@shared_task(name="runs.execute", bind=True, acks_late=False, ignore_result=True)
def run_execute_task(self: Any, run_id: int, token: str) -> str:
    """Runs on a `gpu.<pool>` worker: fetch the spec, claim the run's attempt, start `deepspeed`, supervise
    until the run ends.

    acks_late=False: the message is acknowledged when the task starts, because a run is hours long and
    a broker redelivers a message left unacknowledged that long (Redis's visibility timeout, RabbitMQ's
    consumer timeout). A redelivery may still happen (a worker lost before its ack reached the broker);
    the claim makes it harmless: its launcher is refused and returns "refused" without starting anything
    (docs/runs.md, "Attempts")."""
    from workers.launcher import run_supervised

    hostname = self.request.hostname

    def node_assign() -> None:  # only the launcher that holds the attempt says which node took the run
        if hostname:
            run_node_assign_task.delay(run_id, hostname)

    workdir = Path(settings.TRIAD_RUNS_DIR) / str(run_id)
    workdir.mkdir(parents=True, exist_ok=True)
    return run_supervised(
        run_id=run_id,
        token=token,
        control_url=settings.TRIAD_CONTROL_URL,
        workdir=workdir,
        heartbeat_s=settings.TRIAD_HEARTBEAT_S,
        on_claimed=node_assign,
    )


@shared_task(name="runs.reap_lost", ignore_result=True, acks_late=True)
def run_reap_lost_task() -> list[int]:
    """Beat, on the control queue: runs whose nodes stopped heartbeating become `lost`. Idempotent."""
    from runs.lifecycle import run_reap_lost

    return run_reap_lost()


@shared_task(name="runs.reap_unenqueued", ignore_result=True, acks_late=True, expires=60)
def run_reap_unenqueued_task() -> list[int]:
    """Beat, on the control queue: queued runs that never reached the broker become `failed`. Idempotent."""
    from runs.launch import run_reap_unenqueued

    return run_reap_unenqueued()


@shared_task(name="nodes.register", ignore_result=True, acks_late=True)
def node_register_task(info: dict[str, Any]) -> None:
    """Control queue: a GPU worker that started describes itself. Idempotent (an upsert)."""
    from runs.nodes import NodeInfo, node_register

    node_register(info=NodeInfo.from_dict(info))


@shared_task(name="nodes.heartbeat", ignore_result=True, expires=60)
def node_heartbeat_task(name: str, at: float) -> None:
    import datetime as dt

    from runs.nodes import node_heartbeat

    node_heartbeat(name=name, at=dt.datetime.fromtimestamp(at, tz=dt.UTC))


@shared_task(name="nodes.assign_run", ignore_result=True, acks_late=True)
def run_node_assign_task(run_id: int, node_name: str) -> None:
    from runs.nodes import run_node_assign

    run_node_assign(run_id=run_id, node_name=node_name)


@shared_task(name="sandbox.run_batch", acks_late=True, ignore_result=False)
def sandbox_run_batch_task(batch: dict[str, Any]) -> dict[str, Any]:
    """Runs a batch in the sandbox: same JSON in and out as `python -m workers.sandbox`. Idempotent."""
    from workers.sandbox import Item, Limits, run_batch

    limits = Limits(**batch.get("limits", {}))
    items = [Item(**item) for item in batch["items"]]
    return {"results": [result.to_dict() for result in run_batch(items, limits)]}


@shared_task(
    name="review.compare_matrix", acks_late=True, ignore_result=True, soft_time_limit=540, time_limit=600
)
def review_compare_matrix_task(matrix_id: int) -> bool:
    """Sandbox queue: the compare page's test-by-test matrix, run here and stored in its row (the page
    polls the row). Untrusted code never runs in a web process. Idempotent: a done matrix is kept."""
    from runs.review.services import compare_matrix_compute

    return compare_matrix_compute(matrix_id=matrix_id)


# --- datasets ---


@shared_task(name="datasets.verify_chunk", bind=True, acks_late=True, ignore_result=True, max_retries=3)
def problem_verify_chunk_task(self: Any, version_id: int, problem_ids: list[int]) -> int:
    """Runs on a sandbox worker: verify these problems by execution. Idempotent (pending ones only)."""
    from datasets_app.services import problem_verify_chunk, problem_verify_give_up
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
    from datasets_app.services import dataset_version_analyse

    return dataset_version_analyse(version_id=version_id)


@shared_task(name="datasets.reap_unenqueued", ignore_result=True, acks_late=True, expires=60)
def dataset_version_reap_unenqueued_task() -> list[int]:
    """Beat, on the control queue: versions whose verification never reached the broker say so. Idempotent."""
    from datasets_app.services import dataset_version_reap_unenqueued

    return dataset_version_reap_unenqueued()


# --- spend ---


@shared_task(name="spend.accrue", ignore_result=True, acks_late=True, expires=30)
def run_cost_accrue_task() -> int:
    """Beat, on the control queue: bill started runs up to now and enforce budgets. Idempotent."""
    from runs.spend.services import run_cost_accrue

    return len(run_cost_accrue().accrued)
