"""A person's path in a real browser: log in, upload a dataset, launch a run, watch the chart grow, cancel."""

import pytest
from playwright.sync_api import expect

from datasets_app.models import DatasetVersion
from runs.models import Run, RunStatus
from tests.e2e.conftest import wait_until, wait_verified
from tests.factories import UserFactory

pytestmark = pytest.mark.e2e


DATASET = (
    '{"task_id": "B/0", "prompt": "def add(a, b):\\n", "entry_point": "add", "canonical_solution": '
    '"    return a + b\\n", "test": "def check(candidate):\\n    assert candidate(1, 2) == 3\\n"}\n'
    '{"task_id": "B/1", "prompt": "def neg(x):\\n", "entry_point": "neg", "canonical_solution": '
    '"    return -x\\n", "test": "def check(candidate):\\n    assert candidate(3) == -3\\n"}\n'
)


def points(page) -> int:
    return int(page.locator('figure.chart[data-key="reward/mean"]').get_attribute("data-points") or 0)


def test_log_in_upload_launch_watch_cancel_clone_and_compare(stack, page, tmp_path, settings):
    UserFactory(username="bob", password="correct horse battery")
    dataset = tmp_path / "mini.jsonl"
    dataset.write_text(DATASET)

    page.goto(f"{stack.base_url}/runs/")
    expect(page).to_have_url(f"{stack.base_url}/login/?next=/runs/")
    page.fill("#id_username", "bob")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    expect(page.get_by_text("No runs yet.")).to_be_visible()

    page.click("text=Datasets")
    page.fill("#id_name", "browser-mini")
    page.set_input_files("#id_file", str(dataset))
    page.click("#upload-form button[type=submit]")
    expect(page.get_by_text("Imported browser-mini v1: 2 problems.")).to_be_visible()
    wait_verified(DatasetVersion.objects.get(dataset__name="browser-mini").pk)

    page.click("text=Launch a run on it")
    page.fill("#id_steps", "300")
    page.fill("#id_max_new_tokens", "24")
    page.select_option("#id_dataset_version", label="browser-mini v1")
    page.click("#launch-form button[type=submit]")
    expect(page.locator("[data-testid=run-status]")).to_be_visible()
    run = Run.objects.get()

    wait_until(lambda: points(page) >= 1, 240, f"the chart's first point\n{stack.log_tail()}")
    first = points(page)
    wait_until(lambda: points(page) > first, 120, "the chart to gain points without a reload")
    expect(page.locator("[data-testid=last-update]")).not_to_have_text("never")

    page.click("[data-testid=cancel]")
    page.click("[data-testid=confirm-go]")  # Cancel asks first (static/js/confirm.js)
    expect(page.locator("[data-testid=run-status]")).to_have_text("Cancelled", timeout=90_000)
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED

    # Clone: the same settings, one changed, launched as a second run.
    page.click("[data-testid=clone]")
    expect(page.locator("#id_name")).to_have_value(f"{run.name} (clone)")
    expect(page.locator("#id_max_new_tokens")).to_have_value("24")
    page.fill("#id_steps", "2")
    page.click("#launch-form button[type=submit]")
    expect(page.locator("[data-testid=run-status]")).to_have_text("Succeeded", timeout=180_000)
    clone = Run.objects.exclude(pk=run.pk).get()
    assert clone.config["steps"] == 2 and clone.config["max_new_tokens"] == 24

    # Compare the two from the runs list: a shareable URL, the differing setting, overlaid charts.
    page.click("text=Runs")
    page.check(f"input[name=pick][value='{run.pk}']")
    page.check(f"input[name=pick][value='{clone.pk}']")
    page.click("#compare-button")
    expect(page).to_have_url(f"{stack.base_url}/runs/compare/?ids={clone.pk}%2C{run.pk}")
    expect(page.locator("#config-diff th[title=steps]")).to_have_text("Steps")
    expect(page.locator('figure.chart[data-key="pass_rate"]')).to_have_attribute("data-series", "2")
