"""Metric exports of a comparison (one file, a `run` column) and of a run as one JSON document, through
the API and the links of the run and compare pages (the same route, with the browser's session)."""

import csv
import datetime as dt
import io
import json

import pytest

from runs.metric_store import metric_points_write
from tests.controlplane.api.conftest import api_client_for
from tests.factories import RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
T = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
WHEN = "2026-01-02T03:04:05+00:00"


@pytest.fixture
def runs(user):
    a, b = RunFactory(created_by=user), RunFactory(created_by=user)
    beta = TeamFactory(name="beta")
    theirs = RunFactory(created_by=UserFactory(username="otto", membership__team=beta), team=beta)
    metric_points_write([(a.pk, "loss", 0, 1.5, T), (a.pk, 'odd,"key"', 2, float("-inf"), T)])
    metric_points_write([(b.pk, "loss", 0, 0.25, T), (b.pk, "loss", 1, 0.125, T)])
    metric_points_write([(theirs.pk, "loss", 0, 9.0, T)])
    return a, b, theirs


def _body(response) -> str:
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content).decode()


def test_a_comparison_exports_as_one_csv_with_a_run_column(user, runs):
    a, b, theirs = runs

    response = api_client_for(user).get("/runs/compare/export", {"runs": f"{b.pk},{theirs.pk},{a.pk}"})

    assert response["Content-Type"].startswith("text/csv")
    assert f'filename="compare-{b.pk}-{a.pk}-metrics.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(_body(response))))
    assert rows == [
        ["run", "key", "step", "value", "wall_time"],
        [str(b.pk), "loss", "0", "0.25", WHEN],  # in the order asked, another team's run left out
        [str(b.pk), "loss", "1", "0.125", WHEN],
        [str(a.pk), "loss", "0", "1.5", WHEN],
        [str(a.pk), 'odd,"key"', "2", "-inf", WHEN],
    ]


def test_a_comparison_exports_as_one_json_document_and_as_json_lines(user, runs):
    a, b, _ = runs
    api = api_client_for(user)

    document = json.loads(
        _body(api.get("/runs/compare/export", {"runs": f"{a.pk},{b.pk}", "format": "json"}))
    )
    lines = _body(
        api.get("/runs/compare/export", {"runs": f"{a.pk},{b.pk}", "format": "jsonl", "keys": "loss"})
    )

    assert document == [
        {"run": a.pk, "key": "loss", "step": 0, "value": 1.5, "wall_time": WHEN},
        {"run": a.pk, "key": 'odd,"key"', "step": 2, "value": None, "wall_time": WHEN},  # -inf: null
        {"run": b.pk, "key": "loss", "step": 0, "value": 0.25, "wall_time": WHEN},
        {"run": b.pk, "key": "loss", "step": 1, "value": 0.125, "wall_time": WHEN},
    ]
    assert [json.loads(line)["run"] for line in lines.splitlines()] == [a.pk, b.pk, b.pk]


def test_a_run_exports_as_one_json_document_even_across_chunks(user):
    run = RunFactory(created_by=user)
    metric_points_write([(run.pk, "k", s, s / 4, T) for s in range(45_000)])

    response = api_client_for(user).get(f"/runs/{run.pk}/metrics/export", {"format": "json"})

    chunks = list(response.streaming_content)
    document = json.loads(b"".join(chunks))
    assert len(chunks) > 3 and len(document) == 45_000
    assert document[-1] == {
        "run": run.pk,
        "key": "k",
        "step": 44_999,
        "value": 44_999 / 4,
        "wall_time": document[-1]["wall_time"],
    }


def test_an_empty_comparison_export_is_still_a_valid_file(user, runs):
    _, _, theirs = runs
    api = api_client_for(user)

    assert (
        json.loads(_body(api.get("/runs/compare/export", {"runs": str(theirs.pk), "format": "json"}))) == []
    )
    assert (
        _body(api.get("/runs/compare/export", {"runs": str(theirs.pk)})) == "run,key,step,value,wall_time\n"
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "runs"),
        ({"runs": "1,x"}, "runs"),
        ({"runs": ",".join(map(str, range(1, 102)))}, "runs"),
        ({"runs": "1", "format": "xlsx"}, "format"),
    ],
)
def test_a_bad_comparison_export_is_refused_naming_the_field(user, params, field):
    response = api_client_for(user).get("/runs/compare/export", params)

    assert response.status_code == 400 and response.json()["field"] == field


def test_the_run_and_compare_pages_link_their_exports_and_the_links_work(logged_in, runs):
    a, b, _ = runs

    run_page = logged_in.get(f"/runs/{a.pk}/").content.decode()
    compare_page = logged_in.get("/runs/compare/", {"runs": f"{a.pk},{b.pk}"}).content.decode()
    downloaded = logged_in.get(f"/api/v1/runs/compare/export?runs={a.pk},{b.pk}&format=csv")

    for fmt in ("csv", "json", "jsonl"):
        assert f'href="/api/v1/runs/{a.pk}/metrics/export?format={fmt}"' in run_page
        assert f'href="/api/v1/runs/compare/export?runs={a.pk},{b.pk}&amp;format={fmt}"' in compare_page
    assert _body(downloaded).count("\n") == 5  # the browser's session is enough: header and four points


def test_a_comparison_export_read_partly_ends_its_cursors_transaction_when_closed(user):
    """Runs are exported one server-side cursor at a time (on PostgreSQL, in a transaction: a savepoint
    inside a test); a client that goes away mid-export leaves none open."""
    from django.db import connection

    from runs.metric_export import metric_export_many

    a, b = RunFactory(created_by=user), RunFactory(created_by=user)
    metric_points_write([(run.pk, "k", s, 1.0, T) for run in (a, b) for s in range(25_000)])
    depth = len(connection.savepoint_ids)

    chunks = metric_export_many(run_ids=[a.pk, b.pk], fmt="json")
    head = [next(chunks) for _ in range(4)]  # "[", a's two chunks, then b's first: b's cursor is open
    during = len(connection.savepoint_ids)
    chunks.close()

    assert head[0] == b"[\n" and f'"run":{b.pk}'.encode() in head[3]
    assert len(connection.savepoint_ids) == depth
    assert during == depth + (1 if connection.vendor == "postgresql" else 0)
