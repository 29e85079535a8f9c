"""Celery tasks of sweeps: thin wrappers (runs/tasks.py's conventions)."""

from celery import shared_task


@shared_task(name="sweeps.halve", ignore_result=True, acks_late=True)
def sweep_halve_task() -> list[int]:
    """Beat, on the control queue: judge the next rung of every active sweep with successive halving,
    off the ingest path. Idempotent (a rung is judged once)."""
    from runs.sweeps.services import sweep_halve_all

    return sweep_halve_all()
