from typing import Any

from django.db.models import QuerySet

from runs.models import Generation, LogLine, MetricPoint, Run

CHART_KEYS = ("reward/mean", "pass_rate", "loss", "time/step_s")


def run_list() -> QuerySet[Run]:
    return Run.objects.select_related("dataset_version__dataset", "created_by")


def run_metric_series(*, run_id: int, after_step: int = -1) -> dict[str, list[list[float]]]:
    """Every point after `after_step`, as {key: [[step, value], ...]} ordered by step."""
    series: dict[str, list[list[float]]] = {}
    rows = (
        MetricPoint.objects.filter(run_id=run_id, step__gt=after_step)
        .order_by("key", "step", "pk")
        .values_list("key", "step", "value")
    )
    for key, step, value in rows:
        series.setdefault(key, []).append([step, value])
    return series


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
