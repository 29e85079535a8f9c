"""/runs/compare/ without runs is a picker: the user's runs (only theirs) with checkboxes, a labelled
search, filters, an empty state that says what to do, and "Compare selected" making one shareable URL;
more than 100 runs, or ids that are not runs, are refused on the picker with the boxes kept."""

import datetime as dt

import pytest
from django.urls import reverse

from runs import compare
from runs.metric_store import metric_points_write
from runs.models import RunStatus
from tests.factories import RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = "/runs/compare/"


@pytest.fixture
def runs(user):
    """Alice's three runs (one with a pass rate), and beta's run she may not see."""
    a = RunFactory(created_by=user, name="lr-sweep-a", dataset_version__dataset__name="mbpp-small")
    b = RunFactory(created_by=user, name="lr-sweep-b", status=RunStatus.FAILED)
    c = RunFactory(created_by=user, name="baseline <b>bold</b>")
    metric_points_write([(a.pk, "pass_rate", 3, 0.625, dt.datetime(2026, 1, 1, tzinfo=dt.UTC))])
    beta = TeamFactory(name="beta")
    theirs = RunFactory(
        created_by=UserFactory(username="otto", membership__team=beta), team=beta, name="beta-secret-run"
    )
    return a, b, c, theirs


def _listed(response) -> list[int]:
    return [run.pk for run in response.context["picker"].runs]


def test_without_runs_the_page_is_a_picker_of_the_users_runs(logged_in, runs):
    a, b, c, _ = runs

    response = logged_in.get(URL)

    page = response.content.decode()
    assert response.status_code == 200
    assert _listed(response) == [c.pk, b.pk, a.pk]  # newest first, another team's run not among them
    assert "beta-secret-run" not in page
    assert f'name="runs" value="{a.pk}"' in page and f'<label for="pick-{a.pk}">' in page
    assert '<label for="picker-q">Search runs</label>' in page
    assert "0.625" in page and "mbpp-small" in page and "Failed" in page
    assert "baseline &lt;b&gt;bold&lt;/b&gt;" in page  # a run's name is escaped
    assert 'id="compare-selected"' in page


def test_a_user_without_runs_is_told_what_to_do(client):
    client.force_login(UserFactory(username="newcomer"))

    response = client.get(URL)

    assert response.status_code == 200
    assert "You have no runs to compare yet." in response.content.decode()
    assert reverse("runs:launch") in response.content.decode()


def test_the_search_filters_the_list_and_keeps_the_checked_runs(logged_in, runs):
    _, b, c, _ = runs

    searched = logged_in.get(URL, {"pick": "1", "q": "sweep-b"})
    kept = logged_in.get(URL, {"pick": "1", "q": "sweep-b", "runs": [c.pk]})
    nothing = logged_in.get(URL, {"pick": "1", "q": "no-such-run"})
    failed = logged_in.get(URL, {"pick": "1", "status": RunStatus.FAILED})

    assert _listed(searched) == [b.pk]
    assert _listed(kept) == [c.pk, b.pk]  # the checked run stays listed (and checked) whatever the search
    assert f'value="{c.pk}" id="pick-{c.pk}" checked' in kept.content.decode()
    assert _listed(nothing) == [] and "No run matches this search." in nothing.content.decode()
    assert _listed(failed) == [b.pk]


def test_an_htmx_search_answers_only_the_rows(logged_in, runs):
    response = logged_in.get(
        URL, {"pick": "1", "q": "sweep"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="picker-rows"
    )

    page = response.content.decode()
    assert page.lstrip().startswith('<div id="picker-rows">')
    assert "lr-sweep-a" in page and "baseline" not in page and "<h1>" not in page


def test_compare_selected_makes_one_shareable_url(logged_in, runs):
    a, b, _, _ = runs

    response = logged_in.get(URL, {"q": "", "runs": [b.pk, a.pk]})
    shared = logged_in.get(response["Location"])

    assert response.status_code == 302
    assert response["Location"] == f"{URL}?runs={b.pk},{a.pk}"
    assert shared.status_code == 200
    assert [row["run"].pk for row in shared.context["rows"]] == [b.pk, a.pk]


def test_more_than_100_runs_are_refused_on_the_picker_with_the_boxes_kept(logged_in, runs):
    a, *_ = runs
    ids = [a.pk, *range(10_000, 10_100)]

    response = logged_in.get(URL, {"runs": ",".join(map(str, ids))})

    page = response.content.decode()
    assert response.status_code == 400
    assert "at most 100 runs, got 101" in page
    assert f'value="{a.pk}" id="pick-{a.pk}" checked' in page


def test_an_id_that_is_no_run_is_said_on_the_picker(logged_in, runs):
    a, _, _, theirs = runs

    response = logged_in.get(URL, {"runs": f"{a.pk},{theirs.pk}"})

    page = response.content.decode()
    assert response.status_code == 404
    assert f"no run #{theirs.pk}" in page and 'role="alert"' in page
    assert "beta-secret-run" not in page
    assert f'value="{a.pk}" id="pick-{a.pk}" checked' in page


def test_past_the_rows_listed_the_picker_says_how_many_more_match(logged_in, runs, monkeypatch):
    monkeypatch.setattr(compare, "PICKER_ROWS", 2)

    response = logged_in.get(URL)

    assert len(_listed(response)) == 2
    assert "1 more run match: search or filter to find them." in response.content.decode()


def test_the_compare_page_links_its_export_and_feeds_its_charts_one_url(logged_in, runs):
    a, b, _, _ = runs

    page = logged_in.get(URL, {"runs": f"{a.pk},{b.pk}"}).content.decode()

    assert f'data-runs="{a.pk},{b.pk}"' in page
    assert f'data-metrics-url="{reverse("runs:compare-metrics")}"' in page
    assert f'data-keys-url="{reverse("runs:compare-keys")}"' in page
    assert f"/api/v1/runs/compare/export?runs={a.pk},{b.pk}&amp;format=csv" in page
    assert f"/api/v1/runs/compare/export?runs={a.pk},{b.pk}&amp;format=json" in page


def test_the_picker_needs_a_login(client):
    response = client.get(URL)

    assert response.status_code == 302 and "/login" in response["Location"]
