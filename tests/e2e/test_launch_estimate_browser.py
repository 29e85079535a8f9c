"""The launch form's cost estimate in a real browser follows the Advanced YAML while it is open."""

import re

import pytest
from playwright.sync_api import expect

from tests.factories import ProblemFactory, UserFactory

pytestmark = pytest.mark.e2e


def test_the_estimate_follows_the_open_yaml_shows_its_mistakes_and_returns_to_the_fields(stack, page):
    UserFactory(username="eve", password="correct horse battery")
    ProblemFactory()  # a dataset version to launch on
    estimate = page.locator("[data-testid=cost-estimate]")

    page.goto(f"{stack.base_url}/runs/new/")
    page.fill("#id_username", "eve")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    # The stack's pool has no price: $2 per GPU-hour; no similar run: 10 s per step.
    page.fill("#id_steps", "180")
    page.fill("#id_gpus_per_node", "1")
    page.locator("#id_gpus_per_node").dispatch_event("change")
    expect(estimate).to_contain_text("Estimated cost: $1.00")  # 180 × 10 s × 1 GPU × $2/h

    page.click("#advanced-config summary")
    yaml = page.locator("#id_config_yaml")
    expect(yaml).to_be_enabled()
    expect(yaml).to_have_value(re.compile(r"^steps: 180$", re.MULTILINE))  # filled from the fields
    yaml.fill("steps: 3600\ngpus_per_node: 2\n")
    yaml.press("End")  # a keystroke: the estimate follows typing
    expect(estimate).to_contain_text("Estimated cost: $40.00")  # 3600 × 10 s × 2 GPUs × $2/h
    expect(estimate).to_contain_text("from the config YAML")

    yaml.fill("steps: 3600\ngpus_per_node: lots\n")
    yaml.press("End")
    expect(estimate).to_contain_text("No estimate yet")
    expect(estimate).to_contain_text("config YAML: config line 2, 'gpus_per_node': must be an integer")

    page.click("#advanced-config summary")  # closed: the YAML no longer counts
    expect(estimate).to_contain_text("Estimated cost: $1.00")
