"""Celery tasks of spend: the accrual tick that bills started runs and enforces budgets."""

from celery import shared_task


@shared_task(name="spend.accrue", ignore_result=True, acks_late=True, expires=30)
def run_cost_accrue_task() -> int:
    """Beat, on the control queue: bill started runs up to now and enforce budgets. Idempotent."""
    from runs.spend.services import run_cost_accrue

    return len(run_cost_accrue().accrued)
