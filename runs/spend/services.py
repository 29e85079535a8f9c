"""Every change to prices, budgets and accrued cost.

Accrual (`run_cost_accrue`, on Celery beat every TRIAD_SPEND_ACCRUE_S) bills each started run from its
`accrued_until` to now, at most to its last heartbeat + TRIAD_SPEND_GRACE_S (a lost node is not billed
for silence), and a finished run once more up to its end. Each step moves `accrued_until` with a
conditional UPDATE, so a repeated or racing tick adds nothing. Then the budgets: a run past its own cap,
and every started run of a user past the monthly cap, go to `budget_stopped`; the launcher sees that on
its next answer from the ingest API, and the trainer checkpoints and exits. A run that opted into a stop on
learning signals (its pass rate flat, or most of its groups without reward variance, for N steps) is
stopped the same way on the same tick: one indexed read per such run, none on the ingest path.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Avg, Count, F, Max, Min, Q
from django.utils import timezone

from controlplane.accounts.models import AuditAction, Role, Team
from controlplane.accounts.selectors import is_site_admin, user_list_managed_by
from controlplane.accounts.services import audit_record, require_role
from runs.lifecycle import run_budget_stop
from runs.live.broadcast import broadcast_run_update
from runs.metric_store import metric_points_write
from runs.models import TERMINAL_STATUSES, MetricPoint, Node, Run, RunStatus, StopCause
from runs.spend.models import CostEntry, GpuPrice, MonthlyBudget, RunCost, TeamMonthlyBudget
from runs.spend.selectors import (
    Price,
    month_start,
    price_for_node,
    price_for_pool,
    run_billed_units,
    team_month_spend,
    usd_for,
    user_month_spend,
)
from workers.spec import Metric, RunConfig

STARTED = (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCELLING)
# Finished runs accrued (their last stretch) per tick, so a first tick over a long history stays short.
FINAL_PER_TICK = 200


@dataclass
class AccrualResult:
    accrued: list[int] = field(default_factory=list)  # runs billed this tick
    budget_stopped: list[int] = field(default_factory=list)
    learning_stopped: list[int] = field(default_factory=list)  # stopped on a learning signal


def _price_state(price: GpuPrice | None) -> dict[str, Any] | None:
    if price is None:
        return None
    return {"pool": price.pool, "gpu_type": price.gpu_type, "usd_per_gpu_hour": str(price.usd_per_gpu_hour)}


class PriceError(ValueError):
    """A price that would bill wrongly: negative (every team's spend would go down) or not a number."""


def _require_price_admin(actor: User | None) -> None:
    """Prices are shared by every team, and bill every team's runs: site admins (superusers and staff)
    set them, audited; a team's admin only reads them."""
    if actor is not None and not is_site_admin(user=actor):
        raise PermissionDenied("prices are shared by every team: site admins set them")


def _require_valid_price(usd_per_gpu_hour: Decimal | None) -> None:
    if usd_per_gpu_hour is None:
        return
    if not Decimal(usd_per_gpu_hour).is_finite() or usd_per_gpu_hour < 0:
        raise PriceError(f"usd_per_gpu_hour: must be a number ≥ 0, got {usd_per_gpu_hour}")


@transaction.atomic
def gpu_price_set(*, pool: str, gpu_type: str, usd_per_gpu_hour: Decimal, user: User | None) -> GpuPrice:
    """Set a pool's price, ≥ 0 (`user`: who did it, a site admin, audited; None: the system)."""
    _require_price_admin(user)
    _require_valid_price(usd_per_gpu_hour)
    before = _price_state(GpuPrice.objects.select_for_update().filter(pool=pool.strip()).first())
    price, _ = GpuPrice.objects.update_or_create(
        pool=pool.strip(),
        defaults={"gpu_type": gpu_type.strip(), "usd_per_gpu_hour": usd_per_gpu_hour, "updated_by": user},
    )
    price.refresh_from_db()
    audit_record(
        actor=user,
        action=AuditAction.PRICE_SET,
        target_type="price",
        target_id=price.pk,
        target=f"pool {price.pool}",
        before=before,
        after=_price_state(price),
    )
    return price


@transaction.atomic
def node_price_set(*, node_id: int, usd_per_gpu_hour: Decimal | None, user: User | None) -> bool:
    """Set a node's own price per GPU-hour, which overrides its pool's from the next accrual tick; None
    removes it (the pool's price again); it is ≥ 0. `user`: who did it, a site admin, audited; None:
    the system."""
    _require_price_admin(user)
    _require_valid_price(usd_per_gpu_hour)
    node = Node.objects.select_for_update().filter(pk=node_id).first()
    if node is None:
        return False
    price = None if usd_per_gpu_hour is None else float(usd_per_gpu_hour)
    Node.objects.filter(pk=node_id).update(usd_per_gpu_hour=price)
    if node.usd_per_gpu_hour != price:
        audit_record(
            actor=user,
            action=AuditAction.PRICE_SET if price is not None else AuditAction.PRICE_DELETE,
            target_type="node_price",
            target_id=node.pk,
            target=f"node {node.name}",
            before=None if node.usd_per_gpu_hour is None else {"usd_per_gpu_hour": node.usd_per_gpu_hour},
            after=None if price is None else {"usd_per_gpu_hour": price},
        )
    return True


def _usd(value: Decimal | None) -> dict[str, Any] | None:
    return None if value is None else {"usd_per_month": str(value)}


_Cap = TypeVar("_Cap", MonthlyBudget, TeamMonthlyBudget)


def _cap_replace(
    model: type[_Cap], owner: dict[str, Any], usd_per_month: Decimal | None
) -> tuple[Decimal | None, _Cap | None]:
    """Replace the monthly cap row of `owner` (None deletes it) under a row lock; (the old cap, the row)."""
    rows = model.objects.select_for_update().filter(**owner)
    old = rows.values_list("usd_per_month", flat=True).first()
    if usd_per_month is None:
        rows.delete()
        return old, None
    budget, _ = model.objects.update_or_create(**owner, defaults={"usd_per_month": usd_per_month})
    return old, budget


@transaction.atomic
def monthly_budget_set(
    *, user: User, usd_per_month: Decimal | None, actor: User | None = None
) -> MonthlyBudget | None:
    """Set a user's monthly cap; None removes it (no cap). `actor` (audited; None: the system) must be an
    admin of a team the user is in, or a superuser."""
    if actor is not None and not user_list_managed_by(admin=actor).filter(pk=user.pk).exists():
        raise PermissionDenied("a user's budget is set by an admin of one of their teams")
    old, budget = _cap_replace(MonthlyBudget, {"user": user}, usd_per_month)
    if old != usd_per_month:
        audit_record(
            actor=actor,
            action=AuditAction.BUDGET_SET,
            target_type="user_budget",
            target_id=user.pk,
            target=f"monthly budget of {user.get_username()}",
            before=_usd(old),
            after=_usd(usd_per_month),
        )
    return budget


@transaction.atomic
def team_monthly_budget_set(
    *, team: Team, usd_per_month: Decimal | None, actor: User | None = None
) -> TeamMonthlyBudget | None:
    """Set a team's monthly cap over all its runs; None removes it. `actor` (audited; None: the system)
    must be an admin of the team."""
    if actor is not None:
        require_role(user=actor, team_id=team.pk, at_least=Role.ADMIN, doing="setting the team's budget")
    old, budget = _cap_replace(TeamMonthlyBudget, {"team": team}, usd_per_month)
    if old != usd_per_month:
        audit_record(
            actor=actor,
            action=AuditAction.BUDGET_SET,
            target_type="team_budget",
            target_id=team.pk,
            target=f"monthly budget of team {team.name}",
            team_id=team.pk,
            before=_usd(old),
            after=_usd(usd_per_month),
        )
    return budget


def _days(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.date, float]]:
    """[start, end) split at UTC midnights: (day, seconds) pairs."""
    out: list[tuple[dt.date, float]] = []
    cursor = start.astimezone(dt.UTC)
    end = end.astimezone(dt.UTC)
    while cursor < end:
        midnight = dt.datetime.combine(cursor.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        stop = min(end, midnight)
        out.append((cursor.date(), (stop - cursor).total_seconds()))
        cursor = stop
    return out


def _billable_end(run: Run, now: dt.datetime) -> dt.datetime:
    end = run.finished_at if run.status in TERMINAL_STATUSES and run.finished_at else now
    heard = run.last_heartbeat_at or run.started_at
    assert heard is not None  # only started runs are accrued
    return min(end, heard + dt.timedelta(seconds=settings.TRIAD_SPEND_GRACE_S))


def _accrue_run(run: Run, now: dt.datetime, price: Price) -> RunCost | None:
    """Bill one run up to its billable end; the RunCost as it now is, or None if nothing was added."""
    terminal = run.status in TERMINAL_STATUSES
    assert run.started_at is not None
    with transaction.atomic():
        cost = RunCost.objects.filter(run_id=run.pk).first()
        if cost is None:  # its first tick: the units are decided once, from what its node resolved
            cost, _ = RunCost.objects.get_or_create(
                run_id=run.pk,
                defaults={"accrued_until": run.started_at, "gpus": run_billed_units(run=run, price=price)},
            )
        if cost.final and not terminal:
            # Resumed (or a lost node spoke again): bill again from now, for what the attempt now
            # running resolved; the gap was silence.
            RunCost.objects.filter(pk=run.pk, final=True).update(
                final=False, accrued_until=now, gpus=run_billed_units(run=run, price=price)
            )
            return None
        start, end = cost.accrued_until, _billable_end(run, now)
        seconds = (end - start).total_seconds()
        if seconds <= 0:
            if terminal:
                RunCost.objects.filter(pk=run.pk, accrued_until=start, final=False).update(final=True)
            return None
        usd = usd_for(seconds=seconds, units=cost.gpus, price=price)
        gpu_hours = seconds * cost.gpus / 3600.0
        # The conditional UPDATE is the idempotency key; it also locks the row until commit, so a racing
        # tick waits, then matches nothing.
        moved = RunCost.objects.filter(pk=run.pk, accrued_until=start, final=False).update(
            accrued_until=end, usd=F("usd") + usd, gpu_hours=F("gpu_hours") + gpu_hours, final=terminal
        )
        if not moved:
            return None
        for day, day_seconds in _days(start, end):
            share = Decimal(str(day_seconds / seconds))
            entry, _ = CostEntry.objects.get_or_create(run_id=run.pk, day=day)
            CostEntry.objects.filter(pk=entry.pk).update(
                usd=F("usd") + (usd * share).quantize(Decimal("0.000001")),
                gpu_hours=F("gpu_hours") + day_seconds * cost.gpus / 3600.0,
            )
        cost.refresh_from_db()
        step = run.last_step or 0
        values = {"cost/usd": float(cost.usd), "cost/gpu_hours": cost.gpu_hours}
        metric_points_write([(run.pk, key, step, value, end) for key, value in values.items()])
        broadcast_run_update(
            run.pk, {"metrics": [{"key": key, "step": step, "value": value} for key, value in values.items()]}
        )
    return cost


def run_cost_accrue(*, now: dt.datetime | None = None) -> AccrualResult:
    """One accrual tick over every started run and every finished run not yet billed to its end."""
    now = now or timezone.now()
    result = AccrualResult()
    prices: dict[str, Price] = {}
    fields = (
        "pk",
        "status",
        "config",
        "pool",
        "created_by_id",
        "started_at",
        "finished_at",
        "last_heartbeat_at",
        "last_step",
        "node__name",
        "node__usd_per_gpu_hour",
        "node__gpu_count",
    )
    runs = Run.objects.select_related("node").only(*fields)
    active = list(runs.filter(status__in=STARTED, started_at__isnull=False))
    ended = list(
        runs.filter(status__in=TERMINAL_STATUSES, started_at__isnull=False)
        .exclude(cost__final=True)
        .order_by("pk")[:FINAL_PER_TICK]
    )
    for run in [*active, *ended]:
        pool_price = prices.get(run.pool) or prices.setdefault(run.pool, price_for_pool(pool=run.pool))
        cost = _accrue_run(run, now, price_for_node(pool_price=pool_price, node=run.node))
        if cost is None:
            continue
        result.accrued.append(run.pk)
        budget = float(run.config.get("budget_usd") or 0)
        if run.status in STARTED and budget > 0 and float(cost.usd) >= budget:
            message = f"run budget reached: ${cost.usd:.4f} spent of its ${budget:.2f} cap; "
            message += "stopped with a checkpoint"
            if run_budget_stop(run_id=run.pk, message=message):
                result.budget_stopped.append(run.pk)
    for run in active:
        if run.status == RunStatus.RUNNING and run.pk not in result.budget_stopped:
            reason = learning_stop_reason(run_id=run.pk, config=run.config, last_step=run.last_step)
            if reason and run_budget_stop(run_id=run.pk, message=reason, cause=StopCause.LEARNING):
                result.learning_stopped.append(run.pk)
    result.budget_stopped.extend(_enforce_monthly_budgets(now=now, skip=set(result.budget_stopped)))
    return result


def _enforce_monthly_budgets(*, now: dt.datetime, skip: set[int]) -> list[int]:
    stopped: list[int] = []
    user_ids = set(
        Run.objects.filter(status__in=STARTED).exclude(pk__in=skip).values_list("created_by_id", flat=True)
    )
    for budget in MonthlyBudget.objects.filter(user_id__in=user_ids):
        spent = user_month_spend(user_id=budget.user_id, now=now)
        if spent < budget.usd_per_month:
            continue
        month = month_start(now).strftime("%B %Y")
        message = (
            f"monthly budget reached: ${spent:.2f} spent in {month} of a ${budget.usd_per_month:.2f} cap; "
            "stopped with a checkpoint"
        )
        run_ids = Run.objects.filter(created_by_id=budget.user_id, status__in=STARTED).values_list(
            "pk", flat=True
        )
        stopped.extend(run_id for run_id in list(run_ids) if run_budget_stop(run_id=run_id, message=message))
    team_ids = set(
        Run.objects.filter(status__in=STARTED).exclude(pk__in=skip).values_list("team_id", flat=True)
    )
    for team_budget in TeamMonthlyBudget.objects.filter(team_id__in=team_ids).select_related("team"):
        spent = team_month_spend(team_id=team_budget.team_id, now=now)
        if spent < team_budget.usd_per_month:
            continue
        month = month_start(now).strftime("%B %Y")
        message = (
            f"team {team_budget.team.name}'s monthly budget reached: ${spent:.2f} spent in {month} of a "
            f"${team_budget.usd_per_month:.2f} cap; stopped with a checkpoint"
        )
        run_ids = Run.objects.filter(team_id=team_budget.team_id, status__in=STARTED).values_list(
            "pk", flat=True
        )
        stopped.extend(run_id for run_id in list(run_ids) if run_budget_stop(run_id=run_id, message=message))
    return stopped


# "Flat" compares floats: 0.43 - 0.42 is a hair over 0.01.
_EPSILON = 1e-9


def learning_stop_reason(*, run_id: int, config: dict[str, Any], last_step: int | None) -> str:
    """Why a run's spend no longer buys learning, by the stop rules its config opted into ("" if it
    still does, or opted into none): its pass rate flat within a tolerance, or `frac_reward_zero_std`
    above a threshold, at every one of its latest N steps (a setting the config lacks takes RunConfig's
    default). Neither fires before N steps logged the metric (SFT warm-up steps log neither).

    One query, whatever the rules and however long their windows: per rule, an aggregate (distinct
    steps, extremes) over its window of the (run, key, step) index."""
    flat_steps = int(config.get("stop_pass_rate_flat_steps") or 0)
    zero_std_steps = int(config.get("stop_zero_std_steps") or 0)
    if last_step is None or (flat_steps <= 0 and zero_std_steps <= 0):
        return ""
    windows = {
        "flat": (Metric.PASS_RATE, flat_steps),
        "zero_std": (Metric.FRAC_REWARD_ZERO_STD, zero_std_steps),
    }
    aggregates: dict[str, Any] = {}
    for name, (key, steps) in windows.items():
        if steps > 0:
            inside = Q(key=key, step__gt=last_step - steps)
            aggregates[f"{name}_n"] = Count("step", distinct=True, filter=inside)
            aggregates[f"{name}_low"] = Min("value", filter=inside)
            aggregates[f"{name}_high"] = Max("value", filter=inside)
            aggregates[f"{name}_mean"] = Avg("value", filter=inside)
    longest = max(flat_steps, zero_std_steps)
    seen = MetricPoint.objects.filter(
        run_id=run_id,
        key__in=[key for key, steps in windows.values() if steps > 0],
        step__gt=last_step - longest,
    ).aggregate(**aggregates)
    if flat_steps > 0 and seen["flat_n"] == flat_steps:
        tolerance = float(config.get("stop_pass_rate_tolerance", RunConfig.stop_pass_rate_tolerance))
        if seen["flat_high"] - seen["flat_low"] <= tolerance + _EPSILON:
            return (
                f"learning stalled: pass rate flat at {seen['flat_mean']:.2f} (within {tolerance:g}) for "
                f"{flat_steps} steps, to step {last_step}: spend no longer buys learning; stopped with a "
                "checkpoint"
            )
    if zero_std_steps > 0 and seen["zero_std_n"] == zero_std_steps:
        threshold = float(config.get("stop_zero_std_frac", RunConfig.stop_zero_std_frac))
        if seen["zero_std_low"] > threshold:
            return (
                f"learning stalled: frac_reward_zero_std above {threshold:g} for {zero_std_steps} steps, to "
                f"step {last_step} (lowest {seen['zero_std_low']:.2f}): groups whose samples all score alike "
                "teach nothing, so spend no longer buys learning; stopped with a checkpoint"
            )
    return ""
