"""Reads of the compare page: the run picker's list, and the metrics of many runs in one answer (the
chart script's one request for up to 100 runs × the keys it shows, and the metric picker's keys)."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, QuerySet

from runs.metric_batch import metric_series_many
from runs.models import Run, RunMetricKey
from runs.selectors import run_list_filtered, run_list_for_user

# Points in one answer, all series together: 100 runs × 20 panels at 2,000 points each would be a
# 4,000,000-point JSON document, more than a browser draws usefully. Past it each series gets less.
COMPARE_POINTS_BUDGET = 1_000_000
COMPARE_DEFAULT_POINTS = 1_000
COMPARE_KEYS_LISTED = 1_000
# Rows the picker lists at once: search or filter to find others.
PICKER_ROWS = 200


def compare_runs_visible(*, user: User, run_ids: Sequence[int]) -> list[int]:
    """The ids of `run_ids` the user may see, in the order asked."""
    seen = set(run_list_for_user(user=user).filter(pk__in=run_ids).values_list("pk", flat=True))
    return [run_id for run_id in run_ids if run_id in seen]


@dataclass(frozen=True)
class CompareSeries:
    runs: list[int]  # the runs asked for that the user may see, in the order asked
    series: dict[str, dict[str, list[list[float]]]]  # {key: {run id: [[step, value], ...]}}
    truncated: bool  # some series were downsampled (every bucket's min and max kept)
    max_points: int  # the points each series was cut to (less than asked past the budget)


def compare_metric_read(
    *, user: User, run_ids: Sequence[int], keys: Sequence[str], max_points: int | None = None
) -> CompareSeries:
    """Every (run, key) series of the visible runs, each bounded as the run page's (min/max kept), in a
    few statements whatever the number of series (runs.metric_batch)."""
    runs = compare_runs_visible(user=user, run_ids=run_ids)
    keys = list(dict.fromkeys(keys))
    asked = COMPARE_DEFAULT_POINTS if max_points is None else max_points
    budget = max(10, min(asked, COMPARE_POINTS_BUDGET // max(1, len(runs) * len(keys))))
    read = metric_series_many(pairs=[(r, k) for k in keys for r in runs], max_points=budget)
    series: dict[str, dict[str, list[list[float]]]] = {key: {} for key in keys}
    truncated = False
    for (run_id, key), (points, reduced) in read.items():
        if points:
            series[key][str(run_id)] = points
        truncated = truncated or reduced
    return CompareSeries(runs=runs, series=series, truncated=truncated, max_points=budget)


def compare_metric_keys(*, user: User, run_ids: Sequence[int], q: str = "") -> list[dict[str, Any]]:
    """The keys any of the visible runs logged (from the key index kept at ingest, never the points),
    each with how many of the runs logged it; by key, the first COMPARE_KEYS_LISTED."""
    runs = compare_runs_visible(user=user, run_ids=run_ids)
    indexed = RunMetricKey.objects.filter(run_id__in=runs)
    if q:
        indexed = indexed.filter(key__icontains=q)
    counted = indexed.values("key").annotate(runs=Count("run_id")).order_by("key")
    rows = sorted(counted[:COMPARE_KEYS_LISTED], key=lambda row: row["key"])  # by code point
    return [{"key": row["key"], "runs": row["runs"]} for row in rows]


@dataclass(frozen=True)
class PickerList:
    runs: list[Run]  # the selected runs first, then the newest that match, up to PICKER_ROWS of them
    unlisted: int  # runs that match but are not listed: search or filter to find them


def compare_picker_runs(
    *, user: User, selected: Sequence[int], q: str = "", status: str = "", dataset_id: int | None = None
) -> PickerList:
    """The picker's rows: the runs already selected (kept listed whatever the search, so that a search
    does not lose them), then the newest runs matching the search and filters, with their latest pass
    rate (the runs list's annotations)."""
    chosen: QuerySet[Run] = run_list_filtered(user=user).filter(pk__in=selected).select_related("model")
    picked = {run.pk: run for run in chosen}
    others = run_list_filtered(user=user, q=q, status=status, dataset_id=dataset_id).exclude(pk__in=picked)
    rest = list(others.select_related("model")[:PICKER_ROWS])
    unlisted = others.count() - len(rest) if len(rest) == PICKER_ROWS else 0
    return PickerList(runs=[picked[i] for i in selected if i in picked] + rest, unlisted=unlisted)
