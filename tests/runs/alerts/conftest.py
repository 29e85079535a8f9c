import pytest

from runs.alerts.services import RuleInput, alert_rule_create
from tests.factories import RunFactory, UserFactory


@pytest.fixture
def member(db):
    return UserFactory(username="mia")


@pytest.fixture
def run(member):
    return RunFactory(created_by=member, status="running", name="grpo-7b")


@pytest.fixture
def make_rule(member, run):
    """A rule on the run (or, with run_id=None and team_id, on its team), made through the service."""

    def make(**fields):
        fields.setdefault("run_id", run.pk)
        rule, _ = alert_rule_create(user=fields.pop("user", member), data=RuleInput(**fields))
        return rule

    return make
