"""A diversity rule: a version of one of the team's datasets flagged by its diversity measures fires it
once (bell, mail, webhook like any rule), however often the analysis repeats."""

import pytest
from django.core import mail

from controlplane.celery import app
from runs.alerts.delivery import firing_payload
from runs.alerts.models import AlertFiring, Notification
from runs.alerts.services import AlertRuleInvalid
from runs.alerts.tasks import alert_dataset_version_flagged_task
from tests.factories import DatasetVersionFactory, TeamFactory

pytestmark = pytest.mark.django_db
FLAGS = [
    {"measure": "shapes_frac", "value": 0.3, "previous": 0.8, "message": "distinct reference shapes fell 62%"}
]


def test_a_flagged_version_fires_the_teams_diversity_rule_once_by_bell_and_mail(
    run, make_rule, member, eager
):
    rule = make_rule(condition="diversity", run_id=None, team_id=run.team_id, emails=["ml@example.com"])
    other = make_rule(condition="diversity", run_id=None, team_id=run.team_id, enabled=False)
    version = DatasetVersionFactory(
        dataset__team=run.team, dataset__name="synth", number=3, diversity_flags=FLAGS
    )

    alert_dataset_version_flagged_task.apply(args=[version.pk])
    alert_dataset_version_flagged_task.apply(args=[version.pk])  # the analysis ran again

    firing = AlertFiring.objects.get(rule=rule)
    assert firing.run_id is None and firing.dataset_version_id == version.pk
    assert firing.message == "synth v3: distinct reference shapes fell 62%"
    assert not AlertFiring.objects.filter(rule=other).exists()
    assert Notification.objects.filter(user=member, firing=firing).count() == 1
    (message,) = mail.outbox
    assert "synth v3" in message.subject and "distinct reference shapes fell 62%" in message.body
    payload = firing_payload(firing)
    assert payload["run"] is None and payload["dataset_version"]["number"] == 3
    assert payload["dataset_version"]["flags"] == FLAGS


def test_another_teams_version_and_an_unflagged_one_fire_nothing(run, make_rule):
    make_rule(condition="diversity", run_id=None, team_id=run.team_id)
    elsewhere = DatasetVersionFactory(dataset__team=TeamFactory(name="beta"), diversity_flags=FLAGS)
    clean = DatasetVersionFactory(dataset__team=run.team, diversity_flags=[])

    alert_dataset_version_flagged_task.apply(args=[elsewhere.pk])
    alert_dataset_version_flagged_task.apply(args=[clean.pk])

    assert not AlertFiring.objects.exists()


def test_a_diversity_rule_watches_a_team_not_a_run(make_rule):
    with pytest.raises(AlertRuleInvalid) as refused:
        make_rule(condition="diversity")  # on the fixture's run

    assert refused.value.field == "run"
    assert "alerts.dataset_version_flagged" in app.tasks  # the name datasets_app/checking.py sends


def test_the_notifications_page_links_the_dataset(client, member, run, make_rule):
    client.force_login(member)
    rule = make_rule(condition="diversity", run_id=None, team_id=run.team_id)
    version = DatasetVersionFactory(dataset__team=run.team, dataset__name="<synth>", diversity_flags=FLAGS)
    alert_dataset_version_flagged_task.apply(args=[version.pk])

    page = client.get("/alerts/notifications/").content.decode()
    rule_page = client.get(f"/alerts/rules/{rule.pk}/").content.decode()

    assert f"the datasets of team {run.team}" in rule_page
    for html in (page, rule_page):
        assert f'href="/datasets/{version.dataset_id}/"' in html and "&lt;synth&gt; v1" in html
        assert "<synth>" not in html
