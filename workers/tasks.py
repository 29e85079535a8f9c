"""The sandbox node's Celery task: a batch in, its results out (the JSON of `python -m workers.sandbox`).

The apps' tasks live with their apps (runs/tasks.py, datasets_app/tasks.py, ...); this module imports
none of them."""

from typing import Any

from celery import shared_task


@shared_task(name="sandbox.run_batch", acks_late=True, ignore_result=False)
def sandbox_run_batch_task(batch: dict[str, Any]) -> dict[str, Any]:
    """Runs a batch in the sandbox: same JSON in and out as `python -m workers.sandbox`. Idempotent."""
    from workers.sandbox import Item, Limits, run_batch

    limits = Limits(**batch.get("limits", {}))
    items = [Item(**item) for item in batch["items"]]
    return {"results": [result.to_dict() for result in run_batch(items, limits)]}
