"""Ingest: a node's batch of events stored exactly once per (run, attempt, source, seq), then broadcast."""

import datetime as dt
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from runs.alerts import hooks as alert_hooks
from runs.diversity_hooks import generations_stored
from runs.events import Batch, Event
from runs.lifecycle import transition
from runs.live.broadcast import broadcast_run_update
from runs.metric_store import Row, metric_points_write
from runs.models import (
    Generation,
    IngestedEvent,
    LogLine,
    Run,
    RunAttempt,
    RunClaim,
    RunStatus,
)
from runs.review.services import review_generations_scan


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    desired_state: str
    fenced: bool = False  # the run is lost, or the batch's attempt is not its current one: nothing accepted
    attempt: int = 0  # the run's current attempt


def _when(epoch: float, default: dt.datetime) -> dt.datetime:
    if epoch <= 0:
        return default
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def run_ingest(*, run_id: int, batch: Batch) -> IngestResult:
    """Persist a batch of events exactly once per (run, attempt, source, seq), then broadcast what was
    new. A batch is refused whole (`fenced`) when the run is lost or the batch is of another attempt than
    the run's current one (an attempt it gave up on, since resumed): a heartbeat, a status or a final
    `succeeded` from such an attempt never moves the run, nor bills it. Its desired state is then `lost`,
    which stops that attempt's trainer. A batch without an attempt (an older client) is the current
    attempt's."""
    now = timezone.now()
    with transaction.atomic():
        # One writer per run at a time (the run's row lock), the heartbeat and the seen-seq check, in one
        # round trip: the events whose (run, attempt, source, seq) was already claimed are the repeats.
        claim = _events_claim(run_id=run_id, batch=batch, now=now)
        status, current, claimed = claim.status, claim.attempt, claim.fresh
        if status == RunStatus.LOST or batch.attempt not in (None, current):
            return IngestResult(
                accepted=0, duplicates=0, desired_state=RunStatus.LOST, fenced=True, attempt=current
            )
        fresh = [e for e in batch.events if e.seq in claimed]
        started = False
        if status == RunStatus.QUEUED and fresh and claim.external:
            # An external run starts with its trainer's first event: no launcher claims it
            # (docs/external-runs.md). Any other queued run is started by its claim alone.
            message = "its trainer's first event arrived"
            started = transition(run_id, RunStatus.RUNNING, message, when=Q(external=True))
        payload = _store_events(run_id, batch.source, fresh, now)
        _store_checkpoints(run_id, current, fresh)
        statuses = [e.data for e in fresh if e.type == "status"]
        for reported in statuses:
            transition(run_id, reported["status"], reported["message"])
        if payload["metrics"] or payload["generations"] or payload["logs"]:
            broadcast_run_update(run_id, payload)
        if payload["metrics"]:
            alert_hooks.metrics_stored(
                run_id, watched=claim.watched
            )  # an on-commit enqueue, throttled per run
        if payload["generations"]:
            generations_stored(run_id)  # the diversity points, likewise (runs/diversity.py)
        moved = statuses or started
        desired = Run.objects.values_list("status", flat=True).get(pk=run_id) if moved else status
    return IngestResult(
        accepted=len(fresh), duplicates=batch.received - len(fresh), desired_state=desired, attempt=current
    )


# Locks the run's row, records the heartbeat and the furthest new metric step, and inserts the batch's
# idempotency keys; answers the run's status, its attempt and the seqs that were new. ORDER BY seq:
# concurrent batches claim overlapping keys in the same order. A lost run, or a batch of another attempt
# (fenced), gets none of it: no key, no heartbeat, only the run's status and attempt. Also, in the same
# round trip: the attempt's first and furthest metric step (only a batch with new metrics writes), and a
# node's launcher heartbeat on its gang claim (only a batch from a launcher source: node_rank not null);
# and whether metric alert rules watch the run (asked for a batch with metrics: runs/alerts/hooks.py).
_CLAIM_SQL = """
WITH run AS (
    SELECT id, status, attempt, team_id, external FROM runs_run WHERE id = %(run_id)s FOR UPDATE
), unfenced AS (
    SELECT id, attempt FROM run WHERE status <> %(fenced)s AND attempt = COALESCE(%(attempt)s::int, attempt)
), fresh AS (
    INSERT INTO runs_ingestedevent (run_id, attempt, source, seq, type, received_at)
    SELECT unfenced.id, unfenced.attempt, %(source)s, b.seq, b.type, %(now)s
    FROM unfenced, unnest(%(seqs)s::bigint[], %(types)s::varchar[]) AS b(seq, type)
    ORDER BY b.seq
    ON CONFLICT (run_id, attempt, source, seq) DO NOTHING
    RETURNING seq
), beat AS (
    UPDATE runs_run SET
        last_heartbeat_at = %(now)s,
        last_step = COALESCE(
            (SELECT max(m.step)
             FROM unnest(%(metric_seqs)s::bigint[], %(metric_steps)s::int[]) AS m(seq, step)
             WHERE m.seq IN (SELECT seq FROM fresh)),
            last_step
        )
    WHERE id = (SELECT id FROM unfenced)
), steps AS (
    SELECT min(m.step) AS lo, max(m.step) AS hi
    FROM unnest(%(metric_seqs)s::bigint[], %(metric_steps)s::int[]) AS m(seq, step)
    WHERE m.seq IN (SELECT seq FROM fresh)
), attempt_steps AS (
    UPDATE runs_runattempt SET
        first_step = COALESCE(first_step, (SELECT lo FROM steps)),
        last_step = GREATEST(last_step, (SELECT hi FROM steps))
    WHERE (SELECT hi FROM steps) IS NOT NULL
        AND run_id = (SELECT id FROM unfenced) AND attempt = (SELECT attempt FROM unfenced)
), node_seen AS (
    UPDATE runs_runclaim SET last_seen_at = %(now)s
    WHERE %(node_rank)s::int IS NOT NULL AND node_rank = %(node_rank)s::int
        AND run_id = (SELECT id FROM unfenced) AND attempt = (SELECT attempt FROM unfenced)
)
SELECT (SELECT status FROM run), (SELECT attempt FROM run), ARRAY(SELECT seq FROM fresh),
    (SELECT external FROM run), %(metrics)s AND {watched}
""".format(watched=alert_hooks.METRIC_RULES_SQL.format(team="(SELECT team_id FROM run)"))  # noqa: S608 (constants)


def node_rank_of(source: str) -> int | None:
    """The gang node rank a launcher's batch speaks for ("launcher": 0, "launcher-<r>": r); None for the
    trainer and outside sources, whose batches refresh no node's claim."""
    if source == "launcher":
        return 0
    prefix, _, rank = source.partition("-")
    return int(rank) if prefix == "launcher" and rank.isdigit() else None


@dataclass(frozen=True)
class _Claim:
    status: str
    attempt: int  # the run's current attempt
    fresh: set[int]  # the seqs of the batch not seen before
    external: bool  # an external run, which its first event starts
    watched: bool | None  # whether metric alert rules watch the run (None: not read; False: no metrics)


def _events_claim(*, run_id: int, batch: Batch, now: dt.datetime) -> _Claim:
    source, events = batch.source, batch.events
    metrics = [e for e in events if e.type == "metric"]
    if connection.vendor == "postgresql":
        params: dict[str, Any] = {
            "run_id": run_id,
            "fenced": RunStatus.LOST.value,
            "attempt": batch.attempt,
            "source": source,
            "now": now,
            "seqs": [e.seq for e in events],
            "types": [e.type for e in events],
            "metric_seqs": [e.seq for e in metrics],
            "metric_steps": [e.data["step"] for e in metrics],
            "node_rank": node_rank_of(source),
            "metrics": bool(metrics),
            **alert_hooks.metric_rules_params(),
        }
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM_SQL, params)
            status, attempt, fresh, external, watched = cursor.fetchone()
        if status is None:
            raise Run.DoesNotExist(f"run {run_id}: no such run")
        return _Claim(status, attempt, set(fresh), external, bool(watched))
    status, attempt, external = (
        Run.objects.select_for_update().values_list("status", "attempt", "external").get(pk=run_id)
    )
    if status == RunStatus.LOST or batch.attempt not in (None, attempt):
        return _Claim(status, attempt, set(), external, None)
    seqs = [e.seq for e in events]
    keys = IngestedEvent.objects.filter(run_id=run_id, attempt=attempt, source=source, seq__in=seqs)
    seen = set(keys.values_list("seq", flat=True))
    IngestedEvent.objects.bulk_create(
        IngestedEvent(run_id=run_id, attempt=attempt, source=source, seq=e.seq, type=e.type, received_at=now)
        for e in events
        if e.seq not in seen
    )
    fields: dict[str, Any] = {"last_heartbeat_at": now}
    if steps := [e.data["step"] for e in metrics if e.seq not in seen]:
        fields["last_step"] = max(steps)
        RunAttempt.objects.filter(run_id=run_id, attempt=attempt).update(
            first_step=Coalesce(F("first_step"), Value(min(steps))),
            last_step=Greatest(Coalesce(F("last_step"), Value(max(steps))), Value(max(steps))),
        )
    Run.objects.filter(pk=run_id).update(**fields)
    if (node_rank := node_rank_of(source)) is not None:
        RunClaim.objects.filter(run_id=run_id, attempt=attempt, node_rank=node_rank).update(last_seen_at=now)
    return _Claim(status, attempt, {seq for seq in seqs if seq not in seen}, external, None)


def _store_checkpoints(run_id: int, attempt: int, events: list[Event]) -> None:
    """The newest "checkpoints" report of the batch becomes the run's (only its current attempt's
    batches get here: another attempt's are fenced before)."""
    reports = [e for e in events if e.type == "checkpoints"]
    if reports:
        newest = max(reports, key=lambda e: e.seq).data
        Run.objects.filter(pk=run_id, attempt=attempt).update(checkpoints={**newest, "attempt": attempt})


def _store_events(run_id: int, source: str, events: list[Event], now: dt.datetime) -> dict[str, list[Any]]:
    points: list[Row] = []
    generations: list[Generation] = []
    logs: list[LogLine] = []
    for event in events:
        data = event.data
        if event.type == "metric":
            wall = _when(data["time"], now)
            step = data["step"]
            values = data["values"]  # the rows built by zip, in C: a batch carries thousands of points
            points.extend(
                zip(repeat(run_id), values, repeat(step), values.values(), repeat(wall), strict=False)
            )
        elif event.type == "generation":
            generations.append(Generation(run_id=run_id, **data))
        elif event.type == "log":
            logs.append(
                LogLine(
                    run_id=run_id,
                    source=source,
                    level=data["level"],
                    message=data["message"],
                    time=_when(data["time"], now),
                )
            )
    metric_points_write(points)
    Generation.objects.bulk_create(generations)
    review_generations_scan(run_id=run_id, generations=generations, now=now)
    LogLine.objects.bulk_create(logs)
    return {
        "metrics": [{"key": key, "step": step, "value": value} for _, key, step, value, _ in points],
        "generations": [
            {
                "step": g.step,
                "problem_id": g.problem_id,
                "passed": g.passed,
                "error_class": g.error_class,
                "reward": g.reward,
            }
            for g in generations
        ],
        "logs": [
            {
                "level": line.level,
                "message": line.message[:500],
                "source": source,
                "time": line.time.isoformat(),
            }
            for line in logs
        ],
    }
