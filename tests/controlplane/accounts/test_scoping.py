"""The audit log shows a team admin only what is theirs to see: their teams' entries, their members'
budget changes and the shared prices; its user filter names only their members. Site admins see all."""

from decimal import Decimal

import pytest
from django.urls import reverse

from runs.spend.services import gpu_price_set, monthly_budget_set, team_monthly_budget_set
from tests.factories import UserFactory


@pytest.fixture
def audited(world):
    """Alpha's admin sets a budget for a member of alpha, and one for team alpha; the system sets a
    price; beta's admin sets their own budget."""
    ada, max_, otto = world.users["admin"], world.users["member"], world.users["outsider"]
    monthly_budget_set(user=max_, usd_per_month=Decimal("7"), actor=ada)
    team_monthly_budget_set(team=world.alpha, usd_per_month=Decimal("70"), actor=ada)
    gpu_price_set(pool="h100", gpu_type="H100", usd_per_gpu_hour=Decimal("3"), user=None)
    monthly_budget_set(user=otto, usd_per_month=Decimal("9"), actor=otto)
    return world


def audit_page(client, viewer, **query):
    client.force_login(viewer)
    response = client.get(reverse("accounts:audit"), query)
    assert response.status_code == 200
    return response


def targets(response) -> set[str]:
    return {entry.target for entry in response.context["page"].object_list}


def test_an_admin_of_another_team_does_not_read_a_members_budget_change(client, audited):
    log = audit_page(client, audited.users["outsider"])

    assert targets(log) == {"monthly budget of otto", "pool h100"}
    assert "max" not in log.content.decode()


def test_a_team_admin_reads_their_members_budgets_their_teams_entries_and_prices(client, audited):
    log = audit_page(client, audited.users["admin"])

    assert {"monthly budget of max", "monthly budget of team alpha", "pool h100"} <= targets(log)
    assert "monthly budget of otto" not in targets(log)


def test_the_audit_user_filter_lists_only_the_admins_team_members(client, audited):
    log = audit_page(client, audited.users["outsider"])

    choices = [user.username for user in log.context["form"].fields["user"].queryset]
    assert choices == ["otto"]
    for name in ("ada", "max", "vic", "lou", "root"):
        assert f'value="{name}"' not in log.content.decode()


def test_filtering_by_a_user_of_another_team_shows_nothing_of_them(client, audited):
    log = audit_page(client, audited.users["outsider"], user="max", action="budget.set")

    assert "user" in log.context["form"].errors
    assert "monthly budget of max" not in targets(log)


@pytest.mark.parametrize(
    "site_admin", [{"is_superuser": True}, {"is_staff": True}], ids=["superuser", "staff"]
)
def test_site_admins_read_every_entry_and_filter_by_anyone(client, audited, site_admin):
    admin = UserFactory(username="site", password=None, membership=None, **site_admin)

    log = audit_page(client, admin)

    assert {
        "monthly budget of max",
        "monthly budget of team alpha",
        "monthly budget of otto",
        "pool h100",
    } <= targets(log)
    assert "max" in [user.username for user in log.context["form"].fields["user"].queryset]
