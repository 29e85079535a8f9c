"""The alert pages: rules made from a run page and /alerts/, errors per field, the secret shown once,
notifications read, the bell's count; untrusted text escaped; team roles respected."""

import pytest

from controlplane.accounts.models import Role
from runs.alerts.evaluation import alert_metrics_evaluate
from runs.alerts.models import AlertRule, Notification
from tests.factories import MetricPointFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(client, member):
    client.force_login(member)
    return client


def test_a_rule_made_from_the_run_pages_card_goes_back_to_the_run(browser, run):
    page = browser.get(f"/runs/{run.pk}/")
    assert b'id="run-alerts"' in page.content and f"/alerts/runs/{run.pk}/".encode() in page.content
    card = browser.get(f"/alerts/runs/{run.pk}/").content.decode()
    assert "Alert me when" in card and "No alert rule watches this run" in card
    assert f'<input type="hidden" name="run" value="{run.pk}"' in card and 'name="team"' not in card
    response = browser.post(
        "/alerts/rules/new/",
        {
            "run": run.pk,
            "condition": "below",
            "metric_key": "reward/mean",
            "threshold": "0.1",
            "webhook_url": "http://127.0.0.1:9/hook",
            "enabled": "on",
            "next": f"/runs/{run.pk}/",
        },
    )
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/"
    rule = AlertRule.objects.get()
    assert (rule.run_id, rule.condition, rule.threshold) == (run.pk, "below", 0.1)
    shown = browser.get(f"/runs/{run.pk}/").content.decode()
    assert f"shown this once: {rule.webhook_secret}" in shown
    card = browser.get(f"/alerts/runs/{run.pk}/").content.decode()
    assert "reward/mean falls below 0.1" in card and "app, webhook" in card
    detail = browser.get(f"/alerts/rules/{rule.pk}/").content.decode()
    assert rule.webhook_secret not in detail and "secret set" in detail  # write-only from now on


def test_a_bad_rule_is_shown_again_with_each_fields_error(browser, run):
    response = browser.post("/alerts/rules/new/", {"run": run.pk, "condition": "above", "emails": "nope"})
    assert response.status_code == 400
    body = response.content.decode()
    assert 'data-testid="error-metric_key"' in body and 'data-testid="error-threshold"' in body
    assert "&#x27;nope&#x27; is not an email address" in body
    assert not AlertRule.objects.exists()


def test_a_team_rule_from_the_alerts_page_and_its_edit_and_delete(browser, run, member):
    response = browser.post(
        "/alerts/rules/new/",
        {"team": run.team_id, "condition": "state", "states": ["failed", "lost"], "enabled": "on"},
    )
    rule = AlertRule.objects.get()
    assert response["Location"] == f"/alerts/rules/{rule.pk}/" and rule.run_id is None
    listing = browser.get("/alerts/").content.decode()
    assert "run ends failed or lost" in listing and f"every run of {run.team}" in listing
    edited = browser.post(
        f"/alerts/rules/{rule.pk}/", {"condition": "state", "states": ["budget_stopped"], "name": "money"}
    )
    assert edited.status_code == 302
    rule.refresh_from_db()
    assert (rule.states, rule.name, rule.enabled) == (["budget_stopped"], "money", False)
    assert browser.post(f"/alerts/rules/{rule.pk}/delete/").status_code == 302
    assert not AlertRule.objects.exists()


def test_a_viewer_sees_rules_but_gets_no_form_and_cannot_post(client, run, make_rule):
    rule = make_rule(condition="nan", metric_key="loss")
    viewer = UserFactory(username="vic", membership__role=Role.VIEWER)
    client.force_login(viewer)
    card = client.get(f"/alerts/runs/{run.pk}/").content.decode()
    assert "loss is NaN or infinite" in card and "Alert me when" not in card
    assert client.post(f"/alerts/rules/{rule.pk}/delete/").status_code == 403
    assert (
        client.post("/alerts/rules/new/", {"run": run.pk, "condition": "nan", "metric_key": "x"}).status_code
        == 403
    )
    outsider = UserFactory(username="otto", membership__team=TeamFactory(name="beta"))
    client.force_login(outsider)
    assert client.get(f"/alerts/rules/{rule.pk}/").status_code == 404
    assert client.get(f"/alerts/runs/{run.pk}/").status_code == 404
    assert "loss" not in client.get("/alerts/").content.decode()


def test_untrusted_metric_keys_and_run_names_are_escaped(browser, run, make_rule):
    run.name = "<script>alert(1)</script>"
    run.save()
    make_rule(condition="above", metric_key="<b>k</b>", threshold=1, name="<img src=x>")
    MetricPointFactory(run=run, key="<b>k</b>", step=0, value=5.0)
    alert_metrics_evaluate(run_id=run.pk)
    for path in ("/alerts/", f"/alerts/runs/{run.pk}/", "/alerts/notifications/"):
        body = browser.get(path).content.decode()
        assert "<script>alert(1)" not in body and "<b>k</b>" not in body and "<img src=x>" not in body, path
    assert "&lt;b&gt;k&lt;/b&gt;" in browser.get("/alerts/notifications/").content.decode()


def test_the_bell_counts_unread_notifications_and_reading_them_clears_it(browser, run, make_rule, member):
    assert 'data-count="0"' in browser.get("/alerts/bell/").content.decode()
    make_rule(condition="above", metric_key="kl", threshold=1)
    for step, value in enumerate([5.0, 0.0, 6.0]):  # two breaches
        MetricPointFactory(run=run, key="kl", step=step, value=value)
    alert_metrics_evaluate(run_id=run.pk)
    bell = browser.get("/alerts/bell/").content.decode()
    assert 'data-count="2"' in bell and "every 15s" in bell and "load," not in bell
    first = Notification.objects.filter(user=member).order_by("pk").first()
    browser.post("/alerts/notifications/read/", {"id": first.pk})
    assert 'data-count="1"' in browser.get("/alerts/bell/").content.decode()
    browser.post("/alerts/notifications/read/")
    assert 'data-count="0"' in browser.get("/alerts/bell/").content.decode()
    page = browser.get("/runs/").content.decode()
    assert 'id="alert-bell"' in page and 'hx-trigger="load, every 15s"' in page
