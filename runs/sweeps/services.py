"""Sweeps: plan and estimate, launch (every run checked and the whole sweep's estimate held against the
budgets before anything is stored), stop, and successive halving (docs/sweeps.md)."""

import math
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from controlplane.accounts.models import AuditAction, Team
from datasets_app.models import DatasetVersion
from datasets_app.selectors import dataset_version_readable_by_team
from runs import launch, lifecycle
from runs.models import MetricPoint, Run, RunMetricKey, RunStatus
from runs.pools import pool_for_run
from runs.registry.models import RegisteredModel
from runs.registry.selectors import model_readable_by_team
from runs.spend.selectors import BudgetState, spend_estimate, team_budget_state, user_budget_state
from runs.sweeps.document import Halving, SweepDocument, halving_from
from runs.sweeps.expansion import PlannedRun, SweepError
from runs.sweeps.models import Sweep, SweepHalt, SweepRun, SweepRung, SweepStatus

ACTIVE = (RunStatus.QUEUED, RunStatus.STARTING, RunStatus.RUNNING)


@dataclass(frozen=True)
class SweepPlan:
    """What a document launches: its team, version, model and pool resolved, each run's config, and the
    estimate of them all (each run's bounded by its own budget_usd, as a launch's is)."""

    document: SweepDocument
    team: Team
    dataset_version: DatasetVersion
    model: RegisteredModel | None
    pool: str
    runs: list[PlannedRun]
    run_usd: list[Decimal]
    explanation: str  # the first run's estimate, spelled out

    @property
    def total_usd(self) -> Decimal:
        return sum(self.run_usd, Decimal(0))


def sweep_plan_make(*, user: User, document: SweepDocument) -> SweepPlan:
    """The sweep expanded and estimated; refused (SweepError naming the field) for a bad axis, value,
    dataset version or model. PermissionDenied for a team the user may not launch into."""
    team = launch.run_launch_team(user=user, team=_team(document.team))
    if Sweep.objects.filter(team=team, name=document.name).exists():
        # Its runs would share names with the other's: <name>-1 must say which sweep it is.
        raise SweepError(f"name: team {team.name} has a sweep named {document.name} already", field="name")
    version = DatasetVersion.objects.select_related("dataset").filter(pk=document.dataset_version).first()
    if version is None:
        raise SweepError(
            f"dataset_version: no dataset version #{document.dataset_version}", field="dataset_version"
        )
    if not dataset_version_readable_by_team(version=version, team=team):
        raise SweepError(
            f"dataset_version: {version} is not a dataset of team {team.name} nor a shared one",
            field="dataset_version",
        )
    model = None
    if document.model is not None:
        model = RegisteredModel.objects.filter(pk=document.model).first()
        # Another team's model does not exist for this team, not even its name.
        if model is None or not model_readable_by_team(model=model, team=team):
            raise SweepError(f"model: no model #{document.model}", field="model")
    runs = document.plan()
    pool = pool_for_run(pool=document.pool, model=model)
    usd, explanation = [], ""
    for planned in runs:
        config = planned.config
        estimate = spend_estimate(
            dataset_version_id=version.pk,
            pool=pool,
            steps=config.steps,
            gpus=config.gpus_per_node,
            nodes=config.nodes,
        )
        expected = estimate.usd
        if config.budget_usd > 0:
            expected = min(expected, Decimal(str(config.budget_usd)))
        usd.append(expected)
        explanation = explanation or estimate.explanation
    return SweepPlan(document, team, version, model, pool, runs, usd, explanation)


def _team(team_id: int | None) -> Team | None:
    if team_id is None:
        return None
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise SweepError(f"team: no team #{team_id}", field="team")
    return team


def sweep_budget_check(*, user: User, plan: SweepPlan) -> None:
    """The whole sweep against the user's and the team's monthly remainder, up front: a sweep that
    does not fit launches none of its runs."""
    budgets: list[tuple[str, BudgetState | None]] = [
        ("your", user_budget_state(user_id=user.pk)),
        (f"team {plan.team.name}'s", team_budget_state(team_id=plan.team.pk)),
    ]
    total = plan.total_usd
    for whose, budget in budgets:
        if budget is None or total <= budget.remaining:
            continue
        low, high = min(plan.run_usd), max(plan.run_usd)
        each = f"${low:.2f}" if low == high else f"${low:.2f} to ${high:.2f}"
        raise SweepError(
            f"this sweep of {len(plan.runs)} runs is estimated at ${total:.2f} in all ({each} a run; "
            f"{plan.explanation}), but only ${budget.remaining:.2f} of {whose} ${budget.cap:.2f} monthly "
            f"budget is left (${budget.spent:.2f} spent this month): fewer runs or steps, or a run budget "
            "(budget_usd) that fits",
            field="budget",
        )


def sweep_budget_refusal(*, user: User, plan: SweepPlan) -> str:
    """Why the budget check would refuse the sweep ("" if it fits): the preview's warning."""
    try:
        sweep_budget_check(user=user, plan=plan)
    except SweepError as exc:
        return str(exc)
    return ""


@dataclass(frozen=True)
class SweepLaunch:
    sweep: Sweep
    not_queued: str = ""  # the broker refused a start task: the runs left are failed by the reaper


def sweep_launch(*, user: User, document: SweepDocument) -> SweepLaunch:
    """Plan, check the budget for the whole sweep, then record the sweep and its runs in one transaction
    (each run through the launch service, with its own checks: one refused refuses them all) and queue
    them once it commits, as a launch does."""
    plan = sweep_plan_make(user=user, document=document)
    sweep_budget_check(user=user, plan=plan)
    sweep: Sweep | None = None
    try:
        with transaction.atomic():
            sweep = Sweep.objects.create(
                name=document.name,
                team=plan.team,
                created_by=user,
                dataset_version=plan.dataset_version,
                model=plan.model,
                pool=plan.pool,
                method=document.method,
                count=document.count,
                seed=document.seed,
                base_config=document.config,
                axes=document.axes,
                halving=document.halving.as_dict() if document.halving else {},
            )
            for planned in plan.runs:
                try:
                    result = launch.run_launch(
                        user=user,
                        team=plan.team,
                        dataset_version=plan.dataset_version,
                        name=f"{document.name}-{planned.index}",
                        config=planned.config,
                        pool=document.pool,
                        model=plan.model,
                    )
                except launch.RunNotQueuedError:
                    raise  # after commit: handled below
                except launch.RunLaunchError as exc:
                    field = f"config.{exc.field}" if exc.field in planned.config.as_dict() else exc.field
                    raise SweepError(f"run {planned.index}: {exc}", field=field) from None
                SweepRun.objects.create(
                    sweep=sweep, run=result.run, index=planned.index, params=planned.params
                )
    except launch.RunNotQueuedError as exc:  # raised by an on-commit enqueue: the records are committed
        assert sweep is not None
        Sweep.objects.filter(pk=sweep.pk).update(status_message=f"not every run was queued: {exc}")
        return SweepLaunch(sweep=sweep, not_queued=str(exc))
    return SweepLaunch(sweep=sweep)


def sweep_stop(*, sweep_id: int, user: User | None) -> int:
    """Mark the sweep stopped and cancel its active runs (queued ones at once, started ones through
    `cancelling`, as Cancel on a run page does). Repeating it is harmless. Returns the runs cancelled."""
    now = timezone.now()
    Sweep.objects.filter(pk=sweep_id, status=SweepStatus.ACTIVE).update(
        status=SweepStatus.STOPPED, stopped_at=now, status_message="stopped: its active runs were cancelled"
    )
    run_ids = SweepRun.objects.filter(sweep_id=sweep_id, run__status__in=ACTIVE).values_list(
        "run_id", flat=True
    )
    return sum(lifecycle.run_cancel(run_id=run_id, user=user) for run_id in list(run_ids))


# ----------------------------------------------------------------------------- successive halving


def halving_rungs(halving: Halving, *, last: int) -> list[int]:
    """The steps halving judges at, up to `last` (the longest run's steps)."""
    if halving.every is None:
        return [halving.step] if halving.step <= last else []
    return list(range(halving.step, last + 1, halving.every))


def halving_pick(values: dict[int, float], *, fraction: float, goal: str) -> list[int]:
    """The runs in the bottom `fraction` of `values` (run id → the metric at the rung's step): the
    floor of fraction × n, worst first; a tie goes against the later run."""
    stop = math.floor(len(values) * fraction)
    worst_first = sorted(
        values, key=lambda run_id: (values[run_id] if goal == "max" else -values[run_id], -run_id)
    )
    return worst_first[:stop]


def sweep_halve(*, sweep_id: int) -> list[int]:
    """Judge the sweep's next rung once every run still in it has reached the rung's step (or ended):
    the bottom fraction of those that reached it, by the metric's value at that step, are cancelled with
    a message saying why, and the rung is recorded with them. Idempotent: a rung is judged once (unique
    per sweep and step; concurrent beats serialize on the sweep's row). Returns the runs stopped."""
    with transaction.atomic():
        sweep = Sweep.objects.select_for_update().filter(pk=sweep_id, status=SweepStatus.ACTIVE).first()
        halving = halving_from(sweep.halving) if sweep is not None else None
        if sweep is None or halving is None:
            return []
        members = Run.objects.filter(sweep_run__sweep=sweep).exclude(
            pk__in=SweepHalt.objects.filter(rung__sweep=sweep).values("run_id")
        )
        last = max((int(run.config.get("steps", 0)) for run in members), default=0)
        done = set(sweep.rungs.values_list("step", flat=True))
        rung_step = next((s for s in halving_rungs(halving, last=last) if s not in done), None)
        if rung_step is None:
            return []
        reached = set(
            RunMetricKey.objects.filter(
                run__in=members, key=halving.metric, last_step__gte=rung_step
            ).values_list("run_id", flat=True)
        )
        if members.filter(status__in=ACTIVE).exclude(pk__in=reached).exists():
            return []  # a run still on its way to the step: judge when it gets there
        values = _values_at(run_ids=sorted(reached), key=halving.metric, step=rung_step)
        rung = SweepRung.objects.create(
            sweep=sweep,
            step=rung_step,
            metric=halving.metric,
            fraction=halving.fraction,
            compared=len(values),
        )
        stopped = []
        for run_id in halving_pick(values, fraction=halving.fraction, goal=halving.goal):
            reason = (
                f"stopped by successive halving at step {rung_step}: {halving.metric} {values[run_id]:.4g} "
                f"was in the bottom {halving.fraction:.0%} of the {len(values)} runs of sweep {sweep.name}"
            )
            if _halt(run_id, reason):
                SweepHalt.objects.create(rung=rung, run_id=run_id, value=values[run_id], reason=reason)
                stopped.append(run_id)
        return stopped


def _values_at(*, run_ids: list[int], key: str, step: int) -> dict[int, float]:
    """Each run's value of `key` at `step` (its latest point at or before it); NaN and infinities left
    out: they rank nowhere."""
    values = {}
    for run_id in run_ids:
        value = (
            MetricPoint.objects.filter(run_id=run_id, key=key, step__lte=step)
            .order_by("-step", "-pk")
            .values_list("value", flat=True)
            .first()
        )
        if value is not None and math.isfinite(value):
            values[run_id] = float(value)
    return values


def _halt(run_id: int, reason: str) -> bool:
    """Cancel a started run (through `cancelling`, the launcher checkpoints and confirms) saying why;
    a run that has ended meanwhile is left as it is."""
    before = Run.objects.filter(pk=run_id).values_list("status", flat=True).first()
    if before == RunStatus.QUEUED:
        moved = lifecycle.transition(run_id, RunStatus.CANCELLED, reason, when=Q(status=RunStatus.QUEUED))
        after = RunStatus.CANCELLED
    else:
        moved = lifecycle.transition(run_id, RunStatus.CANCELLING, reason)
        after = RunStatus.CANCELLING
    if moved:
        lifecycle.audit_run_status(run_id, AuditAction.RUN_CANCEL, None, str(before), after)
    return moved


def sweep_halve_all() -> list[int]:
    """Beat: every active sweep with halving, one rung at a time each."""
    stopped: list[int] = []
    for sweep_id, halving in Sweep.objects.filter(status=SweepStatus.ACTIVE).values_list("pk", "halving"):
        if not halving:
            continue
        try:
            stopped += sweep_halve(sweep_id=sweep_id)
        except IntegrityError:  # another beat judged the rung first
            continue
    return stopped
