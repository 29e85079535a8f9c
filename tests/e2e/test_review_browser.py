"""Reviewing in a real browser: filter by class, label with the keyboard, see it reach the dataset."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from runs.review.services import review_generations_scan
from tests.factories import GenerationFactory, ProblemFactory, RunFactory, UserFactory

pytestmark = pytest.mark.e2e


def test_filter_by_class_label_with_keys_and_see_it_on_the_problem_page(stack, page):
    UserFactory(username="rita", password="correct horse battery")
    problem = ProblemFactory(task_id="Rev/0")
    run = RunFactory(dataset_version=problem.version)
    generations = [
        GenerationFactory(run=run, step=1, problem_id="Rev/0", error_class="wrong_answer"),
        GenerationFactory(run=run, step=2, problem_id="Rev/0", error_class="timeout", stderr=""),
        GenerationFactory(run=run, step=3, problem_id="Rev/0", error_class="timeout", stderr=""),
    ]
    review_generations_scan(run_id=run.pk, generations=generations, now=timezone.now())

    page.goto(f"{stack.base_url}/runs/{run.pk}/")
    page.fill("#id_username", "rita")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    page.click("[data-testid=review-link]")
    page.click("[data-testid=facet-timeout]")
    rows = page.locator("[data-testid=gen-row]")
    expect(rows).to_have_count(2)

    page.keyboard.press("j")
    expect(page.locator("[data-testid=generation]")).to_have_attribute("data-id", str(generations[1].pk))
    page.keyboard.press("j")
    expect(page.locator("[data-testid=generation]")).to_have_attribute("data-id", str(generations[2].pk))
    page.keyboard.press("k")
    expect(page.locator("[data-testid=generation]")).to_have_attribute("data-id", str(generations[1].pk))
    page.keyboard.press("2")  # bad_test
    expect(page.locator("[data-testid=labels] [data-testid=label]")).to_have_text(["bad_test"])
    expect(rows.nth(0).locator(".row-label")).to_have_text("bad_test")
    page.keyboard.press("4")  # flaky
    expect(page.locator("[data-testid=labels] [data-testid=label]")).to_have_text(["flaky", "bad_test"])
    page.keyboard.press("u")  # takes the flaky back
    expect(page.locator("[data-testid=labels] [data-testid=label]")).to_have_text(["bad_test"])

    page.click("[data-testid=problem-link]")
    expect(page.locator("[data-testid=review-flags]")).to_contain_text("bad_test")
    expect(page.locator("[data-testid=review-flags]")).not_to_contain_text("flaky")
