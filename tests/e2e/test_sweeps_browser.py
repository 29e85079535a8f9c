"""A 2×2 grid sweep launched from the browser (preview, launch, the sweep page with its parallel
coordinates), then "Compare these runs" opens the compare page with its four runs. The stack has no GPU
worker (host_stack): the runs stay queued, which is what the sweep page must show."""

import pytest
from playwright.sync_api import expect

from runs.models import Run, RunStatus
from runs.sweeps.models import Sweep
from tests.factories import ProblemFactory, UserFactory

pytestmark = pytest.mark.e2e


def test_a_two_by_two_grid_sweep_is_launched_from_the_browser_and_compared(host_stack, page):
    UserFactory(username="sam", password="correct horse battery")
    version = ProblemFactory(version__dataset__team=None, version__dataset__name="adders").version

    page.goto(f"{host_stack.base_url}/sweeps/")
    page.fill("#id_username", "sam")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    expect(page.get_by_test_id("sweeps-empty")).to_contain_text("No sweep yet")
    page.get_by_test_id("sweep-new").click()

    page.fill("#id_name", "e2e-grid")
    page.select_option("#id_dataset_version", str(version.pk))
    page.fill("#id_config_yaml", "steps: 2\n")
    page.fill("#id_axes_yaml", "lr: [1.0e-5, 3.0e-5]\ngroup_size: [2, 4]\n")
    expect(page.get_by_test_id("preview-count")).to_have_text("4 runs")  # the htmx preview, before launch
    expect(page.get_by_test_id("sweep-preview")).to_contain_text("e2e-grid-4")
    page.get_by_test_id("sweep-launch").click()

    expect(page.locator(".messages")).to_contain_text("Sweep e2e-grid: 4 runs queued.")
    sweep = Sweep.objects.get(name="e2e-grid")
    runs = list(Run.objects.filter(sweep_run__sweep=sweep).order_by("sweep_run__index"))
    assert [r.name for r in runs] == ["e2e-grid-1", "e2e-grid-2", "e2e-grid-3", "e2e-grid-4"]
    assert {r.status for r in runs} == {RunStatus.QUEUED}
    rows = page.locator("[data-testid=sweep-runs] tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.nth(3).locator("td").nth(1)).to_have_text("3e-05")
    expect(rows.nth(3).locator("td").nth(2)).to_have_text("4")
    expect(page.get_by_test_id("sweep-run-status").first).to_have_text("Queued")
    plot = page.get_by_test_id("sweep-plot")
    expect(plot).to_have_attribute("data-drawn", "true")
    expect(plot.locator("polyline")).to_have_count(4)
    expect(plot.locator("svg text", has_text="group_size")).to_have_count(1)

    ids = ",".join(str(r.pk) for r in runs)
    page.get_by_test_id("sweep-compare").click()
    expect(page).to_have_url(f"{host_stack.base_url}/runs/compare/?runs={ids}")
    for run in runs:
        expect(page.locator("main")).to_contain_text(run.name)
    expect(page.locator("#compare-charts")).to_have_attribute("data-runs", ids)

    page.goto(f"{host_stack.base_url}/runs/{runs[0].pk}/")  # and back from a run to its sweep
    page.get_by_test_id("run-sweep").get_by_role("link").click()
    expect(page.locator("h1")).to_contain_text("Sweep e2e-grid")

    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.get_by_test_id("sweep-stop").click()
    expect(page.locator(".messages")).to_contain_text("Sweep e2e-grid stopped: 4 active run(s) cancelled.")
    assert dialogs == ["Stop sweep e2e-grid? Its queued and running runs are cancelled."]
    expect(page.get_by_test_id("sweep-status")).to_have_text("Stopped")
    expect(page.get_by_test_id("sweep-run-status")).to_have_text(["Cancelled"] * 4)
