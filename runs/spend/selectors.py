"""Reads of spend that pages and the launch check share: prices, estimates, projections, breakdowns.

Imports only models, so `runs.launch` (the launch check) can use it without a cycle.
"""

import dataclasses
import datetime as dt
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Count, F, Max, QuerySet, Sum
from django.utils import timezone

from controlplane.accounts.models import Role
from controlplane.accounts.selectors import team_filter, user_list_managed_by
from runs.models import Generation, MetricPoint, Node, Run, RunAttempt, RunClaim, status_label
from runs.spend.models import CostEntry, GpuPrice, MonthlyBudget, RunCost, TeamMonthlyBudget
from workers.provenance import resolved_ranks
from workers.spec import Metric, config_from_stored

CENT = Decimal("0.01")
# How many recent similar runs, and how many of their step times, an estimate looks at.
SIMILAR_RUNS = 20
STEP_SAMPLES = 2000


@dataclass(frozen=True)
class Price:
    pool: str
    usd_per_gpu_hour: Decimal
    is_cpu: bool
    is_default: bool  # no price set for the pool: TRIAD_SPEND_DEFAULT_USD_PER_GPU_HOUR
    node: str = ""  # the node whose own price this is, if it overrides the pool's


def price_for_pool(*, pool: str) -> Price:
    row = GpuPrice.objects.filter(pool=pool).first()
    if row is None:
        default = Decimal(str(settings.TRIAD_SPEND_DEFAULT_USD_PER_GPU_HOUR))
        return Price(pool=pool, usd_per_gpu_hour=default, is_cpu=False, is_default=True)
    return Price(pool=pool, usd_per_gpu_hour=row.usd_per_gpu_hour, is_cpu=row.is_cpu, is_default=False)


def price_for_node(*, pool_price: Price, node: Node | None) -> Price:
    """A node's own price per GPU-hour when it has one (set at registration or by staff), else its pool's.
    The pool still decides how a run is billed (per GPU, or per process on a CPU pool)."""
    if node is None or node.usd_per_gpu_hour is None:
        return pool_price
    usd = Decimal(str(node.usd_per_gpu_hour)).quantize(Decimal("0.000001"))
    return dataclasses.replace(pool_price, usd_per_gpu_hour=usd, is_default=False, node=node.name)


def billed_units(*, gpus: int, price: Price, ranks: int | None = None, node_gpus: int = 0) -> int:
    """GPUs billed for a run (docs/spend.md): the GPUs per node it set; when it left them to the node
    (0), the ranks its attempt resolved there (`ranks`), else its node's GPU count, else 1 — on a CPU
    pool, where each trainer process is billed as a GPU, TRIAD_PROCS_PER_NODE instead of the last two."""
    if gpus > 0:
        return gpus
    if ranks:
        return ranks
    if price.is_cpu:
        return settings.TRIAD_PROCS_PER_NODE
    return node_gpus or 1


def run_billed_units(*, run: Run, price: Price) -> int:
    """`billed_units` of a started run: what its latest claimed attempt resolved on its node — on each
    node of a gang (`nodes` > 1), summed over the attempt's claims (the ranks each node started), or the
    units of one node × its nodes while no claim says more."""
    config = config_from_stored(run.config)
    gpus = config.gpus_per_node
    if config.nodes > 1:
        return _gang_billed_units(run=run, price=price, gpus=gpus, nodes=config.nodes)
    if gpus > 0:
        return gpus  # what it asked for: no need to read what the node made of it
    reported = (
        RunAttempt.objects.filter(run_id=run.pk, claimed_at__isnull=False)
        .order_by("-attempt")
        .values_list("provenance", flat=True)
        .first()
    )
    resolved = resolved_ranks(reported)
    return billed_units(
        gpus=0,
        price=price,
        ranks=resolved[0] if resolved else None,
        node_gpus=run.node.gpu_count if run.node else 0,
    )


def _gang_billed_units(*, run: Run, price: Price, gpus: int, nodes: int) -> int:
    claims = list(RunClaim.objects.filter(run_id=run.pk, attempt=run.attempt).values_list("node", "ranks"))
    named = Node.objects.filter(name__in=[node for node, _ in claims])
    node_gpus = dict(named.values_list("name", "gpu_count"))
    if claims:
        return sum(
            billed_units(gpus=gpus, price=price, ranks=ranks, node_gpus=node_gpus.get(node, 0))
            for node, ranks in claims
        )
    return billed_units(gpus=gpus, price=price, node_gpus=run.node.gpu_count if run.node else 0) * nodes


def usd_for(*, seconds: float, units: int, price: Price) -> Decimal:
    gpu_hours = Decimal(str(seconds * units / 3600.0))
    return (gpu_hours * price.usd_per_gpu_hour).quantize(Decimal("0.000001"))


@dataclass(frozen=True)
class Estimate:
    usd: Decimal
    steps: int
    step_s: float
    step_s_source: str  # where the step time came from, said on the form
    units: int  # GPUs billed, on every node of the run
    price: Price
    nodes: int = 1

    @property
    def explanation(self) -> str:
        gpus = f"{self.units} GPU(s)"
        if self.nodes > 1:
            gpus = f"{self.nodes} nodes × {self.units // self.nodes} GPU(s)"
        return (
            f"{self.steps} steps × {self.step_s:.2f} s/step ({self.step_s_source}) × {gpus} "
            f"× ${self.price.usd_per_gpu_hour:.2f}/GPU-hour"
        )


def _median_step_s(runs: QuerySet[Run]) -> float | None:
    run_ids = list(runs.order_by("-pk").values_list("pk", flat=True)[:SIMILAR_RUNS])
    if not run_ids:
        return None
    values = list(
        MetricPoint.objects.filter(run_id__in=run_ids, key=Metric.STEP_S, value__gt=0)
        .order_by("-pk")
        .values_list("value", flat=True)[:STEP_SAMPLES]
    )
    return statistics.median(values) if values else None


def spend_estimate(
    *, dataset_version_id: int | None, pool: str, steps: int, gpus: int, nodes: int = 1
) -> Estimate:
    """Steps × the recent median step time of similar runs (same dataset version, else same pool, else
    a default) × GPUs per node (`billed_units`) × nodes (a gang pays for each of its nodes) × the pool's
    price."""
    price = price_for_pool(pool=pool)
    step_s, source = None, ""
    if dataset_version_id is not None:
        step_s, source = (
            _median_step_s(Run.objects.filter(dataset_version_id=dataset_version_id)),
            "median of recent runs on this dataset version",
        )
    if step_s is None:
        step_s, source = (
            _median_step_s(Run.objects.filter(pool=pool)),
            f"median of recent runs on pool {pool}",
        )
    if step_s is None:
        step_s, source = settings.TRIAD_SPEND_DEFAULT_STEP_S, "default: no similar run measured one yet"
    # GPUs per node left to the node (0): the most GPUs a node of the pool has, as a budget fails closed.
    node_gpus = Node.objects.filter(pool=pool).aggregate(most=Max("gpu_count"))["most"] or 0
    units = billed_units(gpus=gpus, price=price, node_gpus=node_gpus) * nodes
    usd = usd_for(seconds=steps * step_s, units=units, price=price)
    return Estimate(
        usd=usd, steps=steps, step_s=step_s, step_s_source=source, units=units, price=price, nodes=nodes
    )


def month_start(now: dt.datetime) -> dt.date:
    return now.astimezone(dt.UTC).date().replace(day=1)


def user_month_spend(*, user_id: int, now: dt.datetime | None = None) -> Decimal:
    since = month_start(now or timezone.now())
    total = CostEntry.objects.filter(run__created_by_id=user_id, day__gte=since).aggregate(t=Sum("usd"))["t"]
    return total or Decimal(0)


@dataclass(frozen=True)
class BudgetState:
    cap: Decimal
    spent: Decimal

    @property
    def remaining(self) -> Decimal:
        return max(Decimal(0), self.cap - self.spent)


def user_budget_state(*, user_id: int, now: dt.datetime | None = None) -> BudgetState | None:
    budget = MonthlyBudget.objects.filter(user_id=user_id).first()
    if budget is None:
        return None
    return BudgetState(cap=budget.usd_per_month, spent=user_month_spend(user_id=user_id, now=now))


def user_budget_list(*, admin: User) -> QuerySet[MonthlyBudget]:
    """The per-user budgets an admin may see and set: of the users in the teams they administer."""
    return MonthlyBudget.objects.filter(user__in=user_list_managed_by(admin=admin)).select_related("user")


def team_budget_list(*, admin: User) -> QuerySet[TeamMonthlyBudget]:
    return TeamMonthlyBudget.objects.filter(team_filter(user=admin, at_least=Role.ADMIN)).select_related(
        "team"
    )


def team_month_spend(*, team_id: int, now: dt.datetime | None = None) -> Decimal:
    since = month_start(now or timezone.now())
    total = CostEntry.objects.filter(run__team_id=team_id, day__gte=since).aggregate(t=Sum("usd"))["t"]
    return total or Decimal(0)


def team_budget_state(*, team_id: int, now: dt.datetime | None = None) -> BudgetState | None:
    budget = TeamMonthlyBudget.objects.filter(team_id=team_id).first()
    if budget is None:
        return None
    return BudgetState(cap=budget.usd_per_month, spent=team_month_spend(team_id=team_id, now=now))


def _first_last(run_id: int, key: str) -> tuple[float, float] | None:
    points = MetricPoint.objects.filter(run_id=run_id, key=key)
    first = points.order_by("step", "pk").values_list("value", flat=True).first()
    last = points.order_by("-step", "-pk").values_list("value", flat=True).first()
    return None if first is None or last is None else (first, last)


def pass_rate_gain_points(*, run_id: int) -> float | None:
    """Pass rate gained from the first step to the latest, in percentage points."""
    ends = _first_last(run_id, Metric.PASS_RATE)
    return None if ends is None else (ends[1] - ends[0]) * 100


@dataclass(frozen=True)
class ResolveStats:
    """A repository run's resolve rate and spend per resolved task (docs/spend.md, "Spend per resolved
    task"). `source` says where the counts come from: "stored" (the run posts every episode, so the
    stored ones are all of them), "metrics" (repo/resolve_rate per step × the step's scored episodes),
    or "sample" (only a sample of episodes is stored and no metric says more: the rate is the sample's,
    and no spend per resolved task is claimed)."""

    source: str
    scored: float  # episodes scored (sandbox_error ones left out)
    resolved: float
    usd: Decimal

    @property
    def resolve_rate(self) -> float | None:
        return self.resolved / self.scored if self.scored else None

    @property
    def usd_per_resolved(self) -> Decimal | None:
        if self.source == "sample" or self.resolved <= 0:
            return None
        return (self.usd / Decimal(str(self.resolved))).quantize(Decimal("0.0001"))


def _per_step(run_id: int, key: str) -> dict[int, float]:
    """A metric's value at each step (the latest point of a step written twice, as after a resume)."""
    rows = MetricPoint.objects.filter(run_id=run_id, key=key).order_by("step", "pk")
    return dict(rows.values_list("step", "value"))


def run_resolve_stats(*, run: Run) -> ResolveStats | None:
    """The run's resolved and scored repository episodes, and its cost; None for a run that has
    neither an episode stored nor a repo/resolve_rate point (not a repository run)."""
    episodes = Generation.objects.filter(run_id=run.pk, outcome__gt="")  # a range: the (run, outcome) index
    counts = dict(episodes.values_list("outcome").annotate(n=Count("pk")).order_by())
    rates = _per_step(run.pk, Metric.REPO_RESOLVE_RATE)
    if not counts and not rates:
        return None
    cost = RunCost.objects.filter(run=run).values_list("usd", flat=True).first() or Decimal(0)
    config = config_from_stored(run.config or {})
    stored_scored = sum(n for outcome, n in counts.items() if outcome != "sandbox_error")
    if config.generations_keep == "all" and counts:
        return ResolveStats("stored", float(stored_scored), float(counts.get("resolved", 0)), cost)
    if rates:
        # The trainer's rate is over the step's scored episodes: prompts × group, less the step's
        # sandbox errors (their share, repo/outcome/sandbox_error, when it logged one).
        per_step = config.prompts_per_step * config.group_size
        infra = _per_step(run.pk, Metric.repo_outcome("sandbox_error"))
        scored = {step: per_step * (1.0 - infra.get(step, 0.0)) for step in rates}
        resolved = sum(rate * scored[step] for step, rate in rates.items())
        return ResolveStats("metrics", sum(scored.values()), resolved, cost)
    return ResolveStats("sample", float(stored_scored), float(counts.get("resolved", 0)), cost)


@dataclass(frozen=True)
class Projection:
    usd: Decimal
    gpu_hours: float
    budget_usd: float
    projected_usd: Decimal | None  # at the configured steps, from the measured step time
    gain_points: float | None
    usd_per_point: Decimal | None

    @property
    def budget_used_frac(self) -> float | None:
        return float(self.usd) / self.budget_usd if self.budget_usd > 0 else None


def run_cost_projection(*, run: Run) -> Projection:
    cost = RunCost.objects.filter(run=run).first()
    usd = cost.usd if cost else Decimal(0)
    projected = None
    step_s = _median_step_s(Run.objects.filter(pk=run.pk))
    steps = int(run.config.get("steps") or 0)
    if step_s is not None and steps:
        price = price_for_node(pool_price=price_for_pool(pool=run.pool), node=run.node)
        units = cost.gpus if cost else run_billed_units(run=run, price=price)
        remaining = max(0, steps - ((run.last_step or 0) + 1)) if run.is_active else 0
        projected = usd + usd_for(seconds=remaining * step_s, units=units, price=price)
    gain = pass_rate_gain_points(run_id=run.pk)
    per_point = (usd / Decimal(str(gain))).quantize(Decimal("0.0001")) if gain and gain > 0 else None
    return Projection(
        usd=usd,
        gpu_hours=cost.gpu_hours if cost else 0.0,
        budget_usd=float(run.config.get("budget_usd") or 0),
        projected_usd=projected,
        gain_points=gain,
        usd_per_point=per_point,
    )


# --- the dashboard ---


def _entries(*, user: User, since: dt.date, until: dt.date | None = None) -> QuerySet[CostEntry]:
    """The ledger rows of the period (`until` included; None: up to today) for the runs of the user's
    teams (all of them for a superuser)."""
    entries = CostEntry.objects.filter(team_filter(user=user, field="run__team_id"), day__gte=since)
    return entries if until is None else entries.filter(day__lte=until)


def _spend_grouped(
    *, user: User, since: dt.date, until: dt.date | None, by: str, field: str, order: str
) -> list[dict[str, Any]]:
    """Dollars, GPU-hours and runs of the period, one row per value of `field`, named `by`."""
    entries = _entries(user=user, since=since, until=until)
    rows = (
        (entries.values(by) if by == field else entries.values(**{by: F(field)}))
        .annotate(usd=Sum("usd"), gpu_hours=Sum("gpu_hours"), runs=Count("run", distinct=True))
        .order_by(order)
    )
    return [dict(row) for row in rows]


def spend_by_day(*, user: User, since: dt.date, until: dt.date | None = None) -> list[dict[str, Any]]:
    return _spend_grouped(user=user, since=since, until=until, by="day", field="day", order="day")


def spend_by_user(*, user: User, since: dt.date, until: dt.date | None = None) -> list[dict[str, Any]]:
    return _spend_grouped(
        user=user, since=since, until=until, by="user", field="run__created_by__username", order="-usd"
    )


def spend_by_team(*, user: User, since: dt.date, until: dt.date | None = None) -> list[dict[str, Any]]:
    return _spend_grouped(
        user=user, since=since, until=until, by="team", field="run__team__name", order="-usd"
    )


def spend_by_pool(*, user: User, since: dt.date, until: dt.date | None = None) -> list[dict[str, Any]]:
    return _spend_grouped(user=user, since=since, until=until, by="pool", field="run__pool", order="-usd")


def spend_top_runs(
    *, user: User, since: dt.date, until: dt.date | None = None, limit: int | None = 20
) -> list[dict[str, Any]]:
    """The costliest runs of the period with their pass-rate gains and dollars per point gained (every
    run of the period with `limit` None: the API's spend by run)."""
    top = (
        _entries(user=user, since=since, until=until)
        .values(
            "run_id",
            name=F("run__name"),
            user=F("run__created_by__username"),
            pool=F("run__pool"),
            status=F("run__status"),
            stop_cause=F("run__stop_cause"),
        )
        .annotate(usd=Sum("usd"), gpu_hours=Sum("gpu_hours"))
        .order_by("-usd", "run_id")[:limit]
    )
    rows: list[dict[str, Any]] = [dict(row) for row in top]
    for row in rows:
        row["status_label"] = status_label(row["status"], row.pop("stop_cause"))
        gain = pass_rate_gain_points(run_id=row["run_id"])
        row["gain_points"] = gain
        row["usd_per_point"] = row["usd"] / Decimal(str(gain)) if gain and gain > 0 else None
        # A repository run's resolve rate and dollars per resolved task (None: not one, or none resolved).
        stats = run_resolve_stats(run=Run.objects.get(pk=row["run_id"]))
        row["resolve_rate"] = stats.resolve_rate if stats else None
        row["usd_per_resolved"] = stats.usd_per_resolved if stats else None
        row["resolved_source"] = stats.source if stats else ""
    return rows


CSV_HEADER = ("day", "run_id", "run_name", "user", "team", "pool", "status", "usd", "gpu_hours")


def spend_csv_rows(*, user: User, since: dt.date, until: dt.date | None = None) -> Iterator[tuple[Any, ...]]:
    """Every ledger row of the period, oldest first, read in chunks (for a streamed CSV)."""
    rows = (
        _entries(user=user, since=since, until=until)
        .order_by("day", "run_id")
        .values_list(
            "day",
            "run_id",
            "run__name",
            "run__created_by__username",
            "run__team__name",
            "run__pool",
            "run__status",
            "usd",
            "gpu_hours",
        )
    )
    yield from rows.iterator(chunk_size=2000)
