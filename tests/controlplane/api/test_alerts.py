"""Alert rules and notifications through the API, as a script makes and reads them."""

import pytest

from runs.alerts.evaluation import alert_dataset_version_flagged, alert_metrics_evaluate
from runs.alerts.models import AlertRule
from tests.controlplane.api.conftest import api_client_for
from tests.factories import DatasetVersionFactory, MetricPointFactory, RunFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member(db):
    return UserFactory(username="mia", password=None)


@pytest.fixture
def run(member):
    return RunFactory(created_by=member, status="running")


@pytest.fixture
def api(member):
    return api_client_for(member)


def test_a_script_makes_reads_changes_and_deletes_a_rule(api, run):
    made = api.post(
        "/alerts/rules",
        {
            "run": run.pk,
            "condition": "below",
            "metric_key": "pass_rate",
            "threshold": 0.2,
            "emails": ["ops@example.com"],
            "webhook_url": "https://hooks.example.com/t",
        },
    )
    assert made.status_code == 201, made.content
    rule = made.json()
    secret = rule["webhook_secret"]
    assert secret and AlertRule.objects.get().webhook_secret == secret  # made by Triad, shown this once
    assert rule["description"] == "pass_rate falls below 0.2" and rule["webhook_secret_set"] is True
    read = api.get(f"/alerts/rules/{rule['id']}").json()
    assert "webhook_secret" not in read and read["run"] == run.pk and read["emails"] == ["ops@example.com"]
    listed = api.get("/alerts/rules", {"run": run.pk}).json()
    assert [r["id"] for r in listed["items"]] == [rule["id"]]
    changed = api.patch(f"/alerts/rules/{rule['id']}", {"threshold": 0.3, "enabled": False})
    assert changed.status_code == 200 and changed.json()["webhook_secret"] is None
    assert (changed.json()["threshold"], changed.json()["enabled"], changed.json()["metric_key"]) == (
        0.3,
        False,
        "pass_rate",
    )
    assert AlertRule.objects.get().webhook_secret == secret  # kept
    assert api.delete(f"/alerts/rules/{rule['id']}").json() == {"deleted": rule["id"]}
    assert not AlertRule.objects.exists()


def test_a_bad_rule_is_a_400_naming_the_field_with_every_error(api, run):
    response = api.post("/alerts/rules", {"run": run.pk, "condition": "above", "minutes": 3})
    assert response.status_code == 400
    body = response.json()
    assert body["field"] == "metric_key" and body["error"].startswith("metric_key: required")
    assert set(body["errors"]) == {"metric_key", "threshold"}
    assert (
        api.post("/alerts/rules", {"run": run.pk, "condition": "nan", "metric_key": "k", "colour": 1}).json()[
            "field"
        ]
        == "colour"
    )
    rule = AlertRule.objects.create(
        team=run.team, run=run, condition="nan", metric_key="k", created_by=run.created_by
    )
    patched = api.patch(
        f"/alerts/rules/{rule.pk}",
        {"condition": "state"},
    )
    assert patched.status_code == 400 and patched.json()["field"] == "states"


def test_notifications_list_and_mark_read(api, run, member):
    api.post("/alerts/rules", {"run": run.pk, "condition": "above", "metric_key": "kl", "threshold": 1})
    for step, value in enumerate([2.0, 0.0, 3.0]):
        MetricPointFactory(run=run, key="kl", step=step, value=value)
    alert_metrics_evaluate(run_id=run.pk)
    page = api.get("/alerts/notifications", {"unread": "true"}).json()
    assert page["count"] == 2 and [n["step"] for n in page["items"]] == [2, 0]
    first = page["items"][-1]["id"]
    assert api.post("/alerts/notifications/read", {"ids": [first, 999_999]}).json() == {
        "marked": 1,
        "unread": 1,
    }
    assert api.post("/alerts/notifications/read", {}).json() == {"marked": 1, "unread": 0}
    other = api_client_for(UserFactory(username="ned", password=None))
    assert other.get("/alerts/notifications").json()["count"] == 0  # they are the rule author's


def test_a_diversity_rule_made_for_a_team_notifies_of_a_flagged_dataset_version(api, run):
    made = api.post("/alerts/rules", {"team": run.team_id, "condition": "diversity"})
    on_run = api.post("/alerts/rules", {"run": run.pk, "condition": "diversity"})
    flags = [
        {"measure": "near_dup_rate", "value": 0.4, "message": "near-duplicates within the version: 40.0%"}
    ]
    version = DatasetVersionFactory(dataset__team=run.team, diversity_flags=flags)
    alert_dataset_version_flagged(version_id=version.pk)

    (note,) = api.get("/alerts/notifications").json()["items"]

    assert made.status_code == 201 and made.json()["condition"] == "diversity"
    assert on_run.status_code == 400 and on_run.json()["field"] == "run"
    assert note["run"] is None and note["dataset_version"] == version.pk
    assert note["message"].endswith("near-duplicates within the version: 40.0%")
