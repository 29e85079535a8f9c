"""Every change to prices, budgets and accrued cost.

Accrual (`run_cost_accrue`, on Celery beat every TRIAD_SPEND_ACCRUE_S) bills each started run from its
`accrued_until` to now, at most to its last heartbeat + TRIAD_SPEND_GRACE_S (a lost node is not billed
for silence), and a finished run once more up to its end. Each step moves `accrued_until` with a
conditional UPDATE, so a repeated or racing tick adds nothing. Then the budgets: a run past its own cap,
and every started run of a user past the monthly cap, go to `budget_stopped`; the launcher sees that on
its next answer from the ingest API, and the trainer checkpoints and exits.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from runs.broadcast import broadcast_run_update
from runs.metric_store import metric_points_write
from runs.models import TERMINAL_STATUSES, Run, RunStatus

# The run state machine's one door; there is no public wrapper for a budget stop yet.
from runs.services import run_budget_stop
from runs.spend.models import CostEntry, GpuPrice, MonthlyBudget, RunCost
from runs.spend.selectors import Price, billed_units, month_start, price_for_pool, usd_for, user_month_spend

STARTED = (RunStatus.STARTING, RunStatus.RUNNING, RunStatus.CANCELLING)
# Finished runs accrued (their last stretch) per tick, so a first tick over a long history stays short.
FINAL_PER_TICK = 200


@dataclass
class AccrualResult:
    accrued: list[int] = field(default_factory=list)  # runs billed this tick
    budget_stopped: list[int] = field(default_factory=list)


def gpu_price_set(*, pool: str, gpu_type: str, usd_per_gpu_hour: Decimal, user: User | None) -> GpuPrice:
    price, _ = GpuPrice.objects.update_or_create(
        pool=pool.strip(),
        defaults={"gpu_type": gpu_type.strip(), "usd_per_gpu_hour": usd_per_gpu_hour, "updated_by": user},
    )
    return price


def gpu_price_delete(*, price_id: int) -> bool:
    deleted, _ = GpuPrice.objects.filter(pk=price_id).delete()
    return bool(deleted)


def monthly_budget_set(*, user: User, usd_per_month: Decimal | None) -> MonthlyBudget | None:
    """Set a user's monthly cap; None removes it (no cap)."""
    if usd_per_month is None:
        MonthlyBudget.objects.filter(user=user).delete()
        return None
    budget, _ = MonthlyBudget.objects.update_or_create(user=user, defaults={"usd_per_month": usd_per_month})
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
        cost, _ = RunCost.objects.get_or_create(
            run_id=run.pk,
            defaults={
                "accrued_until": run.started_at,
                "gpus": billed_units(gpu_count=int(run.config.get("gpu_count") or 0), price=price),
            },
        )
        if cost.final and not terminal:
            # Resumed (or a lost node spoke again): bill again from now; the gap was silence.
            RunCost.objects.filter(pk=run.pk, final=True).update(final=False, accrued_until=now)
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
    )
    active = list(Run.objects.filter(status__in=STARTED, started_at__isnull=False).only(*fields))
    ended = list(
        Run.objects.filter(status__in=TERMINAL_STATUSES, started_at__isnull=False)
        .exclude(cost__final=True)
        .only(*fields)
        .order_by("pk")[:FINAL_PER_TICK]
    )
    for run in [*active, *ended]:
        price = prices.get(run.pool) or prices.setdefault(run.pool, price_for_pool(pool=run.pool))
        cost = _accrue_run(run, now, price)
        if cost is None:
            continue
        result.accrued.append(run.pk)
        budget = float(run.config.get("budget_usd") or 0)
        if run.status in STARTED and budget > 0 and float(cost.usd) >= budget:
            message = f"run budget reached: ${cost.usd:.4f} spent of its ${budget:.2f} cap; "
            message += "stopped with a checkpoint"
            if run_budget_stop(run_id=run.pk, message=message):
                result.budget_stopped.append(run.pk)
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
    return stopped
