"""Many series read at once, for the compare page: what metric_series_bounded answers for one series,
for up to thousands of (run, key) pairs in a handful of statements instead of two or three per series.

A compare page of 10 runs × 20 panels is 200 series; one round trip each is most of its server time
(bench/compare_page.py). Here: one statement for every series' first and last step (two index probes
each, as scalar subqueries: a GROUP BY would read every point), one for the rollups of all the long
series, one for the points of all the short ones, per chunk of pairs. The answers are the same as
metric_series_bounded's, point for point (tests/runs/test_metric_batch.py); the rare series that needs
the slow path (longer than the widest rollups allow, or written around the rollups) takes it alone.
"""

from collections.abc import Iterator, Sequence
from typing import TypeVar

from django.db import connection

from runs.metric_store import POINTS_PER_BUCKET, ROLLUP_WIDTHS, metric_series_bounded

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
    bounds: dict[Pair, tuple[int, int]] = {}
    with connection.cursor() as cursor:
        for chunk in _chunks(pairs):
            sql = " UNION ALL ".join([_BOUNDS_TERM] * len(chunk))
            params = [v for i, (run_id, key) in enumerate(chunk) for v in (i, run_id, key, run_id, key)]
            cursor.execute(sql, params)
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
        found: dict[Pair, list[tuple[int, ...]]] = {}
        for chunk in _chunks(rolled):
            sql = (
                "SELECT run_id, key, bucket, first_step, first_value, min_step, min_value, max_step, "  # noqa: S608
                "max_value, last_step, last_value, n FROM runs_metricrollup WHERE "
                + " OR ".join([_ROLLUP_TERM] * len(chunk))
            )
            cursor.execute(sql, [v for (run_id, key), *span in chunk for v in (run_id, key, *span)])
            for run_id, key, *row in cursor.fetchall():
                found.setdefault((run_id, key), []).append(tuple(row))
    for pair, *_ in rolled:
        if rows := found.get(pair):
            out[pair] = _from_rollups(sorted(rows))
        else:  # points written around the rollups (a bulk load, an old run): the one-series path
            slow.append(pair)
    for run_id, key in slow:
        out[(run_id, key)] = metric_series_bounded(run_id=run_id, key=key, max_points=max_points)
    return out


def _from_rollups(rows: list[tuple[int, ...]]) -> Bounded:
    """As metric_series_bounded draws rollups: each bucket's first, min, max and last point, once each."""
    points: list[list[float]] = []
    reduced = False
    for _, fs, fv, ns, nv, xs, xv, ls, lv, n in rows:
        seen: dict[int, float] = {}
        for step, value in ((fs, fv), (ns, nv), (xs, xv), (ls, lv)):
            seen.setdefault(int(step), value)
        points.extend([step, seen[step]] for step in sorted(seen))
        reduced = reduced or n > len(seen)
    return points, reduced
