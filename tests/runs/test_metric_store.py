"""Metric points and their rollups: the same however a series arrives in batches."""

import datetime as dt
import random

import pytest
from django.db import connection

from runs.metric_export import metric_export_chunks
from runs.metric_store import SMALL_BATCH, metric_points_write
from runs.models import MetricPoint, MetricRollup, RunMetricKey
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db

ROLLUP_FIELDS = (
    "key", "width", "bucket", "n", "min_value", "min_step", "max_value", "max_step",
    "first_step", "first_value", "last_step", "last_value",
)  # fmt: skip


def series(run_id: int, n: int) -> list[tuple[int, str, int, float, dt.datetime]]:
    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC)
    return [(run_id, key, step, rng.random(), now) for step in range(n) for key in ("loss", "kl")]


def rollups(run_id: int) -> list[tuple]:
    return list(
        MetricRollup.objects.filter(run_id=run_id).order_by(*ROLLUP_FIELDS[:3]).values_list(*ROLLUP_FIELDS)
    )


def test_a_series_sent_step_by_step_has_the_points_and_rollups_of_the_same_series_sent_at_once():
    by_step, at_once = RunFactory(), RunFactory()
    rows = series(by_step.pk, 1_200)
    assert len(rows) > SMALL_BATCH  # the one big write takes the COPY path, the small ones the INSERT

    for start in range(0, len(rows), 30):  # a trainer's step at a time
        metric_points_write(rows[start : start + 30])
    metric_points_write([(at_once.pk, *row[1:]) for row in rows])

    assert MetricPoint.objects.filter(run=by_step).count() == MetricPoint.objects.filter(run=at_once).count()
    assert rollups(by_step.pk) == rollups(at_once.pk)
    widest = MetricRollup.objects.filter(run=by_step, key="loss").order_by("-width").first()
    assert widest.n == 1_200
    assert widest.max_value == max(v for _, k, _, v, _ in rows if k == "loss")


def test_the_key_index_holds_each_key_with_its_furthest_step_however_the_points_arrive():
    small, big = RunFactory(), RunFactory()
    rows = series(small.pk, 400)
    for start in range(0, len(rows), 30):  # the one-statement INSERT path
        metric_points_write(rows[start : start + 30])
    metric_points_write([(big.pk, *row[1:]) for row in rows])  # the COPY path
    now = dt.datetime.now(dt.UTC)
    # a resumed attempt re-runs an earlier step, and a new key appears
    metric_points_write([(small.pk, "loss", 5, 0.5, now), (small.pk, "eval/pass@1", 99, 0.25, now)])

    def index(run):
        return dict(RunMetricKey.objects.filter(run=run).values_list("key", "last_step"))

    assert index(small) == {"kl": 399, "loss": 399, "eval/pass@1": 99}
    assert index(big) == {"kl": 399, "loss": 399}


def test_an_export_read_partly_ends_its_cursors_transaction_when_closed():
    """On PostgreSQL the export's server-side cursor lives in a transaction (a savepoint inside a test):
    a client that goes away mid-export must not leave it open on the connection."""
    run = RunFactory()
    metric_points_write(series(run.pk, 30_000))
    depth = len(connection.savepoint_ids)

    chunks = metric_export_chunks(run_id=run.pk, fmt="csv")
    next(chunks), next(chunks)  # the header, then the first rows
    during = len(connection.savepoint_ids)
    chunks.close()

    assert len(connection.savepoint_ids) == depth
    assert during == depth + (1 if connection.vendor == "postgresql" else 0)
