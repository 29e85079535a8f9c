"""The launch page's memory estimate in a real browser: it follows the model, the pool and the engine
fields, and shows a refusal before Launch is pressed (docs/runs.md, "Resources")."""

import pytest
from playwright.sync_api import expect

from runs.nodes import NodeInfo, node_register
from tests.factories import ProblemFactory, RegisteredModelFactory, UserFactory

pytestmark = pytest.mark.e2e


def test_the_memory_estimate_follows_the_fields_and_shows_the_refusal(stack, page):
    eve = UserFactory(username="eve", password="correct horse battery")
    ProblemFactory()
    node_register(
        info=NodeInfo(
            name="a10-1",
            hostname="a10-1",
            pool="a10",
            gpu_type="A10G",
            gpu_count=1,
            gpu_memory_gb=24.0,
            compute_capability="8.6",
        )
    )
    RegisteredModelFactory(
        name="llama-7b", registered_by=eve, pool="a10", params=7_000_000_000, hidden_size=4096, num_layers=32
    )
    estimate = page.locator("[data-testid=cost-estimate]")

    page.goto(f"{stack.base_url}/runs/new/")
    page.fill("#id_username", "eve")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    expect(page.locator("#id_pool")).to_contain_text("a10 — 1 node, 1 × A10G 24 GB")
    expect(estimate).to_contain_text("~2.9 MB")  # the tiny model, fp32, with the KL monitor's reference

    page.select_option("#id_model", label="llama-7b")
    page.select_option("#id_precision", "bf16")
    expect(estimate).to_contain_text("Memory per GPU: ~104.3 GB (weights 13.0, grads 13.0, optimizer 78.2)")
    expect(estimate).to_contain_text("A launch would be refused: model llama-7b needs ~104.3 GB per GPU")

    page.fill("#id_lora_rank", "16")
    page.locator("#id_lora_rank").dispatch_event("change")
    expect(estimate).to_contain_text("Memory per GPU: ~13.5 GB")
    expect(estimate).not_to_contain_text("refused")
