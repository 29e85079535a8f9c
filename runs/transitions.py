"""The run state machine's edges: which status may follow which, and the one conditional UPDATE
(`transition`) that takes an edge, so a repeated or racing request is a no-op.

Its own module, below both `lifecycle` (people's and reapers' edges) and `gang` (the claim that starts a
run): each of those uses it, and lifecycle's `run_claim` goes through the gang's.
"""

import datetime as dt
from typing import Any

from django.db.models import F, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from runs.alerts import hooks as alert_hooks
from runs.live.broadcast import broadcast_run_update
from runs.models import TERMINAL_STATUSES, LogLine, Run, RunAttempt, RunStatus, status_label

# Which statuses each reported status may replace. A report that does not fit is ignored, so a
# repeated or late delivery can never move a run backwards.
RESUMABLE = (RunStatus.LOST, RunStatus.FAILED, RunStatus.CANCELLED)
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    RunStatus.QUEUED: RESUMABLE,
    # Taken by the launcher's claim of the attempt (`run_claim`), once per attempt.
    RunStatus.STARTING: (RunStatus.QUEUED,),
    # Never from `lost`: a lost attempt is fenced (its events are refused, docs/runs.md); only Resume
    # starts the run again, as a new attempt.
    RunStatus.RUNNING: (RunStatus.QUEUED, RunStatus.STARTING),
    RunStatus.SUCCEEDED: (RunStatus.STARTING, RunStatus.RUNNING),
    RunStatus.FAILED: (RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCELLING),
    # Cancel on a started run asks its launcher to stop; never from `cancelling` itself, so a second
    # click changes nothing (`run_cancel`).
    RunStatus.CANCELLING: (RunStatus.STARTING, RunStatus.RUNNING),
    RunStatus.CANCELLED: (RunStatus.QUEUED, RunStatus.CANCELLING, RunStatus.LOST),
    RunStatus.BUDGET_STOPPED: (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCELLING),
    RunStatus.LOST: (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCELLING),
}


def transition(
    run_id: int, new_status: str, message: str = "", *, when: Q | None = None, **extra: Any
) -> bool:
    """Conditional UPDATE: moves the run only from a status that allows it (and only while `when`
    holds). Returns whether it moved, so a repeated or racing request is a no-op."""
    now = timezone.now()
    fields: dict[str, Any] = {"status": new_status, "stop_cause": "", **extra}
    if message:
        fields["status_message"] = message[:10_000]
    if new_status in (RunStatus.STARTING, RunStatus.RUNNING):
        fields["started_at"] = Coalesce(F("started_at"), Value(now))
        fields["finished_at"] = None
    if new_status in TERMINAL_STATUSES:
        fields["finished_at"] = now
    rows = Run.objects.filter(pk=run_id, status__in=ALLOWED_FROM[new_status])
    if when is not None:
        rows = rows.filter(when)
    moved = rows.update(**fields)
    if moved:
        LogLine.objects.create(
            run_id=run_id,
            source="control",
            message=f"status → {new_status}" + (f": {message}" if message else ""),
            level="error" if new_status == RunStatus.FAILED else "info",
            time=now,
        )
        if new_status in TERMINAL_STATUSES:
            _attempt_end_record(run_id=run_id, status=new_status, message=message, at=now)
        alert_hooks.status_changed(run_id, new_status)  # state rules fire or re-arm in a task, on commit
        label = status_label(new_status, fields["stop_cause"])
        broadcast_run_update(run_id, {"status": new_status, "status_label": label, "status_message": message})
    return bool(moved)


def _attempt_end_record(*, run_id: int, status: str, message: str, at: dt.datetime) -> None:
    """The run's current attempt ended here (the run page's attempts list: why each ended). The first
    terminal status is the attempt's end: a lost run cancelled later still ended its attempt `lost`, and
    a resume (from a terminal status only) finds the end already recorded."""
    attempt = Run.objects.filter(pk=run_id).values("attempt")
    RunAttempt.objects.filter(run_id=run_id, attempt=Subquery(attempt), ended_at__isnull=True).update(
        ended_at=at, end_status=status, end_reason=message[:10_000]
    )
