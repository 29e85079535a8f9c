"""The compare page's JSON reads: every run × key in one answer, bounded, another team's runs left out
(as if they did not exist), and bad input a 400 naming the field."""

import datetime as dt

import pytest
from django.urls import reverse

from runs.metric_store import metric_points_write
from runs.selectors import COMPARE_KEYS
from tests.factories import RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def world(logged_in, user):
    """Two of alice's runs with metrics, and one of team beta's."""
    mine = [RunFactory(created_by=user, name=f"mine-{i}") for i in range(2)]
    beta = TeamFactory(name="beta")
    theirs = RunFactory(created_by=UserFactory(username="otto", membership__team=beta), team=beta)
    for i, run in enumerate([*mine, theirs]):
        rows = [(run.pk, "reward/mean", s, float(s * (i + 1)), NOW) for s in range(5_000)]
        rows += [(run.pk, f"only/{run.pk}", s, 1.0, NOW) for s in range(3)]
        metric_points_write(rows)
    metric_points_write([(mine[0].pk, "kl", s, 0.1, NOW) for s in range(10)])
    return mine, theirs


def _metrics(client, **params):
    return client.get(reverse("runs:compare-metrics"), params)


def test_one_request_answers_every_run_and_key_bounded(logged_in, world):
    (a, b), _ = world

    answer = _metrics(logged_in, runs=f"{b.pk},{a.pk}", keys="reward/mean,kl,nothing", max_points=400).json()

    assert answer["runs"] == [b.pk, a.pk]  # in the order asked
    assert set(answer["series"]) == {"reward/mean", "kl", "nothing"}
    assert answer["series"]["nothing"] == {}
    assert set(answer["series"]["kl"]) == {str(a.pk)}
    reward = answer["series"]["reward/mean"]
    assert set(reward) == {str(a.pk), str(b.pk)}
    assert all(0 < len(points) <= 400 for points in reward.values())
    assert reward[str(b.pk)][-1] == [4999, 4999 * 2]  # the last point kept, and each run's own values
    assert max(v for _, v in reward[str(a.pk)]) == 4999
    assert answer["truncated"] is True


def test_another_teams_runs_are_left_out_of_the_answer(logged_in, world):
    (a, _), theirs = world

    answer = _metrics(logged_in, runs=f"{theirs.pk},{a.pk},999999", keys="reward/mean").json()

    assert answer["runs"] == [a.pk]
    assert set(answer["series"]["reward/mean"]) == {str(a.pk)}


def test_without_keys_the_default_compare_keys_are_read(logged_in, world):
    (a, _), _ = world

    answer = _metrics(logged_in, runs=str(a.pk)).json()

    assert list(answer["series"]) == list(COMPARE_KEYS)


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({}, "runs", "This field is required"),
        ({"runs": "abc"}, "runs", "not a run id"),
        ({"runs": ",".join(str(i) for i in range(1, 102))}, "runs", "at most 100 runs, got 101"),
        ({"runs": "1", "max_points": "5"}, "max_points", "greater than or equal to 10"),
        ({"runs": "1", "max_points": "x"}, "max_points", "whole number"),
        ({"runs": "1", "keys": ",".join(f"k{i}" for i in range(101))}, "keys", "at most 100 keys"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(logged_in, params, field, message):
    response = _metrics(logged_in, **params)

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert message in response.json()["error"]


def test_the_keys_of_the_runs_with_how_many_logged_each(logged_in, world):
    (a, b), theirs = world

    answer = logged_in.get(reverse("runs:compare-keys"), {"runs": f"{a.pk},{b.pk},{theirs.pk}"}).json()
    searched = logged_in.get(reverse("runs:compare-keys"), {"runs": f"{a.pk},{b.pk}", "q": "REWARD"}).json()

    assert answer["keys"] == sorted(
        [
            {"key": "reward/mean", "runs": 2},
            {"key": "kl", "runs": 1},
            {"key": f"only/{a.pk}", "runs": 1},
            {"key": f"only/{b.pk}", "runs": 1},
        ],
        key=lambda row: row["key"],
    )  # beta's own key is not among them
    assert searched["keys"] == [{"key": "reward/mean", "runs": 2}]


def test_the_keys_refuse_bad_runs_naming_the_field(logged_in):
    response = logged_in.get(reverse("runs:compare-keys"), {"runs": "1,x"})

    assert response.status_code == 400
    assert response.json()["field"] == "runs"


def test_the_json_reads_need_a_login(client, world):
    (a, _), _ = world
    client.logout()

    response = _metrics(client, runs=str(a.pk))
    keys = client.get(reverse("runs:compare-keys"), {"runs": str(a.pk)})

    assert response.status_code == 302 and keys.status_code == 302
    assert "/login" in response["Location"]
