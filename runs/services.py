import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from datasets_app.models import DatasetVersion
from datasets_app.selectors import problem_list_for_run, version_summary
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
)
from runs.review.services import review_generations_scan
from runs.spend.selectors import spend_estimate, user_budget_state
from runs.tokens import token_new

# Which statuses each reported status may replace. A report that does not fit is ignored, so a
# repeated or late delivery can never move a run backwards.
RESUMABLE = (RunStatus.LOST, RunStatus.FAILED, RunStatus.CANCELLED)
ALLOWED_FROM: dict[str, tuple[str, ...]] = {
    RunStatus.QUEUED: RESUMABLE,
    RunStatus.STARTING: (RunStatus.QUEUED,),
    # A lost run whose node speaks again was only out of touch: it is running after all.
    RunStatus.RUNNING: (RunStatus.QUEUED, RunStatus.STARTING, RunStatus.LOST),
    RunStatus.SUCCEEDED: (RunStatus.STARTING, RunStatus.RUNNING),
    RunStatus.FAILED: (RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCELLING),
    RunStatus.CANCELLED: (RunStatus.QUEUED, RunStatus.CANCELLING),
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
    include_unverified: bool = False  # train on problems that did not verify too
    budget_usd: float = 0  # the run's spend cap in USD (0: no cap); past it, the run is budget_stopped
    gpu_count: int = 0  # GPUs billed (0: one, or the trainer processes on a CPU pool)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# Settings the control plane acts on itself; the trainer never sees them.
CONTROL_ONLY = frozenset({"include_unverified", "budget_usd", "gpu_count"})


@dataclass(frozen=True)
class LaunchResult:
    run: Run
    token: str  # shown once; only its hash is stored


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicates: int
    desired_state: str


class RunLaunchError(ValueError):
    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


def run_launch(
    *, user: User, dataset_version: DatasetVersion, name: str, config: RunConfig, pool: str = ""
) -> LaunchResult:
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
    _check_monthly_budget(user=user, dataset_version=dataset_version, config=config, pool=pool)
    token, hashed = token_new()
    with transaction.atomic():
        run = Run.objects.create(
            name=name.strip() or f"{dataset_version.dataset.name}-v{dataset_version.number}",
            created_by=user,
            dataset_version=dataset_version,
            config=config.as_dict(),
            pool=pool,
            token_hash=hashed,
        )
        LogLine.objects.create(run=run, source="control", message="run queued", time=timezone.now())
        run_id, queue = run.pk, f"gpu.{run.pool}"

        def enqueue() -> None:
            from workers.tasks import run_execute_task

            run_execute_task.apply_async(args=[run_id, token], queue=queue)

        transaction.on_commit(enqueue)
    return LaunchResult(run=run, token=token)


def _check_monthly_budget(
    *, user: User, dataset_version: DatasetVersion, config: RunConfig, pool: str
) -> None:
    """Refuse a launch whose estimate (bounded by its own cap) exceeds the user's monthly remainder."""
    budget = user_budget_state(user_id=user.pk)
    if budget is None:
        return
    estimate = spend_estimate(
        dataset_version_id=dataset_version.pk, pool=pool, steps=config.steps, gpu_count=config.gpu_count
    )
    expected = estimate.usd
    if config.budget_usd > 0:
        expected = min(expected, Decimal(str(config.budget_usd)))
    if expected > budget.remaining:
        cap_note = f", capped by this run's ${config.budget_usd:.2f} budget" if config.budget_usd > 0 else ""
        raise RunLaunchError(
            f"this run is estimated at ${expected:.2f}{cap_note} ({estimate.explanation}), but only "
            f"${budget.remaining:.2f} of your ${budget.cap:.2f} monthly budget is left (${budget.spent:.2f} "
            "spent this month): set a run budget that fits, or fewer steps",
            field="budget_usd",
        )


def _transition(
    run_id: int, new_status: str, message: str = "", *, when: Q | None = None, **extra: Any
) -> bool:
    """Conditional UPDATE: moves the run only from a status that allows it (and only while `when`
    holds). Returns whether it moved, so a repeated or racing request is a no-op."""
    now = timezone.now()
    fields: dict[str, Any] = {"status": new_status, **extra}
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
        broadcast_run_update(run_id, {"status": new_status, "status_message": message})
    return bool(moved)


def run_cancel(*, run_id: int) -> bool:
    """Queued runs are cancelled at once; started ones go to `cancelling` until the launcher confirms."""
    with transaction.atomic():
        # Only a queued run is cancelled outright: `cancelling` → `cancelled` is the launcher's
        # confirmation, so a second click must not take that edge.
        queued = Q(status=RunStatus.QUEUED)
        if _transition(run_id, RunStatus.CANCELLED, "cancelled before it started", when=queued):
            return True
        moved = Run.objects.filter(pk=run_id, status__in=(RunStatus.STARTING, RunStatus.RUNNING)).update(
            status=RunStatus.CANCELLING
        )
        if moved:
            LogLine.objects.create(
                run_id=run_id, source="control", message="cancel requested", time=timezone.now()
            )
            broadcast_run_update(run_id, {"status": RunStatus.CANCELLING, "status_message": ""})
        return bool(moved)


def run_budget_stop(*, run_id: int, message: str) -> bool:
    """Stop a started run for its budget: the launcher sees `budget_stopped` and checkpoints it."""
    with transaction.atomic():
        return _transition(run_id, RunStatus.BUDGET_STOPPED, message)


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


def run_resume(*, run_id: int) -> LaunchResult | None:
    """Queue a lost, failed or cancelled run again under a fresh token. Its trainer resumes from the last
    checkpoint in the run's work dir and continues its step count, curves and event sequence."""
    token, hashed = token_new()
    with transaction.atomic():
        if not _transition(run_id, RunStatus.QUEUED, "resumed", token_hash=hashed, last_heartbeat_at=None):
            return None
        run = Run.objects.get(pk=run_id)
        queue = f"gpu.{run.pool}"

        def enqueue() -> None:
            from workers.tasks import run_execute_task

            run_execute_task.apply_async(args=[run_id, token], queue=queue)

        transaction.on_commit(enqueue)
    return LaunchResult(run=run, token=token)


def _when(epoch: float, default: dt.datetime) -> dt.datetime:
    if epoch <= 0:
        return default
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


def run_ingest(*, run_id: int, batch: Batch) -> IngestResult:
    """Persist a batch of events exactly once per (run, source, seq), then broadcast what was new."""
    now = timezone.now()
    with transaction.atomic():
        # One writer per run at a time: makes the seen-seq check and the inserts one atomic step.
        run = Run.objects.select_for_update().only("pk", "status").get(pk=run_id)
        seqs = [e.seq for e in batch.events]
        seen = set(
            IngestedEvent.objects.filter(run_id=run_id, source=batch.source, seq__in=seqs).values_list(
                "seq", flat=True
            )
        )
        fresh = [e for e in batch.events if e.seq not in seen]
        IngestedEvent.objects.bulk_create(
            IngestedEvent(run_id=run_id, source=batch.source, seq=e.seq, type=e.type) for e in fresh
        )
        payload = _store_events(run_id, batch.source, fresh, now)
        statuses = [e.data for e in fresh if e.type == "status"]
        heartbeat_fields: dict[str, Any] = {"last_heartbeat_at": now}
        if payload["metrics"]:
            heartbeat_fields["last_step"] = max(p["step"] for p in payload["metrics"])
        Run.objects.filter(pk=run_id).update(**heartbeat_fields)
        for status in statuses:
            _transition(run_id, status["status"], status["message"])
        if payload["metrics"] or payload["generations"] or payload["logs"]:
            broadcast_run_update(run_id, payload)
        desired = Run.objects.values_list("status", flat=True).get(pk=run.pk)
    return IngestResult(accepted=len(fresh), duplicates=batch.received - len(fresh), desired_state=desired)


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
        }
        for p in problem_list_for_run(version=version, include_unverified=config.include_unverified)
    ]
    return {
        "run_id": run.pk,
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
