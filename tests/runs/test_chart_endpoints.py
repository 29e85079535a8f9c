"""What the charts read besides the points: the metric picker's keys, a run's steps in wall time, and a
user's saved layouts (runs/chart_layouts.py), through the pages' JSON endpoints and the API."""

import datetime as dt
import itertools
import json

import pytest
from django.utils import timezone

from runs.metric_store import metric_points_write
from runs.models import ChartLayout
from tests.controlplane.api.conftest import api_client_for
from tests.factories import RunFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_run(user):
    run = RunFactory(created_by=user)
    start = timezone.now()
    rows = [
        (run.pk, key, step, float(step), start + dt.timedelta(seconds=10 * step))
        for key in ("reward/mean", "time/step_s", "Eval/HumanEval/pass@1", "<b>odd</b>")
        for step in range(5)
    ]
    rows += [(run.pk, "kl", step, 0.1, start) for step in range(3)]  # stopped logging at step 2
    metric_points_write(rows)
    return run


def test_the_picker_lists_every_key_the_run_logged_with_its_furthest_step(logged_in, logged_run):
    response = logged_in.get(f"/runs/{logged_run.pk}/metric-keys.json")

    assert response.status_code == 200
    assert response.json()["keys"] == [
        {"key": "<b>odd</b>", "last_step": 4},
        {"key": "Eval/HumanEval/pass@1", "last_step": 4},
        {"key": "kl", "last_step": 2},
        {"key": "reward/mean", "last_step": 4},
        {"key": "time/step_s", "last_step": 4},
    ]


def test_the_picker_search_matches_any_part_of_a_key_in_any_case(logged_in, logged_run):
    keys = logged_in.get(f"/runs/{logged_run.pk}/metric-keys.json", {"q": "humaneval"}).json()["keys"]
    assert [k["key"] for k in keys] == ["Eval/HumanEval/pass@1"]
    assert logged_in.get(f"/runs/{logged_run.pk}/metric-keys.json", {"q": "nothing"}).json() == {"keys": []}


def test_another_teams_run_has_no_keys_to_list(client, logged_run):
    client.force_login(UserFactory(username="mallory", membership=None))
    assert client.get(f"/runs/{logged_run.pk}/metric-keys.json").status_code == 404


def test_wall_time_maps_each_step_to_seconds_since_the_runs_first_point(logged_in, logged_run):
    answer = logged_in.get(f"/runs/{logged_run.pk}/metrics.json", {"keys": "kl", "wall": "1"}).json()

    assert answer["wall"] == [[0, 0.0], [1, 10.0], [2, 20.0], [3, 30.0], [4, 40.0]]  # from time/step_s
    assert answer["series"]["kl"] == [[0, 0.1], [1, 0.1], [2, 0.1]]
    assert "wall" not in logged_in.get(f"/runs/{logged_run.pk}/metrics.json", {"keys": "kl"}).json()


def test_wall_time_of_a_long_run_is_every_nth_step_and_the_last(logged_in, user):
    run = RunFactory(created_by=user)
    start = timezone.now()
    metric_points_write([(run.pk, "loss", s, 1.0, start + dt.timedelta(seconds=s)) for s in range(1_001)])

    wall = logged_in.get(f"/runs/{run.pk}/metrics.json", {"wall": "1", "max_points": "100"}).json()["wall"]

    assert len(wall) <= 102
    assert wall[0] == [0, 0.0] and wall[-1] == [1_000, 1_000.0]
    assert all(b[0] > a[0] and b[1] >= a[1] for a, b in itertools.pairwise(wall))


def test_a_layout_is_saved_per_user_and_page_and_read_back(logged_in, user):
    assert logged_in.get("/runs/layouts/run.json").json() == {"page": "run", "layout": {}, "saved": False}
    layout = {"panels": [{"key": "kl", "full": True}, {"key": "reward/mean"}], "smoothing": 0.6, "log": True}

    response = logged_in.put("/runs/layouts/run.json", json.dumps(layout), content_type="application/json")

    assert response.status_code == 200
    stored = {
        "panels": [{"key": "kl", "full": True}, {"key": "reward/mean", "full": False}],
        "smoothing": 0.6,
        "log": True,
    }
    assert logged_in.get("/runs/layouts/run.json").json() == {"page": "run", "layout": stored, "saved": True}
    assert logged_in.get("/runs/layouts/compare.json").json()["saved"] is False
    # saving again replaces the layout; nobody else's is touched
    logged_in.put("/runs/layouts/run.json", json.dumps({"x": "tokens"}), content_type="application/json")
    assert ChartLayout.objects.get(user=user, page="run").layout == {"x": "tokens"}
    assert ChartLayout.objects.count() == 1


@pytest.mark.parametrize(
    ("layout", "field"),
    [
        ({"panels": [{"key": "kl"}], "colour": "red"}, "colour"),
        ({"panels": "kl"}, "panels"),
        ({"panels": [{"key": ""}]}, "panels.0.key"),
        ({"panels": [{"key": "kl"}, {"key": "x" * 101}]}, "panels.1.key"),
        ({"panels": [{"key": "kl"}, {"key": "kl"}]}, "panels.1.key"),
        ({"panels": [{"key": "kl", "full": "yes"}]}, "panels.0.full"),
        ({"panels": [{"key": "kl", "size": 2}]}, "panels.0.size"),
        ({"panels": [{"key": f"k{i}"} for i in range(201)]}, "panels"),
        ({"smoothing": 1.5}, "smoothing"),
        ({"smoothing": True}, "smoothing"),
        ({"log": "true"}, "log"),
        ({"x": "epoch"}, "x"),
        ([1, 2], "layout"),
    ],
)
def test_a_bad_layout_is_refused_naming_the_field_and_nothing_is_saved(logged_in, layout, field):
    response = logged_in.put("/runs/layouts/run.json", json.dumps(layout), content_type="application/json")

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert field.split(".")[-1] in response.json()["error"]
    assert not ChartLayout.objects.exists()


def test_a_layout_too_big_or_not_json_or_of_no_page_is_refused(logged_in):
    huge = {"panels": [{"key": f"{i:03d}" + "k" * 95} for i in range(200)]}
    put = logged_in.put
    assert put("/runs/layouts/run.json", json.dumps(huge), content_type="application/json").json()[
        "field"
    ] == ("layout")
    assert put("/runs/layouts/run.json", "{", content_type="application/json").json()["field"] == "body"
    assert put("/runs/layouts/sweep.json", "{}", content_type="application/json").status_code == 404
    assert logged_in.get("/runs/layouts/sweep.json").status_code == 404
    assert not ChartLayout.objects.exists()


def test_the_api_reads_and_saves_the_same_layouts(user, logged_in):
    api = api_client_for(user)

    saved = api.put("/me/layouts/compare", {"panels": [{"key": "kl"}], "x": "usd"})

    assert saved.status_code == 200
    assert saved.json() == {
        "page": "compare",
        "layout": {"panels": [{"key": "kl", "full": False}], "x": "usd"},
        "saved": True,
    }
    assert logged_in.get("/runs/layouts/compare.json").json()["layout"]["x"] == "usd"
    bad = api.put("/me/layouts/compare", {"x": "epoch"})
    assert bad.status_code == 400 and bad.json()["field"] == "x"
    assert api.get("/me/layouts/nope").status_code == 404
