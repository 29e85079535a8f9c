"""Celery tasks: thin wrappers that own queues, limits and retries, and call the launcher or a service.

Tasks take ids (and, for a run, its token: GPU nodes have no database to read it from), never objects.
"""

import logging
from pathlib import Path
from typing import Any

from celery import shared_task
from django.conf import settings

logger = logging.getLogger(__name__)


@shared_task(name="runs.execute", acks_late=False, ignore_result=True)
def run_execute_task(run_id: int, token: str) -> str:
    """Runs on a `gpu.<pool>` worker: fetch the spec, start `deepspeed`, supervise until the run ends."""
    from workers.launcher import run_supervised

    workdir = Path(settings.TRIAD_RUNS_DIR) / str(run_id)
    workdir.mkdir(parents=True, exist_ok=True)
    return run_supervised(
        run_id=run_id,
        token=token,
        control_url=settings.TRIAD_CONTROL_URL,
        workdir=workdir,
        heartbeat_s=settings.TRIAD_HEARTBEAT_S,
    )


@shared_task(name="sandbox.run_batch", acks_late=True, ignore_result=False)
def sandbox_run_batch_task(batch: dict[str, Any]) -> dict[str, Any]:
    """Runs a batch in the sandbox: same JSON in and out as `python -m workers.sandbox`. Idempotent."""
    from workers.sandbox import Item, Limits, run_batch

    limits = Limits(**batch.get("limits", {}))
    items = [Item(**item) for item in batch["items"]]
    return {"results": [result.to_dict() for result in run_batch(items, limits)]}
