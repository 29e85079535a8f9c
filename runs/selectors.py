from collections.abc import Sequence
from typing import Any

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from runs.metric_store import metric_series_read
from runs.models import Generation, LogLine, MetricPoint, Run

CHART_KEYS = ("reward/mean", "pass_rate", "loss", "time/step_s")


COMPARE_KEYS = (
    "reward/mean",
    "pass_rate",
    "loss",
    "kl",
    "entropy",
    "length/mean",
    "time/step_s",
    "throughput/tokens_per_s",
)
RUN_SORTS = {
    "newest": ("-created_at", "-pk"),
    "oldest": ("created_at", "pk"),
    "name": ("name", "-pk"),
    "status": ("status", "-pk"),
    "step": ("-last_step", "-pk"),
    "pass_rate": ("-latest_pass_rate", "-pk"),
}


def run_list() -> QuerySet[Run]:
    return Run.objects.select_related("dataset_version__dataset", "created_by")


def _latest(key: str) -> Subquery:
    return Subquery(
        MetricPoint.objects.filter(run=OuterRef("pk"), key=key).order_by("-step", "-pk").values("value")[:1]
    )


def run_list_filtered(
    *, q: str = "", status: str = "", dataset_id: int | None = None, sort: str = "newest"
) -> QuerySet[Run]:
    """The runs list: text search over name and dataset, status and dataset filters, latest key metrics."""
    runs = run_list().annotate(latest_pass_rate=_latest("pass_rate"), latest_reward=_latest("reward/mean"))
    if q:
        runs = runs.filter(
            Q(name__icontains=q)
            | Q(dataset_version__dataset__name__icontains=q)
            | Q(pk=int(q) if q.isdigit() else None)
        )
    if status:
        runs = runs.filter(status=status)
    if dataset_id:
        runs = runs.filter(dataset_version__dataset_id=dataset_id)
    return runs.order_by(*RUN_SORTS.get(sort, RUN_SORTS["newest"]))


def run_compare_rows(*, run_ids: Sequence[int]) -> list[dict[str, Any]]:
    """One summary row per run, in the order asked: best and final pass rate, steps, wall time."""
    runs = {run.pk: run for run in run_list().filter(pk__in=run_ids)}
    rows = []
    for run_id in run_ids:
        run = runs.get(run_id)
        if run is None:
            continue
        rates = list(
            MetricPoint.objects.filter(run_id=run_id, key="pass_rate")
            .order_by("step", "pk")
            .values_list("value", flat=True)
        )
        end = run.finished_at or (timezone.now() if run.started_at else None)
        rows.append(
            {
                "run": run,
                "best_pass_rate": max(rates) if rates else None,
                "final_pass_rate": rates[-1] if rates else None,
                "steps": (run.last_step + 1) if run.last_step is not None else 0,
                "wall_hours": (end - run.started_at).total_seconds() / 3600
                if end and run.started_at
                else None,
            }
        )
    return rows


def config_differences(configs: Sequence[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """Only the settings that differ between runs, as (key, [value per run]); a missing key shows as None."""
    keys = sorted({key for config in configs for key in config})
    table = [(key, [config.get(key) for config in configs]) for key in keys]
    return [(key, values) for key, values in table if len({repr(v) for v in values}) > 1]


def run_metric_series(
    *,
    run_id: int,
    after_step: int = -1,
    until_step: int | None = None,
    keys: Sequence[str] = (),
    max_points: int | None = None,
) -> dict[str, list[list[float]]]:
    """Points in (after_step, until_step], as {key: [[step, value], ...]} ordered by step; with
    `max_points`, each series is cut to about that many with every bucket's min and max kept."""
    rows = MetricPoint.objects.filter(run_id=run_id, step__gt=after_step)
    if until_step is not None:
        rows = rows.filter(step__lte=until_step)
    if keys:
        rows = rows.filter(key__in=keys)
    if max_points is not None:
        present = keys or sorted(set(rows.values_list("key", flat=True).distinct()))
        series = {
            key: metric_series_read(
                run_id=run_id, key=key, after_step=after_step, until_step=until_step, max_points=max_points
            )
            for key in present
        }
        return {key: points for key, points in series.items() if points}
    raw: dict[str, list[list[float]]] = {}
    for key, step, value in rows.order_by("key", "step", "pk").values_list("key", "step", "value"):
        raw.setdefault(key, []).append([step, value])
    return raw


def run_latest_metrics(*, run_id: int, keys: tuple[str, ...] = CHART_KEYS) -> dict[str, float]:
    latest: dict[str, float] = {}
    for key in keys:
        value = (
            MetricPoint.objects.filter(run_id=run_id, key=key)
            .order_by("-step", "-pk")
            .values_list("value", flat=True)
        ).first()
        if value is not None:
            latest[key] = value
    return latest


def run_generations(*, run_id: int, limit: int = 20) -> QuerySet[Generation]:
    return Generation.objects.filter(run_id=run_id).order_by("-step", "passed", "-pk")[:limit]


def run_log_tail(*, run_id: int, limit: int = 50) -> list[LogLine]:
    return list(reversed(LogLine.objects.filter(run_id=run_id).order_by("-pk")[:limit]))


def run_summary(run: Run) -> dict[str, Any]:
    return {"id": run.pk, "status": run.status, "last_step": run.last_step}
