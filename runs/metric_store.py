"""Writing and reading metric points: the volume path of the ingest API and the charts.

Points are written with COPY on PostgreSQL (an order of magnitude faster than INSERT for thousands of
rows) and with bulk_create elsewhere. Reads downsample on the server, keeping each bucket's minimum and
maximum so a reward spike or a KL blow-up survives any zoom level.
"""

import datetime as dt
from collections.abc import Iterable, Sequence

from django.db import connection

from runs.models import MetricPoint

COPY_SQL = "COPY runs_metricpoint (run_id, key, step, value, wall_time) FROM STDIN"

Row = tuple[int, str, int, float, dt.datetime]


def metric_points_write(rows: Sequence[Row]) -> None:
    if not rows:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor, cursor.cursor.copy(COPY_SQL) as copy:
            for row in rows:
                copy.write_row(row)
        return
    MetricPoint.objects.bulk_create(
        (MetricPoint(run_id=r, key=k, step=s, value=v, wall_time=w) for r, k, s, v, w in rows),
        batch_size=2000,
    )


def downsample(points: Iterable[tuple[int, float]], *, max_points: int) -> list[list[float]]:
    """At most ~max_points [step, value] pairs: per bucket of steps, the first, min, max and last points.

    Input must be ordered by step. Keeping min and max per bucket is what makes spikes survive.
    """
    data = list(points)
    if len(data) <= max_points:
        return [[s, v] for s, v in data]
    buckets = max(1, max_points // 4)
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
