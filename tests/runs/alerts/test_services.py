"""Making, changing and deleting rules: each bad field named, team roles respected, the webhook secret
made once and never answered again."""

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from controlplane.accounts.models import Role
from runs.alerts.models import AlertRule, AlertRuleRun
from runs.alerts.services import (
    AlertRuleInvalid,
    RuleInput,
    alert_rule_create,
    alert_rule_delete,
    alert_rule_update,
)
from tests.factories import MetricPointFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"condition": "sideways"}, "condition", "one of above, below"),
        ({"condition": "above", "threshold": 1}, "metric_key", "required"),
        ({"condition": "above", "metric_key": "reward mean", "threshold": 1}, "metric_key", "without spaces"),
        ({"condition": "above", "metric_key": "kl"}, "threshold", "required"),
        ({"condition": "below", "metric_key": "kl", "threshold": float("inf")}, "threshold", "finite"),
        ({"condition": "no_data", "metric_key": "kl"}, "minutes", "from 1 to"),
        ({"condition": "no_data", "metric_key": "kl", "minutes": 0}, "minutes", "from 1 to"),
        ({"condition": "state"}, "states", "one or more of failed, lost, budget_stopped"),
        ({"condition": "state", "states": ["succeeded"]}, "states", "one or more of"),
        (
            {"condition": "nan", "metric_key": "loss", "emails": ["not-an-address"]},
            "emails",
            "'not-an-address'",
        ),
        (
            {"condition": "nan", "metric_key": "loss", "webhook_url": "ftp://x.example"},
            "webhook_url",
            "http://",
        ),
        (
            {
                "condition": "nan",
                "metric_key": "loss",
                "webhook_url": "https://x.example",
                "webhook_secret": "short",
            },
            "webhook_secret",
            "at least 16",
        ),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field(make_rule, fields, field, words):
    with pytest.raises(AlertRuleInvalid) as caught:
        make_rule(**fields)
    assert words in caught.value.errors[field]
    assert not AlertRule.objects.exists()


def test_every_bad_field_is_named_at_once(make_rule):
    with pytest.raises(AlertRuleInvalid) as caught:
        make_rule(condition="above", emails=["x"])
    assert set(caught.value.errors) == {"metric_key", "threshold", "emails"}


def test_private_webhook_targets_are_refused_when_not_allowed(make_rule, settings):
    settings.TRIAD_WEBHOOK_ALLOW_PRIVATE = False
    for url, words in [
        ("http://127.0.0.1:9000/hook", "private"),
        ("http://10.1.2.3/hook", "private"),
        ("http://[::1]/hook", "private"),
        ("http://localhost:8080/", "this machine"),
    ]:
        with pytest.raises(AlertRuleInvalid) as caught:
            make_rule(condition="nan", metric_key="loss", webhook_url=url)
        assert words in caught.value.errors["webhook_url"], url
    make_rule(
        condition="nan", metric_key="loss", webhook_url="https://hooks.example.com/triad"
    )  # a name: checked at delivery


def test_a_webhook_without_a_secret_gets_one_made_and_returned_once(make_rule, member, run):
    rule, made = alert_rule_create(
        user=member,
        data=RuleInput(condition="nan", metric_key="loss", run_id=run.pk, webhook_url="https://h.example/x"),
    )
    assert len(made) >= 32 and rule.webhook_secret == made
    rule, again = alert_rule_update(
        user=member,
        rule=rule,
        data=RuleInput(condition="nan", metric_key="loss", webhook_url="https://h.example/y"),
    )
    assert again == "" and rule.webhook_secret == made  # a blank secret keeps the rule's
    rule, _ = alert_rule_update(
        user=member,
        rule=rule,
        data=RuleInput(
            condition="nan", metric_key="loss", webhook_url="https://h.example/y", webhook_secret="n" * 20
        ),
    )
    assert rule.webhook_secret == "n" * 20


def test_changing_a_rules_condition_starts_it_afresh(make_rule, member, run):
    MetricPointFactory(run=run, key="kl", step=4, value=2.0)
    rule = make_rule(condition="above", metric_key="kl", threshold=1)
    assert AlertRuleRun.objects.get(rule=rule).checked_step == 3  # judged from the latest point on
    AlertRuleRun.objects.filter(rule=rule).update(firing=True)
    alert_rule_update(user=member, rule=rule, data=RuleInput(condition="above", metric_key="kl", threshold=5))
    assert not AlertRuleRun.objects.get(rule=rule).firing


def test_a_viewer_may_not_make_change_or_delete_rules_and_an_outsider_cannot_see_the_run(run, make_rule):
    viewer = UserFactory(username="vic", membership__role=Role.VIEWER)
    with pytest.raises(PermissionDenied):
        make_rule(user=viewer, condition="nan", metric_key="loss")
    with pytest.raises(PermissionDenied):
        make_rule(user=viewer, run_id=None, team_id=run.team_id, condition="nan", metric_key="loss")
    outsider = UserFactory(username="otto", membership__team=TeamFactory(name="beta"))
    with pytest.raises(Http404):
        make_rule(user=outsider, condition="nan", metric_key="loss")
    with pytest.raises(AlertRuleInvalid) as caught:
        make_rule(user=outsider, run_id=None, team_id=run.team_id, condition="nan", metric_key="loss")
    assert caught.value.field == "team"
    rule = make_rule(condition="nan", metric_key="loss")
    with pytest.raises(PermissionDenied):
        alert_rule_update(user=viewer, rule=rule, data=RuleInput(condition="nan", metric_key="kl"))
    with pytest.raises(PermissionDenied):
        alert_rule_delete(user=viewer, rule=rule)
    assert AlertRule.objects.get().metric_key == "loss"
