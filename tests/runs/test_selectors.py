import pytest
from django.utils import timezone

from runs.metric_store import downsample
from runs.models import MetricPoint, RunStatus
from runs.selectors import config_differences, run_compare_rows, run_list_filtered, run_metric_series
from tests.factories import DatasetVersionFactory, RunFactory

pytestmark = pytest.mark.django_db


def test_downsampling_keeps_every_buckets_extremes():
    points = [(step, 0.0) for step in range(100_000)]
    points[31_337] = (31_337, 99.0)  # a spike
    points[77_001] = (77_001, -50.0)  # a dip

    out = downsample(points, max_points=2000)

    assert len(out) <= 2000
    assert [31_337, 99.0] in out and [77_001, -50.0] in out
    assert out[0] == [0, 0.0] and out[-1] == [99_999, 0.0]
    assert [p[0] for p in out] == sorted(p[0] for p in out)


def test_a_short_series_is_returned_whole():
    assert downsample([(1, 0.5), (2, 0.25)], max_points=2000) == [[1, 0.5], [2, 0.25]]


def test_metric_series_filters_keys_and_downsamples():
    run = RunFactory()
    now = timezone.now()
    MetricPoint.objects.bulk_create(
        [MetricPoint(run=run, key="loss", step=s, value=float(s == 500), wall_time=now) for s in range(5000)]
        + [MetricPoint(run=run, key="kl", step=s, value=0.0, wall_time=now) for s in range(10)]
    )

    series = run_metric_series(run_id=run.pk, keys=["loss"], max_points=100)

    assert list(series) == ["loss"]
    assert len(series["loss"]) <= 100
    assert [500, 1.0] in series["loss"]


def test_runs_list_searches_filters_and_sorts():
    version = DatasetVersionFactory(dataset__name="humaneval")
    a = RunFactory(name="alpha", status=RunStatus.RUNNING, dataset_version=version)
    b = RunFactory(name="beta", status=RunStatus.SUCCEEDED)
    now = timezone.now()
    MetricPoint.objects.create(run=a, key="pass_rate", step=0, value=0.2, wall_time=now)
    MetricPoint.objects.create(run=b, key="pass_rate", step=0, value=0.9, wall_time=now)

    assert list(run_list_filtered(user=a.created_by, q="alp")) == [a]
    assert list(run_list_filtered(user=a.created_by, q="humaneval")) == [a]
    assert list(run_list_filtered(user=a.created_by, status=RunStatus.SUCCEEDED)) == [b]
    assert list(run_list_filtered(user=a.created_by, sort="pass_rate")) == [b, a]
    assert run_list_filtered(user=a.created_by, sort="pass_rate")[0].latest_pass_rate == 0.9


def test_compare_rows_give_best_and_final_pass_rate_in_the_order_asked():
    a, b = RunFactory(last_step=2), RunFactory()
    now = timezone.now()
    for step, value in enumerate([0.1, 0.6, 0.4]):
        MetricPoint.objects.create(run=a, key="pass_rate", step=step, value=value, wall_time=now)

    rows = run_compare_rows(user=a.created_by, run_ids=[b.pk, a.pk, 999_999])

    assert [row["run"] for row in rows] == [b, a]
    assert rows[1]["best_pass_rate"] == 0.6 and rows[1]["final_pass_rate"] == 0.4 and rows[1]["steps"] == 3
    assert rows[0]["best_pass_rate"] is None


def test_config_differences_show_only_what_differs():
    diff = config_differences([{"lr": 0.001, "seed": 0, "steps": 5}, {"lr": 0.0001, "seed": 0}])

    assert [(row.key, row.label, row.values) for row in diff] == [
        ("steps", "Steps", [5, None]),
        ("lr", "Learning rate", [0.001, 0.0001]),
    ]


def test_rollups_merge_across_batches_and_serve_long_series_with_their_spikes():
    from runs.metric_store import metric_points_write
    from runs.models import MetricRollup

    run = RunFactory()
    now = timezone.now()
    values = {step: (step % 7) / 10 for step in range(20_000)}
    values[12_345] = 50.0
    values[333] = -9.0
    rows = [(run.pk, "kl", step, value, now) for step, value in values.items()]
    metric_points_write(rows[:7_001])  # batch edges inside buckets: the merge must combine them
    metric_points_write(rows[7_001:])

    series = run_metric_series(run_id=run.pk, keys=["kl"], max_points=400)["kl"]

    assert len(series) <= 400
    assert [12_345, 50.0] in series and [333, -9.0] in series
    assert series[0] == [0, 0.0] and series[-1][0] == 19_999
    bucket = MetricRollup.objects.get(run=run, key="kl", width=4096, bucket=1)
    assert bucket.n == 4096
    assert (bucket.first_step, bucket.last_step) == (4096, 8191)
    assert bucket.max_value == max(values[s] for s in range(4096, 8192))


def test_a_zoomed_window_reads_full_detail():
    from runs.metric_store import metric_points_write

    run = RunFactory()
    now = timezone.now()
    metric_points_write([(run.pk, "loss", step, float(step), now) for step in range(10_000)])

    window = run_metric_series(
        run_id=run.pk, keys=["loss"], after_step=4_999, until_step=5_099, max_points=2000
    )

    assert window["loss"] == [[s, float(s)] for s in range(5_000, 5_100)]


def test_chart_groups_follow_the_runs_reward_weights_and_evaluations():
    from runs.selectors import run_chart_groups

    plain = RunFactory(config={"steps": 5})
    weighted = RunFactory(config={"reward_correctness": 1.0, "reward_style": 0.2, "reward_format": 0.1})
    evaluated = RunFactory(config={"eval_every": 5, "eval_problems": 2, "eval_set": "humaneval", "eval_k": 4})

    assert run_chart_groups(run=plain) == []  # correctness alone: its share is reward/mean itself
    [shares] = run_chart_groups(run=weighted)
    assert shares.keys == ("reward/correctness/share", "reward/style/share", "reward/format/share")
    assert shares.labels == ("correctness", "style", "format") and shares.stacked
    [evals, coverage] = run_chart_groups(run=evaluated)
    assert evals.keys == (
        "eval/pass@1",
        "eval/pass@4",
        "eval/humaneval/pass@1",
        "eval/humaneval/pass@4",
    )
    assert not evals.stacked
    # what is behind each pass@k: the problems left out (counted, never dropped) and the fewest samples
    assert coverage.keys == (
        "eval/problems_unscored",
        "eval/n_min",
        "eval/humaneval/problems_unscored",
        "eval/humaneval/n_min",
    )
    assert coverage.labels == ("problems_unscored", "n_min", "humaneval/problems_unscored", "humaneval/n_min")
