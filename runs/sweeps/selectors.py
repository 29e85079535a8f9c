"""Reads of sweeps that the pages and the API share: what a user may see, each run's params, status,
progress and pass rates, the best run, and the parallel-coordinates plot's data."""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max, OuterRef, QuerySet, Subquery
from django.http import Http404

from controlplane.accounts.models import Role
from controlplane.accounts.selectors import role_allows, role_of, team_filter
from runs.models import MetricPoint, Run, RunMetricKey
from runs.sweeps.models import Sweep, SweepHalt, SweepRun
from workers.spec import Metric

TERMINAL = ("succeeded", "failed", "cancelled", "budget_stopped", "lost")


def sweep_list_for_user(*, user: User) -> QuerySet[Sweep]:
    """The sweeps of the user's teams, newest first, with their run counts."""
    return (
        Sweep.objects.filter(team_filter(user=user))
        .select_related("team", "created_by", "dataset_version__dataset")
        .annotate(run_count=Count("sweep_runs"))
        .order_by("-created_at", "-pk")
    )


def sweep_get_for_user(*, user: User, sweep_id: int, at_least: str = Role.VIEWER) -> Sweep:
    """A sweep the user may see (else 404: another team's sweep does not exist for them) and, with
    `at_least`, act on (else 403)."""
    sweep = sweep_list_for_user(user=user).filter(pk=sweep_id).first()
    if sweep is None:
        raise Http404(f"no sweep #{sweep_id}")
    if at_least != Role.VIEWER and not role_allows(role_of(user=user, team_id=sweep.team_id), at_least):
        raise PermissionDenied(f"this needs the {at_least} role in team {sweep.team}")
    return sweep


def sweep_for_run(*, run_id: int) -> Sweep | None:
    """The sweep a run belongs to (the run page's link), if any."""
    return Sweep.objects.filter(sweep_runs__run_id=run_id).first()


@dataclass(frozen=True)
class SweepRow:
    index: int
    run: Run
    params: dict[str, Any]
    steps: int
    best: float | None  # the best pass rate the run logged
    final: float | None  # its latest
    halted: str  # why successive halving stopped it ("" if it did not)

    @property
    def progress_percent(self) -> int:
        if not self.steps or self.run.last_step is None:
            return 0
        return min(100, round(100 * (self.run.last_step + 1) / self.steps))


def sweep_rows(*, sweep: Sweep) -> list[SweepRow]:
    members = list(SweepRun.objects.filter(sweep=sweep).select_related("run").order_by("index"))
    run_ids = [m.run_id for m in members]
    best = dict(
        MetricPoint.objects.filter(run_id__in=run_ids, key=Metric.PASS_RATE)
        .values("run_id")
        .annotate(best=Max("value"))
        .values_list("run_id", "best")
    )
    final = _finals(run_ids=run_ids, key=Metric.PASS_RATE)
    halted = dict(SweepHalt.objects.filter(rung__sweep=sweep).values_list("run_id", "reason"))
    return [
        SweepRow(
            index=m.index,
            run=m.run,
            params=m.params,
            steps=int(m.run.config.get("steps", 0)),
            best=best.get(m.run_id),
            final=final.get(m.run_id),
            halted=halted.get(m.run_id, ""),
        )
        for m in members
    ]


def _finals(*, run_ids: list[int], key: str) -> dict[int, float]:
    """Each run's latest value of `key`: its point at the key index's last step, in one query."""
    at_last = MetricPoint.objects.filter(run_id=OuterRef("run_id"), key=key, step=OuterRef("last_step"))
    rows = (
        RunMetricKey.objects.filter(run_id__in=run_ids, key=key)
        .annotate(value=Subquery(at_last.order_by("-pk").values("value")[:1]))
        .values_list("run_id", "value")
    )
    return {run_id: value for run_id, value in rows if value is not None}


def sweep_best(rows: list[SweepRow]) -> SweepRow | None:
    """The run with the best pass rate (its final one breaks a tie); None before any has one."""
    scored = [row for row in rows if row.best is not None]
    if not scored:
        return None
    return max(scored, key=lambda row: (row.best, row.final if row.final is not None else -1.0, -row.index))


def sweep_axis_names(*, sweep: Sweep) -> list[str]:
    return list(sweep.axes)


def sweep_plot(*, sweep: Sweep, rows: list[SweepRow], best: SweepRow | None) -> dict[str, Any]:
    """The parallel-coordinates plot's data (static/js/sweep.js): one axis per swept setting, then best
    and final pass rate; one line per run."""
    names = sweep_axis_names(sweep=sweep)
    return {
        "axes": [*names, "best pass_rate", "final pass_rate"],
        "runs": [
            {
                "id": row.run.pk,
                "name": row.run.name,
                "values": [*(row.params.get(n) for n in names), row.best, row.final],
                "best": best is not None and row.index == best.index,
                "halted": bool(row.halted),
            }
            for row in rows
        ],
    }


def sweep_state_label(*, sweep: Sweep, rows: list[SweepRow]) -> str:
    """Active, Stopped, or Finished once every run has ended."""
    if sweep.status == "stopped":
        return "Stopped"
    if rows and all(row.run.status in TERMINAL for row in rows):
        return "Finished"
    return "Active"
