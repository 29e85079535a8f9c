import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from controlplane.accounts.models import AuditAction, Role, Team
from controlplane.accounts.selectors import team_list_for
from controlplane.accounts.services import audit_record, require_role, team_default
from datasets_app.models import DatasetVersion
from datasets_app.selectors import dataset_version_readable_by_team, problem_list_for_run, version_summary
from runs.broadcast import broadcast_run_update
from runs.events import Batch, Event
from runs.metric_store import Row, metric_points_write
from runs.models import (
    TERMINAL_STATUSES,
    Generation,
    IngestedEvent,
    LogLine,
    Run,
    RunStatus,
    StopCause,
    status_label,
)
from runs.review.services import review_generations_scan
from runs.spend.selectors import BudgetState, spend_estimate, team_budget_state, user_budget_state
from runs.tokens import token_new

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
class RunConfig:
    steps: int = 5
    group_size: int = 4
    prompts_per_step: int = 2
    lr: float = 1e-3
    seed: int = 0
    max_new_tokens: int = 48
    temperature: float = 1.0
    sft_warmup_steps: int = 0  # imitation of the reference solutions before RL
    sft_lr: float = 3e-3
    checkpoint_every: int = 50
    eval_every: int = 0  # held-out pass@k every N steps (0: never)
    eval_problems: int = 0  # problems held out of training for that evaluation
    eval_set: str = "none"  # a built-in benchmark evaluated every eval_every steps too: none | humaneval
    eval_set_problems: int = 20  # its first N problems (0: all 164 of HumanEval)
    eval_samples: int = 8  # completions sampled per evaluated problem (n of pass@k)
    eval_k: int = 4  # eval/pass@<k> (and eval/<set>/pass@<k>) besides pass@1
    # The reward: the weighted sum of these components' scores, each in [0, 1] (docs/trainer.md).
    reward_correctness: float = 1.0
    reward_efficiency: float = 0.0
    reward_style: float = 0.0
    reward_format: float = 0.0
    include_unverified: bool = False  # train on problems that did not verify too
    budget_usd: float = 0  # the run's spend cap in USD (0: no cap); past it, the run is budget_stopped
    gpu_count: int = 0  # GPUs billed (0: one, or the trainer processes on a CPU pool)
    # Stops on learning signals (see docs/spend.md), checked on the accrual tick; never on by default.
    stop_pass_rate_flat_steps: int = 0  # stop once pass_rate stays within the tolerance this long (0: off)
    stop_pass_rate_tolerance: float = 0.01  # "flat": max - min of those steps' pass_rate at most this
    stop_zero_std_steps: int = 0  # stop once frac_reward_zero_std > stop_zero_std_frac this long (0: off)
    stop_zero_std_frac: float = 0.9
    # The execution-outcome critic (docs/trainer.md); skipping the sandbox is opt-in and audited.
    critic: bool = False
    critic_skip: bool = False
    critic_threshold: float = 0.95
    critic_audit_frac: float = 0.1
    critic_max_skip_frac: float = 0.5
    critic_max_audit_error: float = 0.05
    sft_with_reasoning: bool = False  # the warm-up imitates the problem's reasoning trace, then its solution

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# Settings the control plane acts on itself; the trainer never sees them.
CONTROL_ONLY = frozenset(
    {
        "include_unverified",
        "budget_usd",
        "gpu_count",
        "stop_pass_rate_flat_steps",
        "stop_pass_rate_tolerance",
        "stop_zero_std_steps",
        "stop_zero_std_frac",
    }
)


@dataclass(frozen=True)
class LaunchResult:
    run: Run
    token: str  # shown once; only its hash is stored


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    desired_state: str
    fenced: bool = False  # the run is lost: nothing of the batch was accepted (answered 409)


@dataclass(frozen=True)
class ClaimResult:
    claimed: bool  # this claim holds the attempt (now, or already: a retried request)
    desired_state: str


class RunLaunchError(ValueError):
    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


def run_launch_team(*, user: User, team: Team | None = None) -> Team:
    """The team a launch goes to: the one asked for, if the user is a member or admin of it (else
    PermissionDenied); else their first such team by name. A superuser with no team gets the default."""
    if team is not None:
        require_role(user=user, team_id=team.pk, at_least=Role.MEMBER, doing="launching a run")
        return team
    first = team_list_for(user=user, at_least=Role.MEMBER).first()
    if first is not None:
        return first
    if user.is_superuser:
        return team_default()
    raise PermissionDenied("launching a run needs the member role in a team")


def run_launch(
    *,
    user: User,
    dataset_version: DatasetVersion,
    name: str,
    config: RunConfig,
    pool: str = "",
    team: Team | None = None,
) -> LaunchResult:
    """Queue a run in the team (default: the user's first team they may launch into; see
    `run_launch_team`). Refused past the run's or the user's or the team's monthly budget remainder."""
    team = run_launch_team(user=user, team=team)
    if not dataset_version_readable_by_team(version=dataset_version, team=team):
        # Another team's dataset: its problems are not this team's to train on (docs/teams.md).
        raise RunLaunchError(
            f"{dataset_version} is not a dataset of team {team.name} nor a shared one",
            field="dataset_version",
        )
    problems = problem_list_for_run(version=dataset_version, include_unverified=config.include_unverified)
    if not problems.exists():
        summary = version_summary(version=dataset_version).by_status
        detail = ", ".join(f"{count} {status}" for status, count in summary.items() if count) or "no problems"
        raise RunLaunchError(
            f"{dataset_version} has no verified problems ({detail}): wait for verification to finish, "
            "or tick 'Include unverified problems'",
            field="dataset_version",
        )
    if config.eval_problems and config.eval_problems >= problems.count():
        raise RunLaunchError(
            f"holding out {config.eval_problems} problems leaves none of the {problems.count()} to train on",
            field="eval_problems",
        )
    pool = pool or settings.TRIAD_DEFAULT_POOL
    _check_monthly_budget(user=user, team=team, dataset_version=dataset_version, config=config, pool=pool)
    token, hashed = token_new()
    with transaction.atomic():
        run = Run.objects.create(
            name=name.strip() or f"{dataset_version.dataset.name}-v{dataset_version.number}",
            created_by=user,
            team=team,
            dataset_version=dataset_version,
            config=config.as_dict(),
            pool=pool,
            token_hash=hashed,
        )
        LogLine.objects.create(run=run, source="control", message="run queued", time=timezone.now())
        audit_record(
            actor=user,
            action=AuditAction.RUN_LAUNCH,
            target_type="run",
            target_id=run.pk,
            target=f"run #{run.pk} {run.name}",
            team_id=team.pk,
            after={"status": run.status, "dataset_version": dataset_version.pk, "pool": pool, **run.config},
        )
        run_id, queue = run.pk, f"gpu.{run.pool}"

        def enqueue() -> None:
            _run_enqueue(run_id=run_id, token=token, queue=queue, again="launch again")

        transaction.on_commit(enqueue)
    return LaunchResult(run=run, token=token)


def _check_monthly_budget(
    *, user: User, team: Team, dataset_version: DatasetVersion, config: RunConfig, pool: str
) -> None:
    """Refuse a launch whose estimate (bounded by its own cap) exceeds the user's or the team's monthly
    remainder."""
    budgets: list[tuple[str, BudgetState]] = [
        (whose, budget)
        for whose, budget in (
            ("your", user_budget_state(user_id=user.pk)),
            (f"team {team.name}'s", team_budget_state(team_id=team.pk)),
        )
        if budget is not None
    ]
    if not budgets:
        return
    estimate = spend_estimate(
        dataset_version_id=dataset_version.pk, pool=pool, steps=config.steps, gpu_count=config.gpu_count
    )
    expected = estimate.usd
    if config.budget_usd > 0:
        expected = min(expected, Decimal(str(config.budget_usd)))
    for whose, budget in budgets:
        if expected <= budget.remaining:
            continue
        cap_note = f", capped by this run's ${config.budget_usd:.2f} budget" if config.budget_usd > 0 else ""
        raise RunLaunchError(
            f"this run is estimated at ${expected:.2f}{cap_note} ({estimate.explanation}), but only "
            f"${budget.remaining:.2f} of {whose} ${budget.cap:.2f} monthly budget is left "
            f"(${budget.spent:.2f} spent this month): set a run budget that fits, or fewer steps",
            field="budget_usd",
        )


def _transition(
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


def _audit_run(run_id: int, action: AuditAction, user: User | None, before: str, after: str) -> None:
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
            if _transition(run_id, RunStatus.CANCELLED, message, when=Q(status=outright)):
                _audit_run(run_id, AuditAction.RUN_CANCEL, user, outright, RunStatus.CANCELLED)
                return True
        before = Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
        moved = _transition(run_id, RunStatus.CANCELLING, "cancel requested")
        if moved:
            _audit_run(run_id, AuditAction.RUN_CANCEL, user, str(before), RunStatus.CANCELLING)
        return moved


def run_budget_stop(*, run_id: int, message: str, cause: StopCause = StopCause.BUDGET) -> bool:
    """Stop a started run for its budget, or (cause LEARNING) because its spend no longer buys
    learning: either way the launcher sees `budget_stopped` and checkpoints it."""
    with transaction.atomic():
        return _transition(run_id, RunStatus.BUDGET_STOPPED, message, stop_cause=cause)


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
    return [
        run_id for run_id in list(candidates) if _transition(run_id, RunStatus.LOST, message, when=silent)
    ]


class RunNotQueuedError(RunLaunchError):
    """The run is recorded, but the broker did not take its start task: the run is `failed`, saying why
    (docs/runs.md, "Broker down")."""

    def __init__(self, message: str, *, run_id: int):
        super().__init__(message, field=NON_FIELD_ERRORS)
        self.run_id = run_id


def _run_enqueue(*, run_id: int, token: str, queue: str, again: str) -> None:
    """On commit: hand the attempt's start task to the broker and record that it took it.

    A broker that is down or hung would leave a committed `queued` run that nothing ever starts: fail it
    with the reason and raise RunNotQueuedError, so the person launching hears of it now."""
    from controlplane.celery import BROKER_ERRORS, broker_unreachable
    from workers.tasks import run_execute_task

    try:
        run_execute_task.apply_async(args=[run_id, token], queue=queue)
    except BROKER_ERRORS as exc:
        reason = f"not started: {broker_unreachable(exc)}; {again} when it is back"
        with transaction.atomic():
            # Only while still queued: a publish that timed out may have reached a worker after all,
            # and a person may have cancelled the run meanwhile.
            failed = _transition(run_id, RunStatus.FAILED, reason, when=Q(status=RunStatus.QUEUED))
        if failed:
            raise RunNotQueuedError(f"Run #{run_id} was {reason}", run_id=run_id) from exc
        return
    Run.objects.filter(pk=run_id).update(enqueued_at=timezone.now())


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
            if _transition(run_id, RunStatus.FAILED, message, when=never):
                reaped.append(run_id)
    return reaped


def run_resume(*, run_id: int, user: User | None = None) -> LaunchResult | None:
    """Queue a lost, failed or cancelled run again as a new attempt (attempt + 1, unclaimed) under a fresh
    token. Its trainer resumes from the newest checkpoint of the earlier attempts and continues its step
    count, curves and event sequence."""
    token, hashed = token_new()
    with transaction.atomic():
        before = Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
        # The old attempt's token stops working here: a launcher of it still alive gets 401s and stops.
        if not _transition(
            run_id,
            RunStatus.QUEUED,
            "resumed",
            token_hash=hashed,
            last_heartbeat_at=None,
            attempt=F("attempt") + 1,
            claimed_by="",
            enqueued_at=None,  # the new attempt's start task has not reached the broker yet
        ):
            return None
        _audit_run(run_id, AuditAction.RUN_RESUME, user, str(before), RunStatus.QUEUED)
        run = Run.objects.get(pk=run_id)
        queue = f"gpu.{run.pool}"

        def enqueue() -> None:
            _run_enqueue(run_id=run_id, token=token, queue=queue, again="resume it again")

        transaction.on_commit(enqueue)
    return LaunchResult(run=run, token=token)


def run_claim(*, run_id: int, attempt: int, claim: str) -> ClaimResult:
    """A launcher takes the run's current attempt (`queued` → `starting`) before it starts anything.
    Exactly one claim key wins an attempt; the same key again is accepted (a request retried after its
    answer was lost), any other is refused: a redelivered start task must not start a second trainer."""
    with transaction.atomic():
        unclaimed = Q(attempt=attempt, claimed_by="")
        if _transition(
            run_id,
            RunStatus.STARTING,
            f"attempt {attempt} claimed by {claim}",
            when=unclaimed,
            claimed_by=claim,
        ):
            return ClaimResult(claimed=True, desired_state=RunStatus.STARTING)
        status, held_by, current = Run.objects.values_list("status", "claimed_by", "attempt").get(pk=run_id)
    return ClaimResult(claimed=current == attempt and held_by == claim, desired_state=status)


def _when(epoch: float, default: dt.datetime) -> dt.datetime:
    if epoch <= 0:
        return default
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def run_ingest(*, run_id: int, batch: Batch) -> IngestResult:
    """Persist a batch of events exactly once per (run, source, seq), then broadcast what was new. A lost
    run's batch is refused whole (`fenced`): a heartbeat, a status or a final `succeeded` from an attempt
    the control plane gave up on never moves the run, nor bills it; only Resume starts it again."""
    now = timezone.now()
    with transaction.atomic():
        # One writer per run at a time (the run's row lock), the heartbeat and the seen-seq check, in one
        # round trip: the events whose (run, source, seq) was already claimed are the repeats.
        status, claimed = _events_claim(run_id=run_id, source=batch.source, events=batch.events, now=now)
        if status == RunStatus.LOST:
            return IngestResult(accepted=0, duplicates=0, desired_state=status, fenced=True)
        fresh = [e for e in batch.events if e.seq in claimed]
        payload = _store_events(run_id, batch.source, fresh, now)
        statuses = [e.data for e in fresh if e.type == "status"]
        for reported in statuses:
            _transition(run_id, reported["status"], reported["message"])
        if payload["metrics"] or payload["generations"] or payload["logs"]:
            broadcast_run_update(run_id, payload)
        desired = Run.objects.values_list("status", flat=True).get(pk=run_id) if statuses else status
    return IngestResult(accepted=len(fresh), duplicates=batch.received - len(fresh), desired_state=desired)


# Locks the run's row, records the heartbeat and the furthest new metric step, and inserts the batch's
# idempotency keys; answers the run's status and the seqs that were new. ORDER BY seq: concurrent
# batches claim overlapping keys in the same order. A lost run (fenced) gets none of it: no key, no
# heartbeat, only its status.
_CLAIM_SQL = """
WITH run AS (
    SELECT id, status FROM runs_run WHERE id = %(run_id)s FOR UPDATE
), unfenced AS (
    SELECT id FROM run WHERE status <> %(fenced)s
), fresh AS (
    INSERT INTO runs_ingestedevent (run_id, source, seq, type, received_at)
    SELECT unfenced.id, %(source)s, b.seq, b.type, %(now)s
    FROM unfenced, unnest(%(seqs)s::bigint[], %(types)s::varchar[]) AS b(seq, type)
    ORDER BY b.seq
    ON CONFLICT (run_id, source, seq) DO NOTHING
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
)
SELECT (SELECT status FROM run), ARRAY(SELECT seq FROM fresh)
"""


def _events_claim(*, run_id: int, source: str, events: list[Event], now: dt.datetime) -> tuple[str, set[int]]:
    metrics = [e for e in events if e.type == "metric"]
    if connection.vendor == "postgresql":
        params: dict[str, Any] = {
            "run_id": run_id,
            "fenced": RunStatus.LOST.value,
            "source": source,
            "now": now,
            "seqs": [e.seq for e in events],
            "types": [e.type for e in events],
            "metric_seqs": [e.seq for e in metrics],
            "metric_steps": [e.data["step"] for e in metrics],
        }
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM_SQL, params)
            status, fresh = cursor.fetchone()
        if status is None:
            raise Run.DoesNotExist(f"run {run_id}: no such run")
        return status, set(fresh)
    status = Run.objects.select_for_update().values_list("status", flat=True).get(pk=run_id)
    if status == RunStatus.LOST:
        return status, set()
    seqs = [e.seq for e in events]
    seen = set(
        IngestedEvent.objects.filter(run_id=run_id, source=source, seq__in=seqs).values_list("seq", flat=True)
    )
    IngestedEvent.objects.bulk_create(
        IngestedEvent(run_id=run_id, source=source, seq=e.seq, type=e.type, received_at=now)
        for e in events
        if e.seq not in seen
    )
    fields: dict[str, Any] = {"last_heartbeat_at": now}
    if steps := [e.data["step"] for e in metrics if e.seq not in seen]:
        fields["last_step"] = max(steps)
    Run.objects.filter(pk=run_id).update(**fields)
    return status, {seq for seq in seqs if seq not in seen}


def _store_events(run_id: int, source: str, events: list[Event], now: dt.datetime) -> dict[str, list[Any]]:
    points: list[Row] = []
    generations: list[Generation] = []
    logs: list[LogLine] = []
    for event in events:
        data = event.data
        if event.type == "metric":
            wall = _when(data["time"], now)
            step = data["step"]
            points.extend((run_id, key, step, value, wall) for key, value in data["values"].items())
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
        "logs": [{"level": line.level, "message": line.message[:500], "source": source} for line in logs],
    }


def run_spec(*, run: Run) -> dict[str, Any]:
    """Everything a GPU node needs to train this run; it holds no database credentials."""
    config = RunConfig(**{k: v for k, v in run.config.items() if k in RunConfig.__dataclass_fields__})
    version = run.dataset_version
    problems = [
        {
            "task_id": p.task_id,
            "prompt": p.prompt,
            "entry_point": p.entry_point,
            "solution": p.solution,
            "tests": p.tests,
            "reasoning": p.reasoning,
        }
        for p in problem_list_for_run(version=version, include_unverified=config.include_unverified)
    ]
    return {
        "run_id": run.pk,
        "attempt": run.attempt,  # what the launcher claims (`run_claim`) before it starts anything
        "name": run.name,
        "control_url": settings.TRIAD_CONTROL_URL,
        "dataset": {
            "name": run.dataset_version.dataset.name,
            "version": run.dataset_version.number,
            "content_hash": run.dataset_version.content_hash,
        },
        "model": {"kind": "tiny", "path": None, "d_model": 64, "n_layers": 2, "n_heads": 4, "max_len": 512},
        "train": {
            **{key: value for key, value in config.as_dict().items() if key not in CONTROL_ONLY},
            "beta": 0.0,
            "clip_eps": 0.2,
            "zero_stage": 0,
            "precision": "fp32",
        },
        "resources": {"num_nodes": 1, "procs_per_node": settings.TRIAD_PROCS_PER_NODE, "gpu": False},
        "sandbox": {"timeout_s": 2.0, "memory_mb": 512},
        "problems": problems,
    }
