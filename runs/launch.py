"""Launching a run: the team and budget checks, the stored config, and handing the start task to the
broker (also on resume)."""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from controlplane.accounts.models import AuditAction, Role, Team
from controlplane.accounts.selectors import team_list_for
from controlplane.accounts.services import audit_record, team_acting_for
from datasets_app.models import DatasetVersion
from datasets_app.selectors import dataset_version_readable_by_team, problem_list_for_run, version_summary
from runs.lifecycle import audit_run_status, transition
from runs.models import (
    LogLine,
    Run,
    RunStatus,
)
from runs.pools import launch_resources, model_pool_refusal, pool_for_run
from runs.registry.models import ModelStatus, RegisteredModel
from runs.registry.selectors import model_readable_by_team
from runs.spend.selectors import BudgetState, spend_estimate, team_budget_state, user_budget_state
from runs.tokens import token_new
from workers.fleet import fleet_unavailable_reason
from workers.spec import SANDBOX_FLEET, RunConfig, config_from_stored


@dataclass(frozen=True)
class LaunchResult:
    run: Run
    token: str  # shown once; only its hash is stored


class RunLaunchError(ValueError):
    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


def run_launch_teams(*, user: User) -> QuerySet[Team]:
    """The teams the user may launch into (the launch form's choices; the first is the default). Refused
    with PermissionDenied when there are none: a viewer may look but not launch (a superuser in no team
    launches into the default team)."""
    teams = team_list_for(user=user, at_least=Role.MEMBER)
    if not user.is_superuser and not teams.exists():
        raise PermissionDenied("launching a run needs the member role in a team")
    return teams


def run_launch_team(*, user: User, team: Team | None = None) -> Team:
    """The team a launch goes to (see `team_acting_for`)."""
    return team_acting_for(user=user, team=team, doing="launching a run")


def run_launch(
    *,
    user: User,
    dataset_version: DatasetVersion,
    name: str,
    config: RunConfig,
    pool: str = "",
    team: Team | None = None,
    model: RegisteredModel | None = None,
) -> LaunchResult:
    """Queue a run in the team (default: the user's first team they may launch into; see
    `run_launch_team`). Refused past the run's or the user's or the team's monthly budget remainder.

    `model`: a ready registered model of the team (None: the built-in tiny model). The run goes to its
    pool when `pool` is left empty; another pool is refused, since only the model's pool's nodes were
    seen to hold it. `pool` empty without a model: the default pool.

    Refused too, with the numbers, when the pool's nodes cannot train it (runs/resources.py); all of it
    before anything is stored, queued or billed."""
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
    if model is not None:
        _check_model(model=model, team=team, pool=pool)
    pool = pool_for_run(pool=pool, model=model)
    _check_resources(config=config, model=model, pool=pool)
    check_sandbox_mode(config=config)
    check_monthly_budget(user=user, team=team, dataset_version=dataset_version, config=config, pool=pool)
    token, hashed = token_new()
    with transaction.atomic():
        run = Run.objects.create(
            name=name.strip() or f"{dataset_version.dataset.name}-v{dataset_version.number}",
            created_by=user,
            team=team,
            dataset_version=dataset_version,
            config=config.as_dict(),
            pool=pool,
            model=model,
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
            after={
                "status": run.status,
                "dataset_version": dataset_version.pk,
                "pool": pool,
                "model": model.name if model else None,
                **run.config,
            },
        )
        run_id, queue = run.pk, f"gpu.{run.pool}"

        def enqueue() -> None:
            _run_enqueue(run_id=run_id, token=token, queue=queue, nodes=config.nodes, again="launch again")

        transaction.on_commit(enqueue)
    return LaunchResult(run=run, token=token)


def _check_model(*, model: RegisteredModel, team: Team, pool: str) -> None:
    if not model_readable_by_team(model=model, team=team):
        raise RunLaunchError(f"model {model.name} is not a model of team {team.name}", field="model")
    if model.status != ModelStatus.READY:
        why = f": {model.error}" if model.error else ": no node of its pool has inspected it yet"
        raise RunLaunchError(
            f"model {model.name} is {model.get_status_display().lower()}{why}", field="model"
        )
    if (refusal := model_pool_refusal(model=model, pool=pool)) is not None:
        raise RunLaunchError(refusal.message, field=refusal.field)


def _check_resources(*, config: RunConfig, model: RegisteredModel | None, pool: str) -> None:
    """Refuse what the pool's nodes cannot train: too many GPUs, bf16 on older GPUs, a model that does
    not fit their memory; LoRA on the tiny model (runs/resources.py)."""
    refusal = launch_resources(config=config, model=model, pool=pool).refusal
    if refusal is not None:
        raise RunLaunchError(refusal.message, field=refusal.field)


def check_sandbox_mode(*, config: RunConfig) -> None:
    """Refuse sandbox_mode fleet where there is no fleet to reach: it needs Redis as the broker and the
    result backend (the embedded default has neither; docs/sandbox.md, "The sandbox fleet")."""
    if config.sandbox_mode != SANDBOX_FLEET:
        return
    reason = fleet_unavailable_reason(
        str(settings.CELERY_BROKER_URL), str(settings.CELERY_RESULT_BACKEND or "")
    )
    if reason:
        raise RunLaunchError(f"this control plane has no sandbox fleet: {reason}", field="sandbox_mode")


def check_monthly_budget(
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
        dataset_version_id=dataset_version.pk,
        pool=pool,
        steps=config.steps,
        gpus=config.gpus_per_node,
        nodes=config.nodes,
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


class RunNotQueuedError(RunLaunchError):
    """The run is recorded, but the broker did not take its start task: the run is `failed`, saying why
    (docs/runs.md, "Broker down")."""

    def __init__(self, message: str, *, run_id: int):
        super().__init__(message, field=NON_FIELD_ERRORS)
        self.run_id = run_id


def _run_enqueue(*, run_id: int, token: str, queue: str, nodes: int, again: str) -> None:
    """On commit: hand the attempt's start task to the broker, once per node the run needs (a gang of
    `nodes`: each message is taken by one node's worker, which claims the run; docs/runs.md), and record
    that it took them.

    A broker that is down or hung would leave a committed `queued` run that nothing ever starts: fail it
    with the reason and raise RunNotQueuedError, so the person launching hears of it now. So too when it
    took only some of a gang's messages: the run could never gather its nodes (the workers that got one
    find it failed and start nothing)."""
    from controlplane.celery import BROKER_ERRORS, broker_unreachable
    from runs.tasks import run_execute_task

    try:
        for _ in range(nodes):
            run_execute_task.apply_async(args=[run_id, token], queue=queue)
    except BROKER_ERRORS as exc:
        reason = f"not started: {broker_unreachable(exc)}; {again} when it is back"
        with transaction.atomic():
            # Only while still queued: a publish that timed out may have reached a worker after all,
            # and a person may have cancelled the run meanwhile.
            failed = transition(run_id, RunStatus.FAILED, reason, when=Q(status=RunStatus.QUEUED))
        if failed:
            raise RunNotQueuedError(f"Run #{run_id} was {reason}", run_id=run_id) from exc
        return
    Run.objects.filter(pk=run_id).update(enqueued_at=timezone.now())


def run_resume(*, run_id: int, user: User | None = None) -> LaunchResult | None:
    """Queue a lost, failed or cancelled run again as a new attempt (attempt + 1, unclaimed) under a fresh
    token. Its trainer resumes from the newest checkpoint of the earlier attempts and continues its step
    count and curves; its events are keyed by the new attempt, so they land wherever it runs (the steps
    it re-runs replace the earlier attempt's points).

    Refused (RunLaunchError, nothing changed) when this control plane can no longer give the run what
    its settings ask, as a launch would be: sandbox_mode fleet where there is no fleet to reach (a run
    launched before the deployment lost its Redis, or moved to the embedded default)."""
    stored = Run.objects.filter(pk=run_id).values_list("config", flat=True).first()
    if stored is not None:
        check_sandbox_mode(config=config_from_stored(stored))
    token, hashed = token_new()
    with transaction.atomic():
        before = Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
        # The old attempt's token stops working here: a launcher of it still alive gets 401s and stops.
        # Not an external run: its trainer is not Triad's to start again (docs/external-runs.md).
        if not transition(
            run_id,
            RunStatus.QUEUED,
            "resumed",
            when=Q(external=False),
            token_hash=hashed,
            last_heartbeat_at=None,
            attempt=F("attempt") + 1,
            claimed_by="",
            enqueued_at=None,  # the new attempt's start task has not reached the broker yet
        ):
            return None
        audit_run_status(run_id, AuditAction.RUN_RESUME, user, str(before), RunStatus.QUEUED)
        run = Run.objects.get(pk=run_id)
        queue, nodes = f"gpu.{run.pool}", config_from_stored(run.config).nodes

        def enqueue() -> None:
            _run_enqueue(run_id=run_id, token=token, queue=queue, nodes=nodes, again="resume it again")

        transaction.on_commit(enqueue)
    return LaunchResult(run=run, token=token)
