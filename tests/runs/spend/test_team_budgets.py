"""Monthly budgets per team, and the audit entries of every price and budget change."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from controlplane.accounts.models import AuditAction, AuditEntry, Role
from runs.launch import RunLaunchError, run_launch
from runs.models import Run, RunStatus
from runs.spend.models import CostEntry, GpuPrice, TeamMonthlyBudget
from runs.spend.services import (
    gpu_price_set,
    monthly_budget_set,
    run_cost_accrue,
    team_monthly_budget_set,
)
from tests.factories import ProblemFactory, RunFactory, TeamFactory, UserFactory
from workers.spec import RunConfig

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def a100():
    # $3.60 per GPU-hour: a tenth of a cent per GPU-second.
    return GpuPrice.objects.create(pool="a100", gpu_type="A100", usd_per_gpu_hour=Decimal("3.60"))


def member_of(team, username: str, role: str = Role.MEMBER):
    return UserFactory(username=username, password=None, membership__team=team, membership__role=role)


def test_a_launch_past_the_teams_monthly_remainder_is_refused_with_the_numbers(settings):
    settings.TRIAD_SPEND_DEFAULT_STEP_S = 10
    team = TeamFactory(name="ml")
    alice, bob = member_of(team, "alice"), member_of(team, "bob")
    version = ProblemFactory(version__dataset__team=team).version
    spent = RunFactory(created_by=bob, team=team, pool="a100")  # a teammate spent most of it
    CostEntry.objects.create(run=spent, day=dt.datetime.now(dt.UTC).date(), usd=Decimal("0.90"))
    TeamMonthlyBudget.objects.create(team=team, usd_per_month=Decimal("1.00"))
    config = RunConfig(steps=100, gpus_per_node=1)  # 100 × 10 s × 1 GPU × $3.60/h = $1.00

    with pytest.raises(RunLaunchError) as refused:
        run_launch(user=alice, dataset_version=version, name="", config=config, pool="a100")

    assert refused.value.field == "budget_usd"
    assert "only $0.10 of team ml's $1.00 monthly budget is left ($0.90 spent this month)" in str(
        refused.value
    )
    assert not Run.objects.exclude(pk=spent.pk).exists()


def test_another_teams_spend_does_not_count_against_this_teams_budget(settings):
    settings.TRIAD_SPEND_DEFAULT_STEP_S = 10
    ml, infra = TeamFactory(name="ml"), TeamFactory(name="infra")
    alice, ivan = member_of(ml, "alice"), member_of(infra, "ivan")
    other = RunFactory(created_by=ivan, team=infra, pool="a100")
    CostEntry.objects.create(run=other, day=dt.datetime.now(dt.UTC).date(), usd=Decimal("50"))
    TeamMonthlyBudget.objects.create(team=ml, usd_per_month=Decimal("1.50"))

    run = run_launch(
        user=alice,
        dataset_version=ProblemFactory(version__dataset__team=ml).version,
        name="",
        config=RunConfig(steps=100, gpus_per_node=1),
        pool="a100",
    ).run

    assert run.team == ml


def test_a_team_past_its_monthly_cap_has_all_its_running_work_stopped_and_no_other_teams():
    now = dt.datetime.now(dt.UTC)
    ml, infra = TeamFactory(name="ml"), TeamFactory(name="infra")
    alice, bob, ivan = member_of(ml, "alice"), member_of(ml, "bob"), member_of(infra, "ivan")
    running = {"status": RunStatus.RUNNING, "pool": "a100", "config": {"steps": 100, "gpus_per_node": 2}}
    first = RunFactory(
        created_by=alice, team=ml, started_at=now - dt.timedelta(seconds=60), last_heartbeat_at=now, **running
    )
    second = RunFactory(created_by=bob, team=ml, started_at=now, last_heartbeat_at=now, **running)
    elsewhere = RunFactory(
        created_by=ivan,
        team=infra,
        started_at=now - dt.timedelta(seconds=60),
        last_heartbeat_at=now,
        **running,
    )
    TeamMonthlyBudget.objects.create(team=ml, usd_per_month=Decimal("0.05"))

    result = run_cost_accrue(now=now)

    assert sorted(result.budget_stopped) == sorted([first.pk, second.pk])
    for run in (first, second):
        run.refresh_from_db()
        assert run.status == RunStatus.BUDGET_STOPPED
        assert "team ml's monthly budget reached: $0.12 spent" in run.status_message
    elsewhere.refresh_from_db()
    assert elsewhere.status == RunStatus.RUNNING


def test_budget_changes_are_audited_with_before_and_after():
    team = TeamFactory(name="ml")
    admin, bob = member_of(team, "ada", Role.ADMIN), member_of(team, "bob")

    monthly_budget_set(user=bob, usd_per_month=Decimal("250"), actor=admin)
    monthly_budget_set(user=bob, usd_per_month=Decimal("250.00"), actor=admin)  # the same: no entry
    monthly_budget_set(user=bob, usd_per_month=None, actor=admin)
    team_monthly_budget_set(team=team, usd_per_month=Decimal("1000"), actor=admin)

    entries = list(AuditEntry.objects.filter(action=AuditAction.BUDGET_SET).order_by("pk"))
    assert [(e.target_type, e.before, e.after) for e in entries] == [
        ("user_budget", None, {"usd_per_month": "250"}),
        ("user_budget", {"usd_per_month": "250.000000"}, None),
        ("team_budget", None, {"usd_per_month": "1000"}),
    ]
    assert {e.actor for e in entries} == {admin}
    assert entries[2].team == team


def test_only_an_admin_of_the_team_sets_its_budget_or_its_members_budgets():
    ml, infra = TeamFactory(name="ml"), TeamFactory(name="infra")
    bob, outsider = member_of(ml, "bob"), member_of(infra, "otto", Role.ADMIN)

    with pytest.raises(PermissionDenied):
        team_monthly_budget_set(team=ml, usd_per_month=Decimal("1"), actor=outsider)
    with pytest.raises(PermissionDenied):
        monthly_budget_set(user=bob, usd_per_month=Decimal("1"), actor=outsider)
    with pytest.raises(PermissionDenied):
        team_monthly_budget_set(team=ml, usd_per_month=Decimal("1"), actor=bob)
    assert not AuditEntry.objects.exists()


def test_price_changes_are_audited_and_set_by_site_admins_only(a100):
    admin = UserFactory(username="sam", password=None, membership=None, is_staff=True)  # a site admin
    team_admin = member_of(TeamFactory(name="ml"), "ada", Role.ADMIN)
    member = member_of(TeamFactory(name="infra"), "max")

    gpu_price_set(pool="a100", gpu_type="A100", usd_per_gpu_hour=Decimal("4"), user=admin)
    for refused in (member, team_admin):  # prices bill every team: not one team's admin to set
        with pytest.raises(PermissionDenied):
            gpu_price_set(pool="a100", gpu_type="A100", usd_per_gpu_hour=Decimal("0"), user=refused)

    (set_,) = AuditEntry.objects.order_by("pk")
    assert (set_.action, set_.actor, set_.team) == (AuditAction.PRICE_SET, admin, None)
    assert set_.before == {"pool": "a100", "gpu_type": "A100", "usd_per_gpu_hour": "3.600000"}
    assert set_.after == {"pool": "a100", "gpu_type": "A100", "usd_per_gpu_hour": "4.000000"}
