"""Many series read at once, for the compare page: what metric_series_bounded answers for one series,
for up to thousands of (run, key) pairs in a handful of statements instead of two or three per series.

A compare page of 10 runs × 20 panels is 200 series; one round trip each is most of its server time
(bench/compare_page.py). Here: one statement for every series' first and last step (from the widest
rollups, a row per series; a series written around the rollups by two index probes of its points, as
scalar subqueries: a GROUP BY would read every point), one for the rollups of all the long series, one
for the points of all the short ones, per chunk of pairs. The answers are metric_series_bounded's,
point for point (tests/runs/test_metric_batch.py); the rare series that needs the slow path (longer than
the widest rollups allow, or written around the rollups) takes it alone.
"""

from collections.abc import Iterable, Iterator, Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Max, Min

from runs.metric_store import POINTS_PER_BUCKET, ROLLUP_WIDTHS, metric_series_bounded
from runs.models import MetricPoint, MetricRollup

Pair = tuple[int, str]  # (run id, metric key)
Bounded = tuple[list[list[float]], bool]  # points, and whether some were left out

# Pairs per statement: five parameters each stay under SQLite's oldest limit of 999.
_PAIRS_PER_STATEMENT = 150

_BOUNDS_TERM = (
    "SELECT %s, (SELECT MIN(step) FROM runs_metricpoint WHERE run_id = %s AND key = %s), "
    "(SELECT MAX(step) FROM runs_metricpoint WHERE run_id = %s AND key = %s)"
)
_ROLLUP_TERM = "(run_id = %s AND key = %s AND width = %s AND bucket >= %s AND bucket <= %s)"
_POINT_TERM = "(run_id = %s AND key = %s)"
T = TypeVar("T")


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _PAIRS_PER_STATEMENT):
        yield items[start : start + _PAIRS_PER_STATEMENT]


def metric_series_many(*, pairs: Sequence[Pair], max_points: int) -> dict[Pair, Bounded]:
    """Each pair's series in at most about `max_points` points, min and max of every bucket kept, as
    metric_series_bounded answers it; a pair without points is left out."""
    pairs = list(dict.fromkeys(pairs))
    wanted = set(pairs)
    # Each series' first and last step from its widest rollups (a row or two per series), and only for
    # a series without rollups from its points (two index probes).
    widest = MetricRollup.objects.filter(
        width=ROLLUP_WIDTHS[-1], run_id__in={r for r, _ in pairs}, key__in={k for _, k in pairs}
    )
    spans = widest.values("run_id", "key").annotate(lo=Min("first_step"), hi=Max("last_step"))
    bounds: dict[Pair, tuple[int, int]] = {
        (row.run_id, row.key): (row.lo, row.hi)
        for row in spans.values_list("run_id", "key", "lo", "hi", named=True)
        if (row.run_id, row.key) in wanted
    }
    unrolled = [pair for pair in pairs if pair not in bounds]
    with connection.cursor() as cursor:
        for chunk in _chunks(unrolled):
            sql = " UNION ALL ".join([_BOUNDS_TERM] * len(chunk))
            cursor.execute(sql, [v for i, (r, k) in enumerate(chunk) for v in (i, r, k, r, k)])
            for i, lo, hi in cursor.fetchall():
                if lo is not None:
                    bounds[chunk[i]] = (lo, hi)
        raw: list[Pair] = []
        rolled: list[tuple[Pair, int, int, int]] = []  # pair, width, first and last bucket
        slow: list[Pair] = []
        buckets_allowed = max(1, max_points // POINTS_PER_BUCKET)
        for pair, (lo, hi) in bounds.items():
            if hi - lo + 1 <= max_points:  # at most one point per step: the whole series fits
                raw.append(pair)
                continue
            width = next((w for w in ROLLUP_WIDTHS if (hi // w - lo // w + 1) <= buckets_allowed), None)
            if width is None:
                slow.append(pair)
            else:
                rolled.append((pair, width, lo // width, hi // width))
        out: dict[Pair, Bounded] = {pair: ([], False) for pair in raw}
        for chunk in _chunks(raw):
            sql = (
                "SELECT run_id, key, step, value FROM runs_metricpoint WHERE "  # noqa: S608 (constants)
                + " OR ".join([_POINT_TERM] * len(chunk))
                + " ORDER BY run_id, key, step, id"
            )
            cursor.execute(sql, [v for pair in chunk for v in pair])
            for run_id, key, step, value in cursor.fetchall():
                out[(run_id, key)][0].append([step, value])
        for ranges in _chunks(rolled):
            sql = (
                "SELECT run_id, key, bucket, first_step, first_value, min_step, min_value, max_step, "  # noqa: S608
                "max_value, last_step, last_value, n FROM runs_metricrollup WHERE "
                + " OR ".join([_ROLLUP_TERM] * len(ranges))
                + " ORDER BY run_id, key, bucket"
            )
            terms: list[int | str] = []
            for (run_id, key), width, first, last in ranges:
                terms += [run_id, key, width, first, last]
            cursor.execute(sql, terms)
            for pair, rows in groupby(cursor.fetchall(), key=itemgetter(0, 1)):
                out[pair] = _from_rollups(rows)
    for pair, *_ in rolled:
        if pair not in out:  # points written around the rollups (a bulk load, an old run): one by one
            slow.append(pair)
    for run_id, key in slow:
        out[(run_id, key)] = metric_series_bounded(run_id=run_id, key=key, max_points=max_points)
    return out


def _from_rollups(rows: Iterable[tuple[Any, ...]]) -> Bounded:
    """As metric_series_bounded draws rollups (rows by bucket): each bucket's first, min, max and last
    point by step, a step once (first, then min, then max win a tie, as there). A bucket's first and
    last steps are its smallest and largest, so only min and max need ordering. Written out branch by
    branch: this is the hot loop of a 200-series read (tens of thousands of buckets)."""
    points: list[list[float]] = []
    append = points.append
    reduced = False
    for _, _, _, fs, fv, ns, nv, xs, xv, ls, lv, n in rows:
        if ns > xs:
            ns, nv, xs, xv = xs, xv, ns, nv
        append([fs, fv])
        kept, prev = 1, fs
        if ns != prev:
            append([ns, nv])
            kept, prev = kept + 1, ns
        if xs != prev:
            append([xs, xv])
            kept, prev = kept + 1, xs
        if ls != prev:
            append([ls, lv])
            kept += 1
        if n > kept:
            reduced = True
    return points, reduced


_LAST_TERM = (
    "SELECT %s, (SELECT value FROM runs_metricpoint WHERE run_id = %s AND key = %s ORDER BY step DESC, id "
    "DESC LIMIT 1)"
)


def metric_last_and_max(*, run_ids: Sequence[int], key: str) -> dict[int, tuple[float, float]]:
    """Each run's last value of `key` and its largest, for runs that logged it, in two or three
    statements however long the series: the last by one index probe each, the largest from the widest
    rollups (one bucket per 262,144 steps) or, for a series written around them, from its points."""
    run_ids = list(dict.fromkeys(run_ids))
    last: dict[int, float] = {}
    with connection.cursor() as cursor:
        for chunk in _chunks(run_ids):
            cursor.execute(
                " UNION ALL ".join([_LAST_TERM] * len(chunk)),
                [v for i, run_id in enumerate(chunk) for v in (i, run_id, key)],
            )
            last.update({chunk[i]: value for i, value in cursor.fetchall() if value is not None})
    logged = list(last)
    widest = MetricRollup.objects.filter(run_id__in=logged, key=key, width=ROLLUP_WIDTHS[-1])
    largest = dict(widest.values("run_id").annotate(top=Max("max_value")).values_list("run_id", "top"))
    if unrolled := [run_id for run_id in logged if run_id not in largest]:
        points = MetricPoint.objects.filter(run_id__in=unrolled, key=key)
        largest.update(points.values("run_id").annotate(top=Max("value")).values_list("run_id", "top"))
    return {run_id: (value, largest[run_id]) for run_id, value in last.items()}
