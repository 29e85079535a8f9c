"""Celery tasks of alerts, on the control queue: evaluation after an ingest batch and after a status
change, the beat's silence check, and delivery by mail and webhook with retries and backoff. Each
evaluation task hands the firings it made (committed by then) to the delivery tasks."""

import logging
from collections.abc import Sequence
from typing import Any

from celery import shared_task
from django.conf import settings

logger = logging.getLogger(__name__)


def send_safely(task: Any, *args: Any, countdown: float = 0) -> None:
    """Publish without failing the caller: a broker that is down costs the alert (logged), never the
    ingest batch or the status change that raised it."""
    from controlplane.celery import BROKER_ERRORS

    try:
        task.apply_async(args=args, countdown=countdown or None)
    except BROKER_ERRORS as exc:
        logger.warning("alerts: %s not sent for %s: %s", task.name, args, exc)


def firings_deliver(firings: Sequence[Any]) -> None:
    """Mail and webhook for each firing whose rule has them (the app's notification is already made)."""
    for firing in firings:
        if firing.rule.emails:
            send_safely(alert_mail_task, firing.pk)
        if firing.rule.webhook_url:
            send_safely(alert_webhook_task, firing.pk)


@shared_task(name="alerts.evaluate_metrics", ignore_result=True, acks_late=True)
def alert_metrics_evaluate_task(run_id: int) -> None:
    """Idempotent: a rule's row on the run records how far it has seen the points."""
    from runs.alerts.evaluation import alert_metrics_evaluate

    firings_deliver(alert_metrics_evaluate(run_id=run_id))


@shared_task(name="alerts.evaluate_state", ignore_result=True, acks_late=True)
def alert_state_evaluate_task(run_id: int, status: str) -> None:
    """Idempotent: a rule fires on a status once, until a status it does not watch re-arms it."""
    from runs.alerts.evaluation import alert_state_evaluate

    firings_deliver(alert_state_evaluate(run_id=run_id, status=status))


@shared_task(name="alerts.nonfinite", ignore_result=True, acks_late=True)
def alert_nonfinite_task(run_id: int, key: str, step: int | None, value: str) -> None:
    from runs.alerts.evaluation import alert_nonfinite_record

    firings_deliver(alert_nonfinite_record(run_id=run_id, key=key, step=step, value=value))


@shared_task(name="alerts.check_silence", ignore_result=True, acks_late=True)
def alert_silence_check_task() -> None:
    from runs.alerts.evaluation import alert_silence_evaluate

    firings_deliver(alert_silence_evaluate())


def _backoff(retries: int) -> float:
    return float(settings.TRIAD_WEBHOOK_BACKOFF_S * 2**retries)


@shared_task(name="alerts.mail", bind=True, ignore_result=True, max_retries=3)
def alert_mail_task(self: Any, firing_id: int) -> None:
    """Mail the firing to its rule's addresses; a failed send is recorded and tried again later."""
    from runs.alerts.delivery import alert_mail_send

    delivery = alert_mail_send(firing_id=firing_id, attempt=self.request.retries + 1)
    if delivery is not None and not delivery.ok and self.request.retries < self.max_retries:
        raise self.retry(countdown=_backoff(self.request.retries))


@shared_task(name="alerts.webhook", bind=True, ignore_result=True)
def alert_webhook_task(self: Any, firing_id: int) -> None:
    """POST the firing to its rule's webhook, signed; every attempt recorded. A 5xx, a 429 or a network
    error is tried again with exponential backoff (TRIAD_WEBHOOK_BACKOFF_S, doubling), up to
    TRIAD_WEBHOOK_ATTEMPTS attempts in all; a refused target or another 4xx is not."""
    from runs.alerts.delivery import alert_webhook_post

    delivery, retry = alert_webhook_post(firing_id=firing_id, attempt=self.request.retries + 1)
    if delivery is not None and retry and self.request.retries + 1 < settings.TRIAD_WEBHOOK_ATTEMPTS:
        raise self.retry(
            countdown=_backoff(self.request.retries), max_retries=settings.TRIAD_WEBHOOK_ATTEMPTS
        )


@shared_task(name="alerts.dataset_version_flagged", ignore_result=True, acks_late=True)
def alert_dataset_version_flagged_task(version_id: int) -> None:
    """Sent by name from datasets_app/checking.py (which never imports runs) when a version's diversity
    is flagged. Idempotent: each rule fires once per version."""
    from runs.alerts.evaluation import alert_dataset_version_flagged

    firings_deliver(alert_dataset_version_flagged(version_id=version_id))
