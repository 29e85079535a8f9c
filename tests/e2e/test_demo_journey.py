"""`make demo`'s own stack, as a person meets it: `manage.py demo` with nothing set (SQLite, the filesystem
broker, in-memory channels, development mode set by the command itself), driven in Chromium.

The rest of the e2e tests run their stack on PostgreSQL and Redis; this one is the embedded default, and
make test runs it in its embedded run (run_once in pyproject.toml).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import wait_until
from tests.processes import free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
HOSTILE = "<script>alert('task')</script>\"><img src=x onerror=alert('img')>"
# Valid problems whose text tries to run script wherever it is shown unescaped.
DATASET = "".join(
    json.dumps(
        {
            "task_id": f"Hostile/{n}{HOSTILE}",
            "prompt": f'def add(a, b):\n    """{HOSTILE}"""\n',
            "entry_point": "add",
            "canonical_solution": "    return a + b\n",
            "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
        }
    )
    + "\n"
    for n in range(2)
)


@pytest.fixture
def demo(tmp_path):
    """`python manage.py demo` on a free port with none of the test run's storage settings."""
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "TRIAD_DEV", "SECRET_KEY"}
    }
    env.update({"TRIAD_VAR_DIR": str(tmp_path / "var"), "PYTHONUNBUFFERED": "1"})
    log_path = tmp_path / "demo.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "demo", "--port", str(port), "--steps", "400"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def login() -> tuple[str, str] | None:
        assert proc.poll() is None, log_path.read_text(errors="replace")
        match = re.search(r"log in as: (\S+) / (\S+)", log_path.read_text(errors="replace"))
        return (match.group(1), match.group(2)) if match else None

    try:
        user, password = wait_until(login, 300, "the demo to print its login")
        yield f"http://127.0.0.1:{port}", user, password, log_path
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # the demo's own clean stop: cancel runs, stop processes
            try:
                proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def points(page) -> int:
    return int(page.locator('figure.chart[data-key="reward/mean"]').get_attribute("data-points") or 0)


def test_the_demo_stack_login_live_run_review_upload_launch_cancel_and_every_page(demo, page, tmp_path):
    base, user, password, log_path = demo
    server_errors: list[str] = []
    dialogs: list[str] = []
    page.on("response", lambda r: server_errors.append(f"{r.status} {r.url}") if r.status >= 500 else None)
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    page.goto(f"{base}/runs/")
    page.fill("#id_username", user)
    page.fill("#id_password", password)
    page.click("button[type=submit]")

    # The demo run's page grows live.
    run_id = re.search(r"launched run #(\d+)", log_path.read_text()).group(1)
    page.click(f"a[href='/runs/{run_id}/']")
    wait_until(lambda: points(page) >= 1, 420, f"the demo run's first point\n{log_path.read_text()[-3000:]}")
    first = points(page)
    wait_until(lambda: points(page) > first, 240, "the chart to gain points without a reload")

    # A failing generation labelled with the keyboard.
    page.click("[data-testid=review-link]")
    wait_until(
        lambda: page.reload() or page.locator("[data-testid=gen-row]").count() > 0,
        240,
        "a failing generation to review",
        interval_s=3,
    )
    page.keyboard.press("j")
    expect(page.locator("[data-testid=generation]")).to_be_visible()
    page.keyboard.press("1")
    expect(page.locator("[data-testid=labels] [data-testid=label]")).to_have_count(1)
    page.keyboard.press("u")
    expect(page.locator("[data-testid=labels] [data-testid=label]")).to_have_count(0)

    # An upload of problems whose text is hostile, and its pages.
    dataset = tmp_path / "hostile.jsonl"
    dataset.write_text(DATASET)
    page.click("nav >> text=Datasets")
    page.fill("#id_name", "hostile")
    page.set_input_files("#id_file", str(dataset))
    page.click("#upload-form button[type=submit]")
    expect(page.get_by_text("Imported hostile v1: 2 problems.")).to_be_visible()

    # A launch from the form on the demo's verified dataset, then its cancel.
    page.click("nav >> text=Launch")
    page.fill("#id_name", "journey")
    page.fill("#id_steps", "50")
    page.select_option("#id_dataset_version", label="demo-synthetic v1")
    page.click("#launch-form button[type=submit]")
    expect(page.locator("[data-testid=run-status]")).to_be_visible()
    page.click("[data-testid=cancel]")
    page.click("[data-testid=confirm-go]")  # Cancel asks first (static/js/confirm.js)
    expect(page.locator("[data-testid=run-status]")).to_have_text("Cancelled", timeout=180_000)

    # Every page of the nav, and the hostile dataset's own.
    for name in ("Runs", "Launch", "Datasets", "Spend", "Nodes", "Teams", "Audit log"):
        page.click(f"nav >> text={name}")
        page.wait_for_load_state("networkidle")
    page.click("nav >> text=Datasets")
    page.get_by_role("link", name="hostile", exact=True).first.click()
    page.wait_for_load_state("networkidle")
    time.sleep(1)  # any inline handler of the hostile text would have fired by now

    assert server_errors == [], log_path.read_text(errors="replace")[-3000:]
    assert dialogs == []
