"""The compare picker in a real browser: /runs/compare/ lists the user's runs, the search filters them as
one types while a checked run stays checked, "Compare selected" opens the shareable comparison, and its
export link downloads one CSV of both runs."""

import csv
import datetime as dt
import io

import pytest
from playwright.sync_api import expect

from runs.metric_store import metric_points_write
from tests.factories import RunFactory, UserFactory

pytestmark = pytest.mark.e2e


def test_pick_two_runs_by_search_compare_them_and_export_both(stack, page):
    user = UserFactory(username="pia", password="correct horse battery")
    kept = RunFactory(created_by=user, name="baseline")
    other = RunFactory(created_by=user, name="lr-sweep-high")
    RunFactory(created_by=user, name="lr-sweep-low")
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    metric_points_write([(run.pk, "pass_rate", s, s / 10, now) for run in (kept, other) for s in range(3)])

    page.goto(f"{stack.base_url}/runs/compare/")
    page.fill("#id_username", "pia")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    rows = page.locator("#picker-table tbody tr")
    expect(rows).to_have_count(3)
    page.get_by_label(f"#{kept.pk} baseline").check()
    page.get_by_label("Search runs").fill("high")  # htmx swaps the rows in as one types
    expect(rows).to_have_count(2)  # the match, and the checked run kept listed
    expect(page.get_by_label(f"#{kept.pk} baseline")).to_be_checked()
    page.get_by_label(f"#{other.pk} lr-sweep-high").check()
    page.click("#compare-selected")

    expect(page).to_have_url(f"{stack.base_url}/runs/compare/?runs={kept.pk},{other.pk}")
    expect(page.locator("h1")).to_have_text("Compare 2 runs")
    expect(page.locator("#compare-summary tbody tr")).to_have_count(2)
    with page.expect_download() as download:
        page.click("a[data-export=csv]")
    rows = list(csv.DictReader(io.StringIO(download.value.path().read_text())))
    assert [(int(r["run"]), r["key"], int(r["step"])) for r in rows] == [
        (run.pk, "pass_rate", s) for run in (kept, other) for s in range(3)
    ]
