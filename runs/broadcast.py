"""Push run updates to browsers over the channel layer, after the data is committed.

Postgres is the record and the channel layer is transport: a message lost here is recovered by the
browser's backfill from the database when it reconnects.
"""

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def run_group(run_id: int) -> str:
    return f"run-{run_id}"


RUNS_GROUP = "runs"


def broadcast_run_update(run_id: int, payload: dict[str, Any]) -> None:
    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        message = {"type": "run.update", "run_id": run_id, "payload": payload}
        try:
            async_to_sync(layer.group_send)(run_group(run_id), message)
            if "status" in payload:
                async_to_sync(layer.group_send)(RUNS_GROUP, message)
        except Exception:  # transport failure must never fail the ingest that already committed
            logger.warning("broadcast for run %s failed; browsers will backfill", run_id, exc_info=True)

    transaction.on_commit(send)
