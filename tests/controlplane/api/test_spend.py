"""Spend through the API (controlplane/api/spend.py): the spend page's groupings of the ledger over
`since`..`until`, and its CSV, for the runs of the caller's teams only."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from runs.models import RunStatus
from runs.spend.models import CostEntry
from tests.controlplane.api.conftest import api_client_for
from tests.factories import MetricPointFactory, RunFactory, TeamFactory, UserFactory

TODAY = dt.datetime.now(dt.UTC).date()
DAY = dt.timedelta(days=1)


@pytest.fixture
def ledger(db):
    """Two runs of team gamma (by ann and bob) over three days, and one of team delta."""
    gamma, delta = TeamFactory(name="gamma"), TeamFactory(name="delta")
    ann = UserFactory(username="ann", password=None, membership__team=gamma)
    bob = UserFactory(username="bob", password=None, membership__team=gamma)
    eve = UserFactory(username="eve", password=None, membership__team=delta)
    big = RunFactory(name="=big", created_by=ann, team=gamma, pool="cpu", status=RunStatus.SUCCEEDED)
    small = RunFactory(name="small", created_by=bob, team=gamma, pool="cpu")
    theirs = RunFactory(name="theirs", created_by=eve, team=delta, pool="cpu")
    CostEntry.objects.create(run=big, day=TODAY - 2 * DAY, usd=Decimal("10.000001"), gpu_hours=4)
    CostEntry.objects.create(run=big, day=TODAY, usd=Decimal("2.5"), gpu_hours=1)
    CostEntry.objects.create(run=small, day=TODAY - DAY, usd=Decimal("1.25"), gpu_hours=0.5)
    CostEntry.objects.create(run=small, day=TODAY - 40 * DAY, usd=Decimal("100"), gpu_hours=40)
    CostEntry.objects.create(run=theirs, day=TODAY, usd=Decimal("999"), gpu_hours=99)
    MetricPointFactory(run=big, key="pass_rate", step=0, value=0.25)
    MetricPointFactory(run=big, key="pass_rate", step=9, value=0.50)
    return {"ann": ann, "big": big, "small": small}


def test_by_day_is_the_pages_last_30_days_of_the_callers_teams(ledger):
    body = api_client_for(ledger["ann"]).get("/spend", {"by": "day"}).json()

    assert body["by"] == "day" and body["since"] == (TODAY - 29 * DAY).isoformat() and body["until"] is None
    assert body["rows"] == [
        {"day": (TODAY - 2 * DAY).isoformat(), "usd": 10.000001, "gpu_hours": 4.0, "runs": 1},
        {"day": (TODAY - DAY).isoformat(), "usd": 1.25, "gpu_hours": 0.5, "runs": 1},
        {"day": TODAY.isoformat(), "usd": 2.5, "gpu_hours": 1.0, "runs": 1},
    ]
    assert body["total_usd"] == 13.750001  # team delta's $999 and the 40-day-old $100 are not in it


def test_by_user_and_by_team_group_as_the_page(ledger):
    api = api_client_for(ledger["ann"])

    by_user = api.get("/spend", {"by": "user"}).json()["rows"]
    by_team = api.get("/spend", {"by": "team"}).json()["rows"]

    assert [(r["user"], r["usd"], r["runs"]) for r in by_user] == [("ann", 12.500001, 1), ("bob", 1.25, 1)]
    assert [(r["team"], r["usd"], r["runs"]) for r in by_team] == [("gamma", 13.750001, 2)]


def test_by_run_lists_every_run_with_its_pass_rate_gain_costliest_first(ledger):
    rows = api_client_for(ledger["ann"]).get("/spend", {"by": "run"}).json()["rows"]

    assert [(r["run_id"], r["name"], r["usd"]) for r in rows] == [
        (ledger["big"].pk, "=big", 12.500001),
        (ledger["small"].pk, "small", 1.25),
    ]
    assert rows[0]["gain_points"] == 25.0 and rows[0]["usd_per_point"] == pytest.approx(0.5, abs=1e-6)
    assert rows[1]["gain_points"] is None and rows[1]["usd_per_point"] is None


def test_since_and_until_bound_the_period_both_days_included(ledger):
    api = api_client_for(ledger["ann"])
    yesterday = (TODAY - DAY).isoformat()

    one_day = api.get("/spend", {"by": "day", "since": yesterday, "until": yesterday}).json()
    long_ago = api.get("/spend", {"by": "day", "since": (TODAY - 60 * DAY).isoformat()}).json()

    assert [r["day"] for r in one_day["rows"]] == [yesterday] and one_day["total_usd"] == 1.25
    assert long_ago["total_usd"] == 113.750001


def test_the_csv_is_the_pages_export_of_the_period(ledger):
    response = api_client_for(ledger["ann"]).get(
        "/spend", {"format": "csv", "since": (TODAY - DAY).isoformat(), "until": TODAY.isoformat()}
    )

    assert response.status_code == 200 and response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["day", "run_id", "run_name", "user", "team", "pool", "status", "usd", "gpu_hours"]
    small, big = ledger["small"], ledger["big"]
    assert rows[1:] == [
        [
            (TODAY - DAY).isoformat(),
            str(small.pk),
            "small",
            "bob",
            "gamma",
            "cpu",
            "queued",
            "1.250000",
            "0.5",
        ],
        # A run name that a spreadsheet would run as a formula is text, as in the page's export.
        [TODAY.isoformat(), str(big.pk), "'=big", "ann", "gamma", "cpu", "succeeded", "2.500000", "1.0"],
    ]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"by": "pool"}, "by"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-02-30"}, "until"),
        ({"format": "xlsx"}, "format"),
        ({"since": "2026-03-02", "until": "2026-03-01"}, "until"),
    ],
)
def test_bad_parameters_are_named(ledger, query, field):
    response = api_client_for(ledger["ann"]).get("/spend", query)

    assert response.status_code == 400
    assert response.json()["field"] == field and response.json()["error"].startswith(f"{field}: ")


def test_a_user_in_no_team_spends_nothing(ledger):
    loner = UserFactory(username="lou", password=None, membership=None)

    body = api_client_for(loner).get("/spend", {"by": "run"}).json()

    assert body["rows"] == [] and body["total_usd"] == 0
