"""What ingest calls after it stored generations of a run: a throttled on-commit enqueue of the run's
diversity task (runs/diversity.py), so ingest stays fast and a run posting many batches a second costs
one task per TRIAD_DIVERSITY_RUN_DELAY_S."""

from django.conf import settings
from django.db import transaction

from runs import tasks
from runs.alerts import hooks as alert_hooks
from runs.alerts.tasks import send_safely

_WINDOW = "triad:diversity:run"


def _measure_soon(run_id: int) -> None:
    window = float(settings.TRIAD_DIVERSITY_RUN_DELAY_S)
    if alert_hooks._first_in_window(run_id, window, prefix=_WINDOW):
        send_safely(tasks.run_diversity_task, run_id, countdown=window)


def generations_stored(run_id: int) -> None:
    """Ingest stored generations of the run: measure them soon, off the ingest path, at most once per
    TRIAD_DIVERSITY_RUN_DELAY_S per run (the window opens on the first batch; the task reads every
    batch committed before it runs)."""
    transaction.on_commit(lambda: _measure_soon(run_id))
