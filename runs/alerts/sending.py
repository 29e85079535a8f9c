"""Enqueue an alerts task by its name (from the app's registry, so nothing here imports
runs/alerts/tasks.py, which imports the rest of the package), after commit, without failing the caller:
a broker that is down costs the alert (logged), never the ingest batch or the status change."""

import logging
from typing import Any

logger = logging.getLogger(__name__)


def send_safely(name: str, *args: Any, countdown: float = 0) -> None:
    from controlplane.celery import BROKER_ERRORS, app

    try:
        app.tasks[name].apply_async(args=args, countdown=countdown or None)
    except BROKER_ERRORS as exc:
        logger.warning("alerts: %s not sent for %s: %s", name, args, exc)
