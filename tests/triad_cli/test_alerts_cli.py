"""`triad alerts`: the rules of your teams and your notifications, against the real server."""

import json

from runs.alerts.evaluation import alert_metrics_evaluate
from runs.alerts.services import RuleInput, alert_rule_create
from tests.factories import MetricPointFactory
from tests.triad_cli.conftest import no_traceback


def test_alerts_ls_and_notifications_for_people_and_scripts(world, triad):
    rule, _ = alert_rule_create(
        user=world.user,
        data=RuleInput(
            condition="above", metric_key="kl", threshold=1.0, run_id=world.run.pk, name="kl blew up"
        ),
    )
    MetricPointFactory(run=world.run, key="kl", step=7, value=3.5)
    alert_metrics_evaluate(run_id=world.run.pk)

    listed = triad("alerts", "ls", "--run", str(world.run.pk), "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(r["id"], r["description"]) for r in json.loads(listed.stdout)] == [(rule.pk, "kl rises above 1")]
    table = triad("alerts", "ls")
    assert "kl blew up" in table.stdout and f"run {world.run.pk}" in table.stdout

    unread = triad("alerts", "notifications", "--unread")
    assert unread.returncode == 0, unread.stderr
    assert "kl = 3.5 at step 7" in unread.stdout
    no_traceback(unread)
