"""Writing and reading metric points: the volume path of the ingest API and the charts.

Points are written on PostgreSQL with COPY (an order of magnitude faster than INSERT for thousands of
rows) or, for a small batch such as one training step, with one INSERT that carries the rollups too (one
round trip), and with bulk_create elsewhere. Each write also folds the points into rollups: per bucket of
`width` steps, the count, the extremes with their steps, and the first and last points. A chart of a
long series reads rollups at the finest width that fits its point budget, so it reads a few thousand
rows whatever the series' length, and every bucket's min and max survive (a reward spike or a KL
blow-up shows at any zoom).
"""

import datetime as dt
import itertools
from collections.abc import Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from django.db import connection, transaction
from django.db.models import F, Func, Max, Min, Q, QuerySet, TextField, Value
from django.db.models.functions import Mod

from runs.models import MetricPoint, MetricRollup, RunMetricKey

COPY_SQL = "COPY runs_metricpoint (run_id, key, step, value, wall_time) FROM STDIN"
COPY_TYPES = ["bigint", "varchar", "integer", "float8", "timestamptz"]
ROLLUP_WIDTHS = (64, 512, 4096, 32768, 262144)
assert all(wide % narrow == 0 for narrow, wide in itertools.pairwise(ROLLUP_WIDTHS)), "nested widths"
# Up to this many points are written with the rollups in one INSERT; more, with COPY (faster per row).
SMALL_BATCH = 250
# A rollup bucket is drawn as up to four points: first, min, max, last.
POINTS_PER_BUCKET = 4

Row = tuple[int, str, int, float, dt.datetime]


@dataclass
class _Acc:
    n: int
    min_value: float
    min_step: int
    max_value: float
    max_step: int
    first_step: int
    first_value: float
    last_step: int
    last_value: float

    def add(self, step: int, value: float) -> None:
        self.n += 1
        if value < self.min_value:
            self.min_value, self.min_step = value, step
        if value > self.max_value:
            self.max_value, self.max_step = value, step
        if step < self.first_step:
            self.first_step, self.first_value = step, value
        if step >= self.last_step:
            self.last_step, self.last_value = step, value

    def copy(self) -> "_Acc":
        return _Acc(
            self.n,
            self.min_value,
            self.min_step,
            self.max_value,
            self.max_step,
            self.first_step,
            self.first_value,
            self.last_step,
            self.last_value,
        )

    def merge(self, other: "_Acc") -> None:
        self.n += other.n
        if other.min_value < self.min_value:
            self.min_value, self.min_step = other.min_value, other.min_step
        if other.max_value > self.max_value:
            self.max_value, self.max_step = other.max_value, other.max_step
        if other.first_step < self.first_step:
            self.first_step, self.first_value = other.first_step, other.first_value
        if other.last_step >= self.last_step:
            self.last_step, self.last_value = other.last_step, other.last_value


def metric_points_write(rows: Sequence[Row]) -> None:
    """Store the points, one per (run, key, step): a point replaces the one stored at its step (a resumed
    attempt re-runs the steps after its checkpoint, which the lost attempt may have posted), and of two
    in `rows` the later wins. The rollups of a bucket that lost a point are rebuilt (`_rollups_rebuild`).

    Writers of one series must not race: ingest holds the run's row lock (runs/ingest.py), a cost tick
    the run's cost row (runs/spend). There is no unique constraint to catch one that does: COPY, the
    volume path, cannot write through one."""
    latest = {(r, k, s): (r, k, s, v, w) for r, k, s, v, w in rows}
    if len(latest) < len(rows):
        rows = list(latest.values())
    if not rows:
        return
    if connection.vendor != "postgresql":
        replaced = _points_delete_sqlite(rows)
        MetricPoint.objects.bulk_create(
            (MetricPoint(run_id=r, key=k, step=s, value=v, wall_time=w) for r, k, s, v, w in rows),
            batch_size=2000,
        )
        with connection.cursor() as cursor:
            cursor.executemany(_UPSERT_SQLITE, _rollup_rows(rows))
            cursor.executemany(_KEYS_UPSERT_SQLITE, list(zip(*_key_columns(rows), strict=True)))
        _rollups_rebuild(replaced)
        return
    rollups = [list(column) for column in zip(*_rollup_rows(rows), strict=True)]
    connection.ensure_connection()
    # psycopg's own cursor, binding parameters on the server in binary: arrays of hundreds of numbers
    # cost half as much as the text literals of Django's (client-side binding) cursor.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        if len(rows) <= SMALL_BATCH:
            # A trainer's step (tens of points): the replaced points out, the points and the rollups in,
            # in one round trip.
            points = [list(column) for column in zip(*rows, strict=True)]
            cursor.execute(_WRITE_SMALL_PG, [*points[:3], *points, *rollups, *_key_columns(rows)])
            gone = cursor.fetchone()
            assert gone is not None  # a SELECT of three arrays: always one row
            run_ids, keys, steps = gone
            replaced = list(zip(run_ids, keys, steps, strict=True))
        else:
            spans = _series_spans(rows)
            replaced = _points_delete_pg(cursor, rows, spans)
            with cursor.copy(COPY_SQL + " (FORMAT BINARY)") as copy:  # no text to parse: a quarter faster
                copy.set_types(COPY_TYPES)
                for row in rows:
                    copy.write_row(row)
            cursor.execute(_UPSERT_PG, rollups)
            cursor.execute(_KEYS_UPSERT_PG, _key_columns(rows, spans))
    _rollups_rebuild(replaced)


_DELETE_PG = (
    "DELETE FROM runs_metricpoint p USING unnest(%b::bigint[], %b::varchar[], %b::int[]) AS n(run_id, key, "
    "step) WHERE p.run_id = n.run_id AND p.key = n.key AND p.step = n.step RETURNING p.run_id, p.key, p.step"
)
# The furthest step stored of each series of a batch: one probe of the (run, key, step) index each.
_HIGHS_PG = (
    "SELECT n.run_id, n.key, (SELECT max(p.step) FROM runs_metricpoint p WHERE p.run_id = n.run_id AND "
    "p.key = n.key) FROM unnest(%b::bigint[], %b::varchar[]) AS n(run_id, key)"
)


def _points_delete_pg(
    cursor: psycopg.Cursor[Any], rows: Sequence[Row], spans: dict[tuple[int, str], tuple[int, int]]
) -> list[tuple[int, str, int]]:
    """Delete the stored points at the steps of `rows` (whose series span `spans`), answering which
    there were. A large batch is nearly always past everything stored (a backlog flushed in order): it
    looks up each series' furthest step first, and probes only the points that might be replaced."""
    series = sorted(spans)
    cursor.execute(_HIGHS_PG, [[r for r, _ in series], [k for _, k in series]])
    highs = {(r, k): high for r, k, high in cursor.fetchall() if high is not None}
    if all(spans[ident][0] > high for ident, high in highs.items()):
        return []  # every series of the batch starts past its furthest stored step: nothing to replace
    maybe = [row for row in rows if row[2] <= highs.get((row[0], row[1]), -1)]
    if not maybe:
        return []
    columns = [list(column) for column in zip(*maybe, strict=True)]
    cursor.execute(_DELETE_PG, columns[:3])
    return [(r, k, s) for r, k, s in cursor.fetchall()]


def _points_delete_sqlite(rows: Sequence[Row]) -> list[tuple[int, str, int]]:
    by_series: dict[tuple[int, str], set[int]] = {}
    for run_id, key, step, _, _ in rows:
        by_series.setdefault((run_id, key), set()).add(step)
    replaced: list[tuple[int, str, int]] = []
    for (run_id, key), steps in by_series.items():
        stored = MetricPoint.objects.filter(
            run_id=run_id, key=key, step__gte=min(steps), step__lte=max(steps)
        )
        found = [(pk, step) for pk, step in stored.values_list("pk", "step") if step in steps]
        if found:
            MetricPoint.objects.filter(pk__in=[pk for pk, _ in found]).delete()
            replaced.extend((run_id, key, step) for _, step in found)
    return replaced


def _spans(buckets: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted buckets as runs of consecutive ones, (first, last): one range query each."""
    spans: list[tuple[int, int]] = []
    for bucket in sorted(set(buckets)):
        if spans and bucket == spans[-1][1] + 1:
            spans[-1] = (spans[-1][0], bucket)
        else:
            spans.append((bucket, bucket))
    return spans


_ROLLUP_FIELDS = (
    "n",
    "min_value",
    "min_step",
    "max_value",
    "max_step",
    "first_step",
    "first_value",
    "last_step",
    "last_value",
)


def _rollups_rebuild(replaced: Iterable[tuple[int, str, int]]) -> None:
    """Recompute the rollups of every bucket that held a replaced point: the merge at write time only
    adds (a count, extremes), so a bucket whose point changed holds the old one's count and extremes.
    The finest width from the points (at most ROLLUP_WIDTHS[0] per bucket), each wider one from the
    rebuilt buckets below it: a few hundred rows per series whatever its length, and three statements
    per width for all the batch's series together (a resumed attempt re-runs steps a batch at a time)."""
    width = ROLLUP_WIDTHS[0]
    buckets: dict[tuple[int, str], set[int]] = {}
    for run_id, key, step in replaced:
        buckets.setdefault((run_id, key), set()).add(step // width)
    if not buckets:
        return
    with connection.cursor() as cursor:
        stored: list[tuple[Any, ...]] = []
        for where, params in _under(buckets, factor=width, column="step"):
            sql = f"SELECT run_id, key, step, value FROM runs_metricpoint WHERE {where}"  # noqa: S608
            cursor.execute(sql, params)
            stored.extend(cursor.fetchall())
        accs: dict[tuple[int, str, int], _Acc] = {}
        # In step order, as _rollup_rows sees a series: of equal extremes, the earliest step is kept.
        for run_id, key, step, value in sorted(stored, key=lambda point: point[2]):
            ident = (run_id, key, step // width)
            acc = accs.get(ident)
            if acc is None:
                accs[ident] = _Acc(1, value, step, value, step, step, value, step, value)
            else:
                acc.add(step, value)
        _rollups_put(cursor, buckets, width, accs)
        for wider in ROLLUP_WIDTHS[1:]:
            factor = wider // width
            buckets = {series: {bucket // factor for bucket in held} for series, held in buckets.items()}
            children: list[tuple[Any, ...]] = []
            for where, params in _under(buckets, factor=factor, column="bucket"):
                cursor.execute(_ROLLUPS_UNDER.format(where=where), [width, *params])
                children.extend(cursor.fetchall())
            accs = {}
            for run_id, key, bucket, *fields in sorted(children, key=lambda child: child[2]):
                child = _Acc(*fields)
                merged = accs.get((run_id, key, bucket // factor))
                if merged is None:
                    accs[(run_id, key, bucket // factor)] = child
                else:
                    merged.merge(child)
            _rollups_put(cursor, buckets, wider, accs)
            width = wider


# Spans per statement: 4 parameters each stay under SQLite's oldest limit of 999.
_SPANS_PER_STATEMENT = 200


def _under(
    buckets: dict[tuple[int, str], set[int]], *, factor: int, column: str
) -> Iterator[tuple[str, list[int | str]]]:
    """WHERE clauses for what lies under the buckets: the points (`step`) or the rollups of the width
    below (`bucket`, `factor` of them to each bucket), a range per run of consecutive buckets of a
    series. ORed ranges of the (run, key, ...) indexes, which both databases read as index range scans
    (a join against a list of ranges is planned as a scan of the table)."""
    spans = [
        (run_id, key, lo * factor, (hi + 1) * factor)
        for (run_id, key), held in buckets.items()
        for lo, hi in _spans(held)
    ]
    term = f"(run_id = %s AND key = %s AND {column} >= %s AND {column} < %s)"
    for start in range(0, len(spans), _SPANS_PER_STATEMENT):
        chunk = spans[start : start + _SPANS_PER_STATEMENT]
        yield " OR ".join([term] * len(chunk)), [value for span in chunk for value in span]


_ROLLUPS_UNDER = (
    f"SELECT run_id, key, bucket, {', '.join(_ROLLUP_FIELDS)} FROM runs_metricrollup "  # noqa: S608
    "WHERE width = %s AND ({where})"
)


def _rollups_put(
    cursor: Any, buckets: dict[tuple[int, str], set[int]], width: int, accs: dict[tuple[int, str, int], _Acc]
) -> None:
    for where, params in _under(buckets, factor=1, column="bucket"):
        sql = f"DELETE FROM runs_metricrollup WHERE width = %s AND ({where})"  # noqa: S608
        cursor.execute(sql, [width, *params])
    MetricRollup.objects.bulk_create(
        MetricRollup(run_id=run_id, key=key, width=width, bucket=bucket, **vars(acc))
        for (run_id, key, bucket), acc in accs.items()
    )


def _series_spans(rows: Sequence[Row]) -> dict[tuple[int, str], tuple[int, int]]:
    """Each series of the batch, (run, key), with its first and furthest step, in one pass."""
    spans: dict[tuple[int, str], tuple[int, int]] = {}
    for run_id, key, step, _, _ in rows:
        span = spans.get((run_id, key))
        if span is None:
            spans[(run_id, key)] = (step, step)
        elif not span[0] <= step <= span[1]:
            spans[(run_id, key)] = (min(span[0], step), max(span[1], step))
    return spans


def _key_columns(
    rows: Sequence[Row], spans: dict[tuple[int, str], tuple[int, int]] | None = None
) -> list[list[Any]]:
    """The batch's (run, key, furthest step) as three columns, for the key index's upsert."""
    spans = _series_spans(rows) if spans is None else spans
    return [[r for r, _ in spans], [k for _, k in spans], [hi for _, hi in spans.values()]]


def _rollup_rows(rows: Sequence[Row]) -> list[tuple[int | str | float, ...]]:
    # The finest width from the points; each wider one from the buckets of the width below it (every
    # width is a multiple of the one before), so each point is looked at once, not once per width.
    finest: dict[tuple[int, str, int], _Acc] = {}
    width = ROLLUP_WIDTHS[0]
    for run_id, key, step, value, _ in rows:
        ident = (run_id, key, step // width)
        acc = finest.get(ident)
        if acc is None:
            finest[ident] = _Acc(1, value, step, value, step, step, value, step, value)
        else:
            acc.add(step, value)
    accs: dict[tuple[int, str, int, int], _Acc] = {(r, k, width, b): a for (r, k, b), a in finest.items()}
    level = finest
    for wider in ROLLUP_WIDTHS[1:]:
        factor = wider // width
        up: dict[tuple[int, str, int], _Acc] = {}
        for (run_id, key, bucket), acc in level.items():
            ident = (run_id, key, bucket // factor)
            merged = up.get(ident)
            if merged is None:
                up[ident] = acc.copy()
            else:
                merged.merge(acc)
        accs.update({(r, k, wider, b): a for (r, k, b), a in up.items()})
        level, width = up, wider
    return [
        (
            *ident,
            a.n,
            a.min_value,
            a.min_step,
            a.max_value,
            a.max_step,
            a.first_step,
            a.first_value,
            a.last_step,
            a.last_value,
        )
        for ident, a in accs.items()
    ]


_COLUMNS = (
    "run_id, key, width, bucket, n, min_value, min_step, max_value, max_step, first_step, first_value, "
    "last_step, last_value"
)
# Every right-hand side below reads the row as it was before this statement: the order of SET is free.
_MERGE = """
ON CONFLICT (run_id, key, width, bucket) DO UPDATE SET
  n = r.n + excluded.n,
  min_step = CASE WHEN excluded.min_value < r.min_value THEN excluded.min_step ELSE r.min_step END,
  min_value = {least}(r.min_value, excluded.min_value),
  max_step = CASE WHEN excluded.max_value > r.max_value THEN excluded.max_step ELSE r.max_step END,
  max_value = {greatest}(r.max_value, excluded.max_value),
  first_step = CASE WHEN excluded.first_step < r.first_step THEN excluded.first_step ELSE r.first_step END,
  first_value = CASE WHEN excluded.first_step < r.first_step THEN excluded.first_value ELSE r.first_value END,
  last_step = CASE WHEN excluded.last_step >= r.last_step THEN excluded.last_step ELSE r.last_step END,
  last_value = CASE WHEN excluded.last_step >= r.last_step THEN excluded.last_value ELSE r.last_value END
"""
_INSERT_POINTS_PG = (
    "WITH points AS (INSERT INTO runs_metricpoint (run_id, key, step, value, wall_time) SELECT * FROM "
    "unnest(%b::bigint[], %b::varchar[], %b::int[], %b::float8[], %b::timestamptz[])) "
)
_UPSERT_PG = (
    f"INSERT INTO runs_metricrollup AS r ({_COLUMNS}) SELECT * FROM unnest("  # noqa: S608 (constants only)
    "%b::bigint[], %b::varchar[], %b::int[], %b::int[], %b::int[], %b::float8[], %b::int[], %b::float8[], "
    "%b::int[], %b::int[], %b::float8[], %b::int[], %b::float8[])"
    + _MERGE.format(least="LEAST", greatest="GREATEST")
)
# The run's metric key index (RunMetricKey, the metric picker's list): each key of a batch, with its
# furthest step. A replaced point never lowers it (a resumed attempt re-runs steps it had passed).
_KEYS_UPSERT_PG = (
    "INSERT INTO runs_runmetrickey AS k (run_id, key, last_step) SELECT * FROM unnest(%b::bigint[], "
    "%b::varchar[], %b::int[]) ON CONFLICT (run_id, key) DO UPDATE SET last_step = "
    "GREATEST(k.last_step, excluded.last_step)"
)
_KEYS_UPSERT_SQLITE = (
    "INSERT INTO runs_runmetrickey AS k (run_id, key, last_step) VALUES (%s, %s, %s) ON CONFLICT (run_id, "
    "key) DO UPDATE SET last_step = MAX(k.last_step, excluded.last_step)"
)
# The points a small batch replaces deleted (and answered), its points inserted, its rollups merged, its
# keys indexed.
_WRITE_SMALL_PG = (
    f"WITH gone AS ({_DELETE_PG}), "  # noqa: S608 (constants only)
    + _INSERT_POINTS_PG.removeprefix("WITH ")
    + f", merged AS ({_UPSERT_PG}), keyed AS ({_KEYS_UPSERT_PG}) "
    + "SELECT ARRAY(SELECT run_id FROM gone), ARRAY(SELECT key FROM gone), ARRAY(SELECT step FROM gone)"
)
_UPSERT_SQLITE = (
    f"INSERT INTO runs_metricrollup AS r ({_COLUMNS}) VALUES ({', '.join(['%s'] * 13)})"  # noqa: S608
    + _MERGE.format(least="MIN", greatest="MAX")
)


def metric_series_read(
    *, run_id: int, key: str, after_step: int = -1, until_step: int | None = None, max_points: int
) -> list[list[float]]:
    """One series between two steps in at most about `max_points` points, from rollups when it is long."""
    return metric_series_bounded(
        run_id=run_id, key=key, after_step=after_step, until_step=until_step, max_points=max_points
    )[0]


def metric_series_bounded(
    *, run_id: int, key: str, after_step: int = -1, until_step: int | None = None, max_points: int
) -> tuple[list[list[float]], bool]:
    """As metric_series_read, and whether points were left out (downsampled or read from rollups)."""
    points = MetricPoint.objects.filter(run_id=run_id, key=key, step__gt=after_step)
    if until_step is not None:
        points = points.filter(step__lte=until_step)
    bounds = points.aggregate(lo=Min("step"), hi=Max("step"))
    if bounds["lo"] is None:
        return [], False
    lo, hi = bounds["lo"], bounds["hi"]
    buckets_allowed = max(1, max_points // POINTS_PER_BUCKET)
    if hi - lo + 1 <= max_points:
        return _raw(points, max_points)
    width = next((w for w in ROLLUP_WIDTHS if (hi // w - lo // w + 1) <= buckets_allowed), None)
    if width is None:
        return _raw(points, max_points)
    rollups = MetricRollup.objects.filter(
        run_id=run_id, key=key, width=width, bucket__gte=lo // width, bucket__lte=hi // width
    ).order_by("bucket")
    rows = list(
        rollups.values_list(
            "first_step",
            "first_value",
            "min_step",
            "min_value",
            "max_step",
            "max_value",
            "last_step",
            "last_value",
            "n",
        )
    )
    if not rows:  # points written around metric_points_write (a bulk load, an old run): read them raw
        return _raw(points, max_points)
    out: list[list[float]] = []
    reduced = False
    for r in rows:
        # The edge buckets may reach past the range asked for; their extremes are still the truth nearby.
        seen: dict[int, float] = {}
        for step, value in ((r[0], r[1]), (r[2], r[3]), (r[4], r[5]), (r[6], r[7])):
            seen.setdefault(step, value)
        out.extend([step, seen[step]] for step in sorted(seen))
        reduced = reduced or r[8] > len(seen)
    return out, reduced


def metric_wall_times(*, run_id: int, max_points: int) -> list[list[float]]:
    """When the run reached its steps: [[step, seconds since the run's first point], ...], at most about
    `max_points` of them, read from the wall times of the key logged furthest (time/step_s if it is
    among those), every n-th step. The charts' "wall time" x axis maps each step through it."""
    furthest = RunMetricKey.objects.filter(run_id=run_id).aggregate(hi=Max("last_step"))["hi"]
    if furthest is None:
        return []
    keys = RunMetricKey.objects.filter(run_id=run_id, last_step=furthest).order_by("key")
    key = "time/step_s" if keys.filter(key="time/step_s").exists() else keys.values_list("key", flat=True)[0]
    stride = max(1, -(-(furthest + 1) // max_points))
    rows = list(
        MetricPoint.objects.filter(run_id=run_id, key=key)
        .annotate(phase=Mod(F("step"), Value(stride)))
        .filter(Q(phase=0) | Q(step=furthest))
        .order_by("step", "pk")
        .values_list("step", "wall_time")
    )
    if not rows:
        return []
    start = min(wall for _, wall in rows)
    return [[step, (wall - start).total_seconds()] for step, wall in rows]


def _raw(points: QuerySet[MetricPoint], max_points: int) -> tuple[list[list[float]], bool]:
    # At most max_points + 1 rows leave the database: one more than fits says the series is longer,
    # and only then is the whole range read to be downsampled.
    ordered = points.order_by("step", "pk").values_list("step", "value")
    head = list(ordered[: max_points + 1])
    if len(head) <= max_points:
        return [[s, v] for s, v in head], False
    return downsample(ordered, max_points=max_points), True


# The distinct keys of a run's points in a step range, one index probe per key (the index is (run, key,
# step)) instead of a scan of every point: a skip scan, written so that SQLite runs it too.
_KEYS_SQL = """
WITH RECURSIVE present(key, n) AS (
    SELECT MIN(key), 1 FROM runs_metricpoint WHERE run_id = %s AND step > %s AND step <= %s
  UNION ALL
    SELECT (SELECT MIN(m.key) FROM runs_metricpoint m
            WHERE m.run_id = %s AND m.key > present.key AND m.step > %s AND m.step <= %s), n + 1
    FROM present WHERE present.key IS NOT NULL AND n < %s
)
SELECT key FROM present WHERE key IS NOT NULL ORDER BY key
"""


def metric_keys_list(
    *, run_id: int, after_step: int = -1, until_step: int | None = None, limit: int
) -> list[str]:
    """The first `limit` keys by name that have points in (after_step, until_step]."""
    until = 2**31 - 1 if until_step is None else until_step
    with connection.cursor() as cursor:
        cursor.execute(_KEYS_SQL, [run_id, after_step, until, run_id, after_step, until, limit])
        return sorted(key for (key,) in cursor.fetchall())  # by code point, whatever the collation


def downsample(points: Iterable[tuple[int, float]], *, max_points: int) -> list[list[float]]:
    """At most ~max_points [step, value] pairs: per bucket of steps, the first, min, max and last points.

    Input must be ordered by step. Keeping min and max per bucket is what makes spikes survive.
    """
    data = list(points)
    if len(data) <= max_points:
        return [[s, v] for s, v in data]
    buckets = max(1, max_points // POINTS_PER_BUCKET)
    first_step, last_step = data[0][0], data[-1][0]
    width = max(1, -(-(last_step - first_step + 1) // buckets))
    out: list[list[float]] = []
    bucket: list[tuple[int, float]] = []
    current = None
    for step, value in data:
        index = (step - first_step) // width
        if current is not None and index != current:
            out.extend(_bucket_points(bucket))
            bucket = []
        current = index
        bucket.append((step, value))
    if bucket:
        out.extend(_bucket_points(bucket))
    return out


def _bucket_points(bucket: list[tuple[int, float]]) -> list[list[float]]:
    keep = {0, len(bucket) - 1}
    keep.add(min(range(len(bucket)), key=lambda i: bucket[i][1]))
    keep.add(max(range(len(bucket)), key=lambda i: bucket[i][1]))
    return [[bucket[i][0], bucket[i][1]] for i in sorted(keep)]


# Rows fetched per round trip of an export's server-side cursor: large enough that the round trips
# cost little next to the rows, small enough that memory stays flat whatever the run's size.
EXPORT_CHUNK = 20_000


class _IsoTime(Func):
    """A timestamptz as ISO 8601 text, made by PostgreSQL (`2026-01-02T03:04:05.25+00:00` in the UTC
    session Django sets): parsing a million datetimes and formatting them again is most of an export's
    time in Python."""

    template = "to_json(%(expressions)s) #>> '{}'"
    output_field = TextField()


def metric_points_iter(
    *, run_id: int, keys: Sequence[str] = (), chunk_size: int = EXPORT_CHUNK
) -> Generator[tuple[str, int, float, str], None, None]:
    """Every point of the run (of `keys`, if named) as (key, step, value, wall_time in ISO 8601), by key
    and step, in constant memory: on PostgreSQL through a server-side cursor `chunk_size` rows at a time,
    on SQLite through its own row iterator. Tuples, not model instances: an export reads millions of rows.

    On PostgreSQL the cursor lives in a transaction held while the rows are read: outside one, Django
    declares it WITH HOLD, and PostgreSQL then copies the whole result aside before the first row."""
    points = MetricPoint.objects.filter(run_id=run_id)
    if keys:
        points = points.filter(key__in=list(keys))
    points = points.order_by("key", "step")
    if connection.vendor != "postgresql":
        rows = points.values_list("key", "step", "value", "wall_time").iterator(chunk_size=chunk_size)
        yield from ((key, step, value, wall.isoformat()) for key, step, value, wall in rows)
        return
    with transaction.atomic():
        yield from points.values_list("key", "step", "value", _IsoTime("wall_time")).iterator(
            chunk_size=chunk_size
        )
