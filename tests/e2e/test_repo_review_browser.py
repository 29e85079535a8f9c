"""Reviewing repository episodes in a real browser: the outcome filter, the trajectory in the detail
pane with j, its turns with ] and [, a long observation opened with o, and no script run from what the
model or the workspace wrote."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from runs.review.services import review_generations_scan
from tests.factories import GenerationFactory, ProblemFactory, RunFactory, UserFactory

pytestmark = pytest.mark.e2e

HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(2)>"


def episode(run, outcome, step, observation="ok"):
    resolved = outcome == "resolved"
    return GenerationFactory(
        run=run,
        step=step,
        problem_id="Repo/0",
        completion="",
        passed=resolved,
        error_class="passed" if resolved else "wrong_answer",
        outcome=outcome,
        repo={
            "outcome": outcome,
            "turns": 2,
            "invalid_actions": 1,
            "test_files_edited": False,
            "trajectory": [
                {
                    "action": f'{{"tool": "search", "args": {{"text": "{step}"}}}}',
                    "observation": HOSTILE,
                    "valid": True,
                },
                {"action": "oops", "observation": observation, "valid": False},
            ],
            "trajectory_cut": 0,
            "diff": f"--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+{HOSTILE}\n",
            "fail_to_pass": {"tests.test_x.T.test_a": "passed" if resolved else "failed"},
            "pass_to_pass": {},
            "tests_before": {"tests.test_x.T.test_a": "failed"},
            "duration_ms": 100,
        },
    )


def test_filter_episodes_by_outcome_and_walk_a_trajectory_with_keys(stack, page):
    UserFactory(username="remy", password="correct horse battery")
    problem = ProblemFactory(task_id="Repo/0", prompt="Fix the reader.", solution="--- a/x.py\n+++ b/x.py\n")
    run = RunFactory(dataset_version=problem.version)
    episodes = [
        episode(run, "resolved", 1),
        episode(run, "tests_fail", 2, observation="line\n" * 400),
        episode(run, "turn_limit", 3),
    ]
    review_generations_scan(run_id=run.pk, generations=episodes, now=timezone.now())
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.goto(f"{stack.base_url}/review/runs/{run.pk}/")
    page.fill("#id_username", "remy")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    expect(page.locator("[data-testid=gen-row]")).to_have_count(2)  # the failing ones
    page.click("[data-testid=outcome-resolved]")
    expect(page.locator("[data-testid=gen-row]")).to_have_count(1)
    page.click("[data-testid=outcome-tests_fail]")
    expect(page.locator("[data-testid=gen-row]")).to_have_count(1)

    page.keyboard.press("j")
    pane = page.locator("[data-testid=episode]")
    expect(pane.locator("[data-testid=outcome]")).to_have_text("tests_fail")
    expect(pane.locator("[data-testid=turn]")).to_have_count(2)
    expect(pane.locator("[data-testid=invalid-action]")).to_have_count(1)
    expect(pane.locator("[data-testid=turn]").nth(0).locator("[data-testid=observation]")).to_have_text(
        HOSTILE
    )
    fold = pane.locator("details.observation-fold")
    expect(fold).not_to_have_attribute("open", "")
    page.keyboard.press("]")
    page.keyboard.press("]")
    expect(pane.locator("[data-testid=turn]").nth(1)).to_have_class("turn invalid current")
    page.keyboard.press("o")
    expect(fold).to_have_attribute("open", "")
    page.keyboard.press("[")
    expect(pane.locator("[data-testid=turn]").nth(0)).to_have_class("turn current")
    assert dialogs == []  # nothing the model or the workspace wrote ran
