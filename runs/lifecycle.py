"""The run state machine: which status may follow which, and the edges people and reapers take.

Every move is one conditional UPDATE (`transition`), so a repeated or racing request is a no-op.
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from controlplane.accounts.models import AuditAction
from controlplane.accounts.services import audit_record
from runs.live.broadcast import broadcast_run_update
from runs.models import (
    TERMINAL_STATUSES,
    LogLine,
    Run,
    RunAttempt,
    RunStatus,
    StopCause,
    status_label,
)

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


@dataclass(frozen=True)
class ClaimResult:
    claimed: bool  # this claim holds the attempt (now, or already: a retried request)
    desired_state: str


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
        label = status_label(new_status, fields["stop_cause"])
        broadcast_run_update(run_id, {"status": new_status, "status_label": label, "status_message": message})
    return bool(moved)


def audit_run_status(run_id: int, action: AuditAction, user: User | None, before: str, after: str) -> None:
    team_id, name = Run.objects.values_list("team_id", "name").get(pk=run_id)
    audit_record(
        actor=user,
        action=action,
        target_type="run",
        target_id=run_id,
        target=f"run #{run_id} {name}",
        team_id=team_id,
        before={"status": before},
        after={"status": after},
    )


def run_cancel(*, run_id: int, user: User | None = None) -> bool:
    """Queued and lost runs are cancelled at once; started ones go to `cancelling` until the launcher
    confirms. Audited when it moves the run (`user` None: the system did it)."""
    with transaction.atomic():
        # Only a queued or a lost run is cancelled outright (nothing of it runs that could still
        # confirm: a lost attempt is fenced): `cancelling` → `cancelled` is the launcher's
        # confirmation, so a second click must not take that edge.
        for outright, message in (
            (RunStatus.QUEUED, "cancelled before it started"),
            (RunStatus.LOST, "cancelled while lost: its attempt is fenced and nothing of it is resumed"),
        ):
            if transition(run_id, RunStatus.CANCELLED, message, when=Q(status=outright)):
                audit_run_status(run_id, AuditAction.RUN_CANCEL, user, outright, RunStatus.CANCELLED)
                return True
        before = Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
        moved = transition(run_id, RunStatus.CANCELLING, "cancel requested")
        if moved:
            audit_run_status(run_id, AuditAction.RUN_CANCEL, user, str(before), RunStatus.CANCELLING)
        return moved


def run_budget_stop(*, run_id: int, message: str, cause: StopCause = StopCause.BUDGET) -> bool:
    """Stop a started run for its budget, or (cause LEARNING) because its spend no longer buys
    learning: either way the launcher sees `budget_stopped` and checkpoints it."""
    with transaction.atomic():
        return transition(run_id, RunStatus.BUDGET_STOPPED, message, stop_cause=cause)


def run_reap_lost(*, timeout_s: float | None = None) -> list[int]:
    """Mark `lost` every started run whose node has not been heard from within the timeout."""
    timeout = settings.TRIAD_LOST_AFTER_S if timeout_s is None else timeout_s
    cutoff = timezone.now() - dt.timedelta(seconds=timeout)
    silent = Q(last_heartbeat_at__lt=cutoff) | Q(last_heartbeat_at__isnull=True, started_at__lt=cutoff)
    candidates = Run.objects.filter(silent, status__in=ALLOWED_FROM[RunStatus.LOST]).values_list(
        "pk", flat=True
    )
    message = (
        f"no heartbeat for {timeout:.0f}s: the node or its worker is gone; resume from the last checkpoint"
    )
    return [run_id for run_id in list(candidates) if transition(run_id, RunStatus.LOST, message, when=silent)]


def run_claim(
    *, run_id: int, attempt: int, claim: str, provenance: dict[str, Any] | None = None
) -> ClaimResult:
    """A launcher takes the run's current attempt (`queued` → `starting`) before it starts anything.
    Exactly one claim key wins an attempt; the same key again is accepted (a request retried after its
    answer was lost), any other is refused: a redelivered start task must not start a second trainer.

    The winning claim records the attempt's `RunAttempt` with what the launcher said it runs with
    (`provenance`, checked by the API); a retried claim records nothing again."""
    with transaction.atomic():
        unclaimed = Q(attempt=attempt, claimed_by="")
        if transition(
            run_id,
            RunStatus.STARTING,
            f"attempt {attempt} claimed by {claim}",
            when=unclaimed,
            claimed_by=claim,
        ):
            _attempt_record_claim(run_id=run_id, attempt=attempt, claim=claim, provenance=provenance)
            return ClaimResult(claimed=True, desired_state=RunStatus.STARTING)
        status, held_by, current = Run.objects.values_list("status", "claimed_by", "attempt").get(pk=run_id)
    return ClaimResult(claimed=current == attempt and held_by == claim, desired_state=status)


def _attempt_record_claim(
    *, run_id: int, attempt: int, claim: str, provenance: dict[str, Any] | None
) -> None:
    """The attempt's record, made or completed (the spec fetch before the claim may have made it)."""
    hostname = provenance.get("hostname") if provenance else None
    # An old launcher sends no provenance: its claim key ends in its host (workers.launcher.claim_key).
    node = hostname if isinstance(hostname, str) and hostname else claim.rpartition("@")[2]
    RunAttempt.objects.update_or_create(
        run_id=run_id,
        attempt=attempt,
        defaults={
            "claimed_by": claim,
            "node": node[:200],
            "claimed_at": timezone.now(),
            "provenance": provenance,
        },
    )


def run_reap_unenqueued(*, grace_s: float | None = None) -> list[int]:
    """Fail every `queued` run whose start task never reached the broker (its publish failed, or the
    process stopped between commit and publish) once the grace has passed. A run the broker took
    (`enqueued_at` set) is never touched: it may rightly wait hours for free nodes."""
    grace = settings.TRIAD_ENQUEUE_GRACE_S if grace_s is None else grace_s
    cutoff = timezone.now() - dt.timedelta(seconds=grace)
    # A resume queues an old run again and logs it: nothing logged within the grace means nothing has
    # happened to the run lately, so its enqueue is not merely still under way.
    recent = LogLine.objects.filter(run_id=OuterRef("pk"), time__gte=cutoff)
    never = Q(status=RunStatus.QUEUED, enqueued_at__isnull=True, created_at__lt=cutoff) & ~Q(Exists(recent))
    candidates = Run.objects.filter(never).values_list("pk", flat=True)
    message = (
        f"not started: never reached the task broker within {grace:.0f}s of being queued (the broker "
        "was down, or the web process stopped before handing it over); resume it to try again"
    )
    reaped = []
    for run_id in list(candidates):
        with transaction.atomic():
            if transition(run_id, RunStatus.FAILED, message, when=never):
                reaped.append(run_id)
    return reaped
