"""The sandbox node's Celery task: a batch in, its results out (the JSON of `python -m workers.sandbox`).

The apps' tasks live with their apps (runs/tasks.py, datasets_app/tasks.py, ...); this module imports
none of them. A sandbox worker holds no database credentials: what it reports goes to the control
queue as a message (docs/sandbox.md, "The sandbox fleet")."""

import logging
import threading
from typing import Any

from celery import shared_task

logger = logging.getLogger(__name__)

INFRA_ERROR = "sandbox_error"
STOP_AFTER = 2  # whole batches of sandbox_error in a row after which a worker stops taking batches
STOPPED_TASK = "nodes.sandbox_stopped"  # the control queue's record of it (runs/tasks.py)


class _Failures:
    """Whole-`sandbox_error` batches in a row, in this worker process (a prefork child counts its own)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_a_row = 0
        self.stopped = False

    def note(self, failed: bool) -> bool:
        """Count one batch; True once, when this one makes STOP_AFTER in a row."""
        with self.lock:
            self.in_a_row = self.in_a_row + 1 if failed else 0
            if self.in_a_row >= STOP_AFTER and not self.stopped:
                self.stopped = True
                return True
            return False


FAILURES = _Failures()


@shared_task(name="sandbox.run_batch", bind=True, acks_late=True, ignore_result=False)
def sandbox_run_batch_task(self: Any, batch: dict[str, Any]) -> dict[str, Any]:
    """Runs a batch in the sandbox: same JSON in and out as `python -m workers.sandbox` (and `"cache":
    false` to run every item, duplicates included). Idempotent.

    A node whose isolation does not work answers every item `sandbox_error` with the reason (the fleet
    client sends them once more, to another worker). A worker whose batches come back all
    `sandbox_error` twice in a row stops consuming its queue and reports itself (`stop_consuming`)."""
    from workers.sandbox import Item, Limits, SandboxUnavailable, run_batch
    from workers.sandbox.verdict import infra

    limits = Limits(**batch.get("limits", {}))
    items = [Item(**item) for item in batch["items"]]
    try:
        results = run_batch(items, limits, cache=bool(batch.get("cache", True)))
    except SandboxUnavailable as exc:
        results = [infra(item, 0.0, f"sandbox unavailable on this node: {exc}") for item in items]
    failed = bool(results) and all(r.error_class == INFRA_ERROR for r in results)
    if FAILURES.note(failed):
        stop_consuming(self, reason=results[-1].stderr[-500:])
    return {"results": [result.to_dict() for result in results]}


def stop_consuming(task: Any, *, reason: str) -> None:
    """This worker leaves the queue it took the batch from (Celery's cancel_consumer, addressed to its own
    node name; the solo pool handles it once this task returns) and says so on the control queue, where
    it is recorded in the audit log and the control worker's log (runs/nodes.py, sandbox_worker_stopped).
    Nothing is lost: a batch it still holds is answered, later ones go to the other workers."""
    hostname = str(task.request.hostname or "")
    queue = str((task.request.delivery_info or {}).get("routing_key") or "sandbox")
    logger.error(
        "sandbox worker %s: %d batches in a row were all sandbox_error; it stops consuming %s: %s",
        hostname,
        STOP_AFTER,
        queue,
        reason,
    )
    task.app.control.cancel_consumer(queue, destination=[hostname], reply=False)
    task.app.send_task(
        STOPPED_TASK, kwargs={"name": hostname, "queue": queue, "batches": STOP_AFTER, "reason": reason}
    )
