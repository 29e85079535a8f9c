"""Chart reads: a 1,000,000-point series returned as at most 2,000 points, against a raw SELECT of the
same series in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/triad_bench .venv/bin/python bench/charts.py

Loads the series through the ingest write path (COPY plus rollups, in 10,000-point batches as a trainer's
backlog would arrive), then times, median of 5: the anchor — every (step, value) of the series fetched
by the ORM — and `run_metric_series(max_points=2000)`. Last line: one JSON object with the ratio.
"""

import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _setup import django_setup

django_setup()

from django.db import transaction  # noqa: E402

from runs.metric_store import metric_points_write  # noqa: E402
from runs.models import MetricPoint, Run  # noqa: E402
from runs.selectors import run_metric_series  # noqa: E402

N = 1_000_000


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> None:
    from tests.factories import RunFactory, UserFactory

    user = UserFactory(username="bench-charts")  # get-or-create: reruns reuse it
    run = RunFactory(
        created_by=user,
        dataset_version__dataset__created_by=user,
        dataset_version__dataset__name=f"bench-{time.time_ns()}",
    )
    now = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    for start in range(0, N, 10_000):
        rows = [
            (run.pk, "reward/mean", s, (s % 1000) / 1000 + (25.0 if s == 654_321 else 0.0), now)
            for s in range(start, start + 10_000)
        ]
        with transaction.atomic():
            metric_points_write(rows)
    load_s = time.perf_counter() - t0

    raw_s, raw = timed(
        lambda: list(
            MetricPoint.objects.filter(run_id=run.pk, key="reward/mean")
            .order_by("step")
            .values_list("step", "value")
        )
    )
    chart_s, series = timed(lambda: run_metric_series(run_id=run.pk, keys=["reward/mean"], max_points=2000))
    points = series["reward/mean"]
    Run.objects.filter(pk=run.pk).delete()
    print(
        json.dumps(
            {
                "series_points": len(raw),
                "returned_points": len(points),
                "spike_kept": [654_321, 25.0 + 0.321] in [[s, round(v, 3)] for s, v in points],
                "raw_select_s": round(raw_s, 4),
                "downsampled_s": round(chart_s, 4),
                "ratio_vs_raw_select": round(chart_s / raw_s, 4),
                "load_points_per_s": round(N / load_s),
            }
        )
    )


if __name__ == "__main__":
    main()
