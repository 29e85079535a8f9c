"""An alert end to end: a rule made in the browser on a run's page; the run's metric crosses it through
the real ingest API (with the run's token); the stack's worker evaluates it and delivers it: a correctly
signed POST reaches the webhook receiver this test runs on loopback, the mail is written (the stack's
processes use Django's filebased backend under their var dir in development: locmem mail would stay in
the worker's process; tests/runs/alerts/test_delivery.py checks mail with locmem), and the bell counts it."""

import json
import time

import httpx
import pytest
from playwright.sync_api import expect

from runs.alerts.signing import signature_valid
from tests.e2e.conftest import wait_until
from tests.factories import TEST_TOKEN, RunFactory, UserFactory
from tests.runs.alerts.receiver import Receiver

pytestmark = pytest.mark.e2e
SECRET = "e2e-webhook-secret-0123456789"


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


def post_metric(stack, run, seq: int, step: int, value: float) -> None:
    response = httpx.post(
        f"{stack.base_url}/api/v1/runs/{run.pk}/events",
        json={"events": [{"seq": seq, "type": "metric", "step": step, "values": {"reward/mean": value}}]},
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
    )
    assert response.status_code == 200, response.text


def test_a_rule_made_on_a_run_page_reaches_the_webhook_the_mail_and_the_bell(stack, page, receiver):
    user = UserFactory(username="ana", password="correct horse battery")
    run = RunFactory(created_by=user, status="running", name="grpo-alerts")
    post_metric(stack, run, 1, 0, 0.9)

    page.goto(f"{stack.base_url}/runs/{run.pk}/")
    page.fill("#id_username", "ana")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")

    card = page.locator("#run-alerts")
    expect(card).to_contain_text("No alert rule watches this run")
    expect(page.locator("[data-testid=bell-count]")).to_have_attribute("data-count", "0")
    form = card.locator("[data-testid=run-alert-form]")
    form.locator("select[name=condition]").select_option("below")
    form.locator("input[name=metric_key]").fill("reward/mean")
    form.locator("input[name=threshold]").fill("0.5")
    form.locator("textarea[name=emails]").fill("ops@example.com")
    form.locator("input[name=webhook_url]").fill(receiver.url)
    form.locator("input[name=webhook_secret]").fill(SECRET)
    form.locator("[data-testid=create-rule]").click()
    expect(page.locator(".messages")).to_contain_text("reward/mean falls below 0.5")
    expect(card.locator("[data-testid=run-alert-rule]")).to_contain_text("app, mail, webhook")

    post_metric(stack, run, 2, 1, 0.8)  # still fine
    post_metric(stack, run, 3, 2, 0.2)  # the breach
    post_metric(stack, run, 4, 3, 0.1)  # the same breach: fires nothing more

    wait_until(lambda: receiver.requests, 60, "the webhook's POST\n" + stack.log_tail())
    (request,) = receiver.requests
    assert signature_valid(
        secret=SECRET,
        timestamp=request.headers["X-Triad-Timestamp"],
        body=request.body,
        header=request.headers["X-Triad-Signature"],
        now=time.time(),
    )
    payload = json.loads(request.body)
    assert (payload["run"]["id"], payload["firing"]["step"], payload["firing"]["value"]) == (run.pk, 2, 0.2)

    mails = wait_until(lambda: list((stack.var_dir / "mail").glob("*.log")), 30, "the mail file")
    text = mails[0].read_text()
    assert "To: ops@example.com" in text and "reward/mean = 0.2 at step 2" in text

    page.reload()
    bell = page.locator("[data-testid=bell-count]")
    expect(bell).to_have_text("1")
    page.locator("[data-testid=alert-bell]").click()
    expect(page.locator("[data-testid=notification]")).to_contain_text("reward/mean = 0.2 at step 2")
    page.locator("[data-testid=mark-all-read]").click()
    expect(page.locator("[data-testid=bell-count]")).to_have_attribute("data-count", "0")

    page.locator("[data-testid=notification] a", has_text="reward/mean").first.click()
    expect(page.locator("[data-testid=firing]")).to_have_count(1)
    deliveries = page.locator("[data-testid=delivery]")
    expect(deliveries).to_have_count(2)
    expect(page.locator("[data-testid=deliveries]")).to_contain_text("webhook")
    expect(page.locator("[data-testid=deliveries]")).to_contain_text("delivered (HTTP 200)")
    expect(page.locator("body")).not_to_contain_text(SECRET)
    time.sleep(3)  # a later evaluation of the same breach posts nothing more
    assert len(receiver.requests) == 1
