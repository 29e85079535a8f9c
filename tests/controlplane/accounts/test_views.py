"""What each role sees: nothing of another team's runs anywhere; the team page and the audit log."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from controlplane.accounts.models import AuditAction, AuditEntry, Membership, Role
from controlplane.accounts.services import audit_record
from runs.review.services import review_generations_scan
from runs.spend.models import CostEntry
from tests.factories import GenerationFactory

pytestmark = pytest.mark.django_db

TODAY = dt.datetime.now(dt.UTC).date()


def page(client, name, **query):
    return client.get(reverse(name), query).content.decode()


def test_another_teams_run_is_in_no_list_comparison_or_spend_view(client, world):
    CostEntry.objects.create(run=world.run, day=TODAY, usd=Decimal("7.25"), gpu_hours=1)
    CostEntry.objects.create(run=world.beta_run, day=TODAY, usd=Decimal("1.50"), gpu_hours=1)
    client.force_login(world.users["outsider"])

    runs = page(client, "runs:list")
    compare = client.get(reverse("runs:compare"), {"ids": f"{world.run.pk},{world.beta_run.pk}"})
    spend = page(client, "spend:dashboard")
    csv = b"".join(client.get(reverse("spend:csv")).streaming_content).decode()

    for text in (runs, spend, csv):
        assert "alpha-secret-run" not in text
        assert "beta-own-run" in text
    assert "$7.25" not in spend and "$1.50" in spend
    # compare answers as for an id never used: 404 naming it, nothing of the run
    assert compare.status_code == 404
    assert f"no run #{world.run.pk}" in compare.content.decode()
    assert "alpha-secret-run" not in compare.content.decode()


def test_a_member_sees_their_teams_runs_and_spend(client, world):
    CostEntry.objects.create(run=world.run, day=TODAY, usd=Decimal("7.25"), gpu_hours=1)
    client.force_login(world.users["viewer"])

    runs = page(client, "runs:list")
    spend = page(client, "spend:dashboard")

    assert "alpha-secret-run" in runs and "beta-own-run" not in runs
    assert "$7.25" in spend
    assert "<td>alpha</td><td>7.25</td>" in spend  # by team


def test_a_generations_compare_links_leave_out_another_teams_runs(client, world):
    theirs = GenerationFactory(run=world.beta_run, problem_id="Test/0")
    review_generations_scan(run_id=world.beta_run.pk, generations=[theirs], now=dt.datetime.now(dt.UTC))
    client.force_login(world.users["member"])
    ours = client.get(reverse("review:generation", kwargs={"generation_id": world.generation.pk}))
    client.force_login(world.users["outsider"])
    from_beta = client.get(reverse("review:generation", kwargs={"generation_id": theirs.pk}))

    assert "beta-own-run" not in ours.content.decode()
    assert "alpha-secret-run" not in from_beta.content.decode()
    client.force_login(world.users["superuser"])
    everything = client.get(reverse("review:generation", kwargs={"generation_id": theirs.pk}))
    assert "alpha-secret-run" in everything.content.decode()


def test_the_loner_is_told_how_to_get_into_a_team(client, world):
    client.force_login(world.users["loner"])

    runs = page(client, "runs:list")

    assert "No runs yet." in runs
    assert "ask a team admin to add you" in runs
    assert ">Launch<" not in runs  # no Launch link in the navigation


def test_an_admin_adds_a_user_to_the_team_and_sets_a_role(client, world):
    client.force_login(world.users["admin"])
    url = reverse("accounts:team", kwargs={"team_id": world.alpha.pk})

    client.post(url, {"username": "lou", "role": "viewer"})
    client.post(url, {"username": "lou", "role": "member"})
    response = client.get(url)

    assert Membership.objects.get(team=world.alpha, user=world.users["loner"]).role == Role.MEMBER
    assert 'data-user="lou"' in response.content.decode()


def test_the_team_page_names_a_field_it_refuses(client, world):
    client.force_login(world.users["admin"])
    url = reverse("accounts:team", kwargs={"team_id": world.alpha.pk})

    unknown = client.post(url, {"username": "<nobody>", "role": "viewer"})
    last_admin = client.post(url, {"username": "ada", "role": "viewer"})

    assert unknown.status_code == 400
    assert "User: no user named &#x27;&lt;nobody&gt;&#x27;" in unknown.content.decode()
    assert "Role: ada is the last admin of alpha" in last_admin.content.decode()


def test_a_new_team_shows_its_empty_state(client, world):
    client.force_login(world.users["superuser"])

    created = client.post(reverse("accounts:team-create"), {"name": "gamma"}, follow=True)

    assert "No members yet" in created.content.decode()


def test_a_superuser_lists_every_team_and_may_create_one(client, world):
    client.force_login(world.users["superuser"])

    teams = page(client, "accounts:teams")

    assert "alpha" in teams and "beta" in teams and "New team" in teams


def test_an_admin_lists_only_the_teams_they_administer(client, world):
    client.force_login(world.users["outsider"])

    teams = page(client, "accounts:teams")

    assert "beta" in teams and "alpha" not in teams and "New team" not in teams


def test_the_audit_log_filters_by_action_and_user_and_pages(client, world):
    admin, member = world.users["admin"], world.users["member"]
    for i in range(55):
        audit_record(
            actor=member,
            action=AuditAction.RUN_LAUNCH,
            target_type="run",
            target=f"run #{i}",
            team_id=world.alpha.pk,
        )
    audit_record(
        actor=admin,
        action=AuditAction.BUDGET_SET,
        target_type="team_budget",
        target="alpha budget",
        team_id=world.alpha.pk,
    )
    client.force_login(admin)

    first = client.get(reverse("accounts:audit"))
    second = client.get(reverse("accounts:audit"), {"page": 2})
    budgets = client.get(reverse("accounts:audit"), {"action": "budget.set"})
    by_member = client.get(reverse("accounts:audit"), {"user": "max", "page": 2})

    assert len(first.context["page"].object_list) == 50
    assert len(second.context["page"].object_list) == 6
    assert [e.target for e in budgets.context["page"].object_list] == ["alpha budget"]
    assert len(by_member.context["page"].object_list) == 5
    assert "user=max" in by_member.context["query"]


def test_an_admin_reads_only_their_teams_entries_and_the_shared_ones(client, world):
    audit_record(
        actor=None,
        action=AuditAction.RUN_CANCEL,
        target_type="run",
        target="alpha thing",
        team_id=world.alpha.pk,
    )
    audit_record(actor=None, action=AuditAction.PRICE_SET, target_type="price", target="pool h100")
    client.force_login(world.users["outsider"])

    log = page(client, "accounts:audit")

    assert "pool h100" in log
    assert "alpha thing" not in log


def test_the_empty_audit_log_says_what_will_appear(client, world):
    AuditEntry.objects.all().delete()
    client.force_login(world.users["admin"])

    assert "Nothing audited yet" in page(client, "accounts:audit")
