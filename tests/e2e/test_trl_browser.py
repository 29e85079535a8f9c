"""The issue's end to end: an outside TRL run appears live in the browser. A run page is open while TRL's
real GRPOTrainer (CPU, the tiny model the tests build) reports to the real ASGI server through the
callback; the page follows it without a reload (status, reward chart), and its generations are in review.
"""

import pytest
from playwright.sync_api import expect

from runs.external import run_create_external
from tests.workers.integrations.test_trl import grpo, jsonl_rows, problems
from workers.integrations.trl import SandboxReward, TriadCallback

pytestmark = pytest.mark.e2e


def test_a_trl_run_shows_live_on_its_page_and_its_generations_in_review(
    stack, page, tiny_hf_dir, tmp_path, monkeypatch
):
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(name, "1")
    user, version, rows = problems()
    user.set_password("correct horse battery")
    user.save()
    created = run_create_external(
        user=user, team=None, dataset_version=version, name="trl", pool="cpu", gpus=1
    )

    page.goto(f"{stack.base_url}/runs/{created.run.pk}/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    expect(page.locator("[data-testid=external-badge]")).to_be_visible()
    expect(page.locator("[data-testid=run-status]")).to_have_text("Queued")

    callback = TriadCallback(
        url=stack.base_url,
        run_id=created.run.pk,
        token=created.token,
        spool_dir=tmp_path / "spool",
        heartbeat_s=0.5,
    )
    grpo(
        tiny_hf_dir, tmp_path, rows, SandboxReward(jsonl_rows(rows), callback=callback), callback, steps=3
    ).train()

    # the open page followed the run over its socket: no reload
    expect(page.locator("[data-testid=run-status]")).to_have_text("Succeeded", timeout=20_000)
    expect(page.locator('figure.chart[data-key="reward/mean"]')).to_have_attribute("data-points", "3")

    page.click("[data-testid=review-link]")
    expect(page.locator("[data-testid=gen-row]").first).to_be_visible()
    expect(page.locator("body")).to_contain_text("Add/")
