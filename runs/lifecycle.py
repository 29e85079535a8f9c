"""The run state machine: the edges people, reapers and launchers take.

Which status may follow which, and the one conditional UPDATE that moves a run (`transition`), live in
runs/transitions.py (re-exported here), so a repeated or racing request is a no-op.
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from controlplane.accounts.models import AuditAction
from controlplane.accounts.services import audit_record
from runs import gang
from runs.models import LogLine, Run, RunClaim, RunStatus, StopCause
from runs.transitions import ALLOWED_FROM as ALLOWED_FROM
from runs.transitions import RESUMABLE as RESUMABLE
from runs.transitions import transition as transition


@dataclass(frozen=True)
class ClaimResult:
    claimed: bool  # this claim holds the attempt (now, or already: a retried request)
    desired_state: str


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
    """Mark `lost` every started run whose node has not been heard from within the timeout. A gang run
    (claims of node rank ≥ 1 on its current attempt) is also lost when any one of its nodes is silent:
    the others' heartbeats keep the run's own time fresh while a peer's ranks are gone, and theirs would
    then wait on a collective forever. Its message names the node and its rank.

    `timeout_s` (default TRIAD_LOST_AFTER_S) is for every run but those with a heartbeat timeout of
    their own (external runs, docs/external-runs.md), each judged by its own."""
    timeout = settings.TRIAD_LOST_AFTER_S if timeout_s is None else timeout_s
    reaped = _reap_silent(timeout=timeout, own=None)
    started = Run.objects.filter(status__in=ALLOWED_FROM[RunStatus.LOST], heartbeat_timeout_s__isnull=False)
    owns = {own for own in started.values_list("heartbeat_timeout_s", flat=True) if own is not None}
    for own in sorted(owns):
        reaped.extend(_reap_silent(timeout=float(own), own=own))
    return reaped


def _reap_silent(*, timeout: float, own: int | None) -> list[int]:
    """Reap the started runs silent for `timeout`: those without a timeout of their own (`own` None), or
    those whose own timeout is `own`."""
    cutoff = timezone.now() - dt.timedelta(seconds=timeout)
    silent = Q(last_heartbeat_at__lt=cutoff) | Q(last_heartbeat_at__isnull=True, started_at__lt=cutoff)
    mine = Q(heartbeat_timeout_s__isnull=True) if own is None else Q(heartbeat_timeout_s=own)
    silent &= mine
    current = RunClaim.objects.filter(run_id=OuterRef("pk"), attempt=OuterRef("attempt"))
    # Single-node runs are judged by the run's heartbeat alone, as before gangs: any source refreshes it.
    silent_member = Exists(current.filter(last_seen_at__lt=cutoff)) & Exists(current.filter(node_rank__gte=1))
    candidates = Run.objects.filter(silent | silent_member, mine, status__in=ALLOWED_FROM[RunStatus.LOST])
    message = (
        f"no heartbeat for {timeout:.0f}s: the node or its worker is gone; resume from the last checkpoint"
        if own is None
        else f"no event from its trainer for {own}s (its heartbeat timeout): the trainer is gone or cut off"
    )
    reaped = []
    for run_id, attempt in list(candidates.values_list("pk", "attempt")):
        if transition(run_id, RunStatus.LOST, message, when=silent):
            reaped.append(run_id)
            continue
        silent_claims = RunClaim.objects.filter(run_id=run_id, attempt=attempt, last_seen_at__lt=cutoff)
        quiet = silent_claims.order_by("last_seen_at").first()
        if quiet is None:
            continue
        because = (
            f"node {quiet.node} (node rank {quiet.node_rank}) sent no heartbeat for {timeout:.0f}s: it or "
            "its worker is gone, and the gang cannot go on without it; resume from the last checkpoint"
        )
        if transition(run_id, RunStatus.LOST, because, when=silent_member):
            reaped.append(run_id)
    return reaped


def run_claim(
    *, run_id: int, attempt: int, claim: str, provenance: dict[str, Any] | None = None
) -> ClaimResult:
    """A launcher takes the run's current attempt before it starts anything, through the gang claim
    (runs/gang.py) as a node that says nothing but its key and provenance. For a single-node run exactly
    one claim key wins an attempt (`queued` → `starting`); the same key again is accepted (a request
    retried after its answer was lost), any other is refused: a redelivered start task must not start a
    second trainer. The winning claim records the attempt's `RunAttempt`."""
    result = gang.gang_claim(run_id=run_id, attempt=attempt, claim=claim, provenance=provenance)
    return ClaimResult(claimed=result.claimed, desired_state=result.desired_state)


def run_reap_unenqueued(*, grace_s: float | None = None) -> list[int]:
    """Fail every `queued` run whose start task never reached the broker (its publish failed, or the
    process stopped between commit and publish) once the grace has passed. A run the broker took
    (`enqueued_at` set) is never touched: it may rightly wait hours for free nodes."""
    grace = settings.TRIAD_ENQUEUE_GRACE_S if grace_s is None else grace_s
    cutoff = timezone.now() - dt.timedelta(seconds=grace)
    # A resume queues an old run again and logs it: nothing logged within the grace means nothing has
    # happened to the run lately, so its enqueue is not merely still under way.
    recent = LogLine.objects.filter(run_id=OuterRef("pk"), time__gte=cutoff)
    # An external run is never handed to the broker: it waits for its own trainer (docs/external-runs.md).
    never = Q(status=RunStatus.QUEUED, enqueued_at__isnull=True, created_at__lt=cutoff, external=False) & ~Q(
        Exists(recent)
    )
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
