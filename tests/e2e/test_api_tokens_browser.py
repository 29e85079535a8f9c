"""A personal API token from the user's page to a script and back: made in the browser, shown once, used
over HTTP against the real ASGI server, revoked in the browser, refused afterwards."""

import httpx
import pytest
from playwright.sync_api import expect

from tests.factories import UserFactory

pytestmark = pytest.mark.e2e


def test_make_a_token_on_the_account_page_use_it_from_a_script_and_revoke_it(stack, page):
    UserFactory(username="tia", password="correct horse battery")
    page.goto(f"{stack.base_url}/runs/")
    page.fill("#id_username", "tia")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")

    page.click("header a[href='/account/']")  # the user's name in the header leads to their page
    expect(page.locator(".empty")).to_contain_text("No API tokens yet")
    page.fill("#id_name", "laptop")
    page.select_option("#id_scope", "read")
    page.click("[data-testid=token-form] button[type=submit]")
    token = page.locator("#new-token").inner_text().strip()
    assert token.startswith("triad_pat_")

    me = httpx.get(f"{stack.base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["username"] == "tia"
    assert me.json()["token"]["scope"] == "read"

    page.goto(f"{stack.base_url}/account/")  # shown once: a later visit has only the hint
    expect(page.locator("#new-token")).to_have_count(0)
    row = page.locator("[data-token=laptop]")
    expect(row).to_contain_text(token[:16])
    expect(row).not_to_contain_text(token[16:])
    page.on("dialog", lambda dialog: dialog.accept())  # "Revoke laptop?"
    row.locator("button", has_text="Revoke").click()
    expect(page.locator(".messages")).to_contain_text("revoked")

    refused = httpx.get(f"{stack.base_url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401 and refused.json()["error"] == "API token 'laptop' was revoked"


def test_the_api_docs_render_from_local_files(stack, page):
    UserFactory(username="tia", password="correct horse battery")
    failed = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.goto(f"{stack.base_url}/api/v1/docs")
    page.fill("#id_username", "tia")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Triad API")
    expect(page.locator(".opblock-tag", has_text="ingest (run token)")).to_have_count(1)
    assert failed == []
