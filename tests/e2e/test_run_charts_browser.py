"""The run page in a real browser: each reward component's share of the reward, stacked, and pass@k."""

import pytest
from playwright.sync_api import expect

from tests.factories import MetricPointFactory, RunFactory, UserFactory

pytestmark = pytest.mark.e2e


def test_the_reward_shares_stack_up_to_the_reward_and_eval_pass_at_k_is_charted(stack, page):
    user = UserFactory(username="sam", password="correct horse battery")
    run = RunFactory(
        created_by=user,
        config={
            "reward_correctness": 1.0,
            "reward_style": 0.5,
            "eval_every": 1,
            "eval_set": "humaneval",
            "eval_k": 2,
        },
    )
    for step, (correct, style) in enumerate([(0.25, 0.5), (0.5, 0.25), (0.75, 0.0625)]):
        for key, value in (
            ("reward/correctness/share", correct),
            ("reward/style/share", style),
            ("reward/mean", correct + style),
            ("eval/humaneval/pass@1", correct / 2),
            ("eval/humaneval/pass@2", correct),
        ):
            MetricPointFactory(run=run, key=key, step=step, value=value)

    page.goto(f"{stack.base_url}/runs/{run.pk}/")
    page.fill("#id_username", "sam")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")

    shares = page.locator('figure.chart[data-key="reward/share"]')
    expect(shares).to_have_attribute("data-points", "3")
    expect(shares.locator("canvas")).to_have_count(1)
    # the latest step's own values, not the stack's heights
    expect(shares.locator(".latest")).to_have_text("correctness 0.750 · style 0.0625")
    expect(shares.locator(".u-legend")).to_contain_text("style")
    evals = page.locator('figure.chart[data-key="eval/pass@k"]')
    expect(evals).to_have_attribute("data-points", "3")
    expect(evals.locator(".latest")).to_have_text("humaneval/pass@1 0.375 · humaneval/pass@2 0.750")
    expect(page.locator('figure.chart[data-key="reward/mean"]')).to_have_attribute("data-points", "3")
