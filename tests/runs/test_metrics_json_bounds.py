"""metrics.json is bounded whatever it is asked: so many keys, so many points per key, and it says so."""

import pytest
from django.utils import timezone

from runs.metric_store import metric_points_write
from runs.selectors import METRICS_DEFAULT_POINTS, METRICS_MAX_KEYS, METRICS_UNNAMED_KEYS
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db

STEPS = METRICS_DEFAULT_POINTS + 1_000
KEYS = [f"custom/k{i:02d}" for i in range(METRICS_UNNAMED_KEYS + 5)]


@pytest.fixture
def long_run(user):
    """A run with more keys than an unnamed read returns, each longer than the default point budget,
    and a spike in one of them."""
    run = RunFactory(created_by=user)
    now = timezone.now()
    rows = [(run.pk, key, step, (step % 10) / 10, now) for key in ["loss", *KEYS] for step in range(STEPS)]
    rows[1_234] = (run.pk, "loss", 1_234, 99.0, now)
    metric_points_write(rows)
    return run


def test_a_parameterless_read_of_a_long_run_is_bounded_and_says_so(logged_in, long_run):
    response = logged_in.get(f"/runs/{long_run.pk}/metrics.json")

    assert response.status_code == 200
    answer = response.json()
    assert answer["truncated"] is True
    assert answer["keys"] == sorted(["loss", *KEYS])  # every key there is, to ask for by name
    assert len(answer["series"]) == METRICS_UNNAMED_KEYS
    assert "loss" in answer["series"]  # the run page's chart keys come first
    assert all(len(points) <= METRICS_DEFAULT_POINTS for points in answer["series"].values())
    assert [1_234, 99.0] in answer["series"]["loss"]  # downsampled, with every bucket's min and max
    assert answer["series"]["loss"][-1][0] == STEPS - 1


def test_a_named_key_without_max_points_is_cut_to_the_default_budget(logged_in, long_run):
    answer = logged_in.get(f"/runs/{long_run.pk}/metrics.json?keys=loss&after_step=-1").json()

    assert answer["truncated"] is True
    assert list(answer["series"]) == ["loss"]
    assert len(answer["series"]["loss"]) <= METRICS_DEFAULT_POINTS
    assert [1_234, 99.0] in answer["series"]["loss"]


def test_a_read_that_fits_is_whole_and_not_marked_truncated(logged_in, long_run):
    answer = logged_in.get(f"/runs/{long_run.pk}/metrics.json?keys=loss,custom/k00&after_step=4999").json()

    assert answer["truncated"] is False
    assert answer["series"]["loss"] == [[s, (s % 10) / 10] for s in range(5_000, STEPS)]
    assert set(answer["series"]) == {"loss", "custom/k00"}


def test_more_keys_named_than_one_answer_carries_are_cut_and_marked(logged_in, user):
    run = RunFactory(created_by=user)
    names = [f"m/{i:03d}" for i in range(METRICS_MAX_KEYS + 10)]
    metric_points_write([(run.pk, key, 0, 1.0, timezone.now()) for key in names])

    answer = logged_in.get(f"/runs/{run.pk}/metrics.json?keys={','.join(names)}").json()

    assert answer["truncated"] is True
    assert list(answer["series"]) == names[:METRICS_MAX_KEYS]


def test_the_live_pages_first_backfill_still_gets_its_keys_at_the_asked_budget(logged_in, long_run):
    answer = logged_in.get(f"/runs/{long_run.pk}/metrics.json?keys=loss,reward/mean&max_points=2000").json()

    assert list(answer["series"]) == ["loss"]  # reward/mean has no points
    assert len(answer["series"]["loss"]) <= 2000
    assert [1_234, 99.0] in answer["series"]["loss"]
    assert answer["truncated"] is True
