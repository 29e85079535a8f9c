"""Organizing runs in Chromium (docs/runs.md, "Organizing runs" and "Progress"): the progress line, a tag
added and the runs list filtered by it, a rename, a Markdown note that runs no script, the Cancel
confirmation (dismissed: nothing happens; confirmed: the run is cancelling), archive hiding the run; and
the confirmations of member removal and delete."""

import datetime as dt
import re

import httpx
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from controlplane.accounts.models import Membership, Role
from runs.models import LogLine, Run, RunStatus
from tests.factories import TEST_TOKEN, RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.e2e


def _login(page, base_url: str, path: str) -> None:
    page.goto(f"{base_url}{path}")
    page.fill("#id_username", "olga")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")


def test_tag_filter_rename_note_cancel_confirmation_and_archive(host_stack, page):
    olga = UserFactory(username="olga", password="correct horse battery")
    run = RunFactory(
        created_by=olga,
        name="baseline",
        status=RunStatus.RUNNING,
        config={"steps": 10},
        last_step=2,
        started_at=timezone.now() - dt.timedelta(minutes=3),
    )
    RunFactory(created_by=olga, name="untagged-neighbour")
    _login(page, host_stack.base_url, f"/runs/{run.pk}/")

    expect(page.get_by_test_id("progress-steps")).to_have_text("step 3 of 10")

    # A tag, through the htmx form: the block swaps in place with the tag cleaned to a slug.
    page.get_by_test_id("tag-input").fill("KL Sweep")
    page.get_by_test_id("tag-add").click()
    expect(page.get_by_test_id("tag")).to_have_text("kl-sweep×")

    page.locator("details.rename summary").click()
    page.get_by_test_id("rename-input").fill("baseline kl 0.02")
    page.get_by_test_id("rename-save").click()
    expect(page.get_by_test_id("run-title")).to_have_text(f"Run #{run.pk} baseline kl 0.02")

    # The note: Markdown renders; a script tag and a javascript: link do not survive.
    page.locator("#run-note summary").click()
    page.get_by_test_id("note-input").fill(
        "**why**: KL too high\n\n<script>window.pwned = 1</script>\n\n[click me](javascript:window.pwned=2)"
    )
    page.get_by_test_id("note-save").click()
    note = page.get_by_test_id("note-html")
    expect(note.locator("strong")).to_have_text("why")
    expect(note).to_contain_text("<script>window.pwned = 1</script>")  # shown as text
    expect(note.locator("a")).to_have_count(0)
    assert page.evaluate("window.pwned") is None

    # Cancel asks first; keeping it does nothing.
    page.get_by_test_id("cancel").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Cancel run #{run.pk}")
    page.get_by_test_id("confirm-keep").click()
    expect(dialog).to_be_hidden()
    page.wait_for_timeout(300)  # a submit, had one gone out, would have landed by now
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING
    page.get_by_test_id("cancel").click()
    page.get_by_test_id("confirm-go").click()
    expect(page.get_by_test_id("run-status")).to_have_text("Cancelling")

    # The runs list, filtered by the tag: only the tagged run.
    page.goto(f"{host_stack.base_url}/runs/")
    expect(page.locator("#runs-table")).to_contain_text("untagged-neighbour")
    page.get_by_label("Tag").fill("kl-sweep")
    page.locator("#run-filters button[type=submit]").click()
    rows = page.locator("#runs-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("baseline kl 0.02")
    expect(rows.get_by_test_id("row-progress")).to_contain_text("3/10")

    # Archive hides it from the list; the archived filter brings it back.
    page.goto(f"{host_stack.base_url}/runs/{run.pk}/")
    page.get_by_test_id("archive").click()
    expect(page.get_by_test_id("archived-note")).to_contain_text("hidden from the runs list")
    page.goto(f"{host_stack.base_url}/runs/?tag=kl-sweep")
    expect(page.get_by_test_id("runs-empty")).to_contain_text("No run tagged “kl-sweep”")
    page.get_by_label("Archived").select_option("only")
    page.locator("#run-filters button[type=submit]").click()
    expect(page.locator("#runs-table tbody tr")).to_have_count(1)
    expect(page.locator("#runs-table")).to_contain_text("archived")


def test_a_team_admin_confirms_member_removal_and_deletes_an_ended_run(host_stack, page):
    lab = TeamFactory(name="lab")
    ada = UserFactory(
        username="olga", password="correct horse battery", membership__team=lab, membership__role=Role.ADMIN
    )
    UserFactory(username="max", membership__team=lab, membership__role=Role.MEMBER)
    ended = RunFactory(created_by=ada, team=lab, name="finished-run", status=RunStatus.SUCCEEDED)
    _login(page, host_stack.base_url, f"/teams/{lab.pk}/")

    # Removing a member asks first; keeping them does nothing.
    row = page.locator("[data-user=max]")
    row.get_by_role("button", name="Remove").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_contain_text("Remove max from lab?")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.wait_for_timeout(300)
    assert Membership.objects.filter(team=lab, user__username="max").exists()
    row.get_by_role("button", name="Remove").click()
    page.get_by_test_id("confirm-go").click()
    expect(page.locator(".messages")).to_contain_text("max removed from lab")

    # Delete, confirmed: the run is gone and the list says so.
    page.goto(f"{host_stack.base_url}/runs/{ended.pk}/")
    page.get_by_test_id("delete").click()
    expect(dialog).to_contain_text(f"Delete run #{ended.pk} finished-run?")
    page.get_by_test_id("confirm-keep").click()
    expect(dialog).to_be_hidden()
    assert Run.objects.filter(pk=ended.pk).exists()
    page.get_by_test_id("delete").click()
    page.get_by_test_id("confirm-go").click()
    expect(page.locator(".messages")).to_contain_text(f"Run #{ended.pk} finished-run deleted")
    assert not Run.objects.filter(pk=ended.pk).exists()


def test_live_log_lines_read_in_the_same_local_time_as_the_rendered_ones(host_stack, page):
    olga = UserFactory(username="olga", password="correct horse battery")
    run = RunFactory(created_by=olga, status=RunStatus.RUNNING)
    logged = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    LogLine.objects.create(run=run, source="trainer", message="rendered by the server", time=logged)
    _login(page, host_stack.base_url, f"/runs/{run.pk}/")
    expect(page.locator("#live-state")).to_have_text("live", timeout=30_000)

    answer = httpx.post(
        f"{host_stack.base_url}/api/v1/runs/{run.pk}/events",
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
        json={
            "events": [{"seq": 1, "type": "log", "message": "arrived live", "time": logged.timestamp() + 1}]
        },
    )
    assert answer.status_code == 200, answer.text

    lines = page.locator("#log > span")
    expect(lines).to_have_count(2)
    expect(page.locator("#log time.when")).to_have_attribute("title", "2026-01-02 03:04:05 UTC")
    rendered, live = lines.nth(0).inner_text(), lines.nth(1).inner_text()
    stamp = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \[(trainer|external)\] ")
    first, second = stamp.match(rendered), stamp.match(live)
    assert first and second, (rendered, live)
    # The browser's zone, both: one second apart, as logged (not when the line arrived).
    parse = dt.datetime.fromisoformat
    assert (parse(second.group(1)) - parse(first.group(1))).total_seconds() == 1
