"""The compare page's batched read answers what the one-series read answers, point for point: short
series whole, long ones from their rollups with every bucket's min and max, series written around the
rollups by the slow path, and pairs without points left out; in a few statements whatever their number."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from runs.metric_batch import metric_last_and_max, metric_series_many
from runs.metric_store import metric_points_write, metric_series_bounded
from runs.models import MetricPoint
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def runs():
    """Three runs: a short series, a long one with a spike, a gappy one; and a series bulk-loaded
    without rollups."""
    a, b, c = RunFactory(), RunFactory(), RunFactory()
    metric_points_write([(a.pk, "short", s, s / 10, NOW) for s in range(50)])
    metric_points_write(
        [(b.pk, "long", s, (s % 97) / 97 + (9.0 if s == 4321 else 0), NOW) for s in range(20_000)]
    )
    metric_points_write([(c.pk, "long", s, -float(s), NOW) for s in range(0, 60_000, 7)])
    metric_points_write([(a.pk, "long", s, float(s % 3), NOW) for s in range(5, 3_000)])
    MetricPoint.objects.bulk_create(
        MetricPoint(run_id=c.pk, key="bulk", step=s, value=float(s % 5), wall_time=NOW) for s in range(5_000)
    )
    return a, b, c


@pytest.mark.parametrize("max_points", [10, 100, 1_000, 2_000, 20_000])
def test_the_batched_read_answers_as_the_one_series_read(runs, max_points):
    pairs = [(run.pk, key) for run in runs for key in ("short", "long", "bulk", "missing")]

    many = metric_series_many(pairs=pairs, max_points=max_points)

    expected = {
        pair: metric_series_bounded(run_id=pair[0], key=pair[1], max_points=max_points) for pair in pairs
    }
    assert many == {pair: answer for pair, answer in expected.items() if answer[0]}


def test_a_spike_survives_the_batched_read(runs):
    _, b, _ = runs

    points, reduced = metric_series_many(pairs=[(b.pk, "long")], max_points=500)[(b.pk, "long")]

    assert reduced is True
    assert len(points) <= 500
    assert [4321, pytest.approx(9 + (4321 % 97) / 97)] in points


def test_two_hundred_series_take_a_handful_of_statements():
    run_list = [RunFactory() for _ in range(10)]
    keys = [f"k/{i:02d}" for i in range(20)]
    metric_points_write(
        [(r.pk, k, s, s * 0.5, NOW) for r in run_list for k in keys for s in range(0, 3_000, 3)]
    )
    pairs = [(r.pk, k) for r in run_list for k in keys]

    with CaptureQueriesContext(connection) as queries:
        answer = metric_series_many(pairs=pairs, max_points=200)

    assert len(answer) == 200
    # per 150 pairs: one for the bounds and one for the rollups; no statement per series
    assert len(queries) <= 4


def test_the_last_and_largest_value_of_each_run_however_its_points_were_written(runs):
    a, b, c = runs
    none = RunFactory()

    long = metric_last_and_max(run_ids=[a.pk, b.pk, c.pk, none.pk], key="long")
    bulk = metric_last_and_max(run_ids=[c.pk], key="bulk")

    assert long == {
        a.pk: (2999 % 3, 2.0),
        b.pk: ((19_999 % 97) / 97, pytest.approx(9 + (4321 % 97) / 97)),  # the spike, from the rollups
        c.pk: (-59_997.0, 0.0),
    }
    assert bulk == {c.pk: (4999 % 5, 4.0)}  # no rollups: from the points
