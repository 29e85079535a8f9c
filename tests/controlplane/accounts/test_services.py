import pytest
from django.core.exceptions import PermissionDenied

from controlplane.accounts.models import AuditAction, AuditEntry, Membership, Role
from controlplane.accounts.services import MembershipError, membership_remove, membership_set, team_create
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_an_admin_adds_a_member_and_changes_their_role_and_each_change_is_audited():
    team = TeamFactory(name="ml")
    admin = UserFactory(username="ada", membership__team=team, membership__role=Role.ADMIN)
    bob = UserFactory(username="bob", membership=None)

    membership_set(team=team, user=bob, role=Role.VIEWER, actor=admin)
    membership_set(team=team, user=bob, role=Role.MEMBER, actor=admin)
    membership_set(team=team, user=bob, role=Role.MEMBER, actor=admin)  # no change: no entry

    assert Membership.objects.get(team=team, user=bob).role == Role.MEMBER
    entries = list(AuditEntry.objects.filter(action=AuditAction.MEMBERSHIP_SET).order_by("pk"))
    assert [(e.actor, e.team, e.before, e.after) for e in entries] == [
        (admin, team, None, {"role": "viewer"}),
        (admin, team, {"role": "viewer"}, {"role": "member"}),
    ]
    assert entries[0].target == "bob in ml"


def test_a_member_cannot_manage_the_teams_members():
    team = TeamFactory(name="ml")
    member = UserFactory(membership__team=team, membership__role=Role.MEMBER)

    with pytest.raises(PermissionDenied):
        membership_set(team=team, user=UserFactory(membership=None), role=Role.ADMIN, actor=member)
    assert not AuditEntry.objects.exists()


def test_an_admin_of_one_team_cannot_manage_another():
    ml, infra = TeamFactory(name="ml"), TeamFactory(name="infra")
    admin = UserFactory(membership__team=infra, membership__role=Role.ADMIN)

    with pytest.raises(PermissionDenied):
        membership_set(team=ml, user=admin, role=Role.ADMIN, actor=admin)


def test_the_last_admin_can_neither_leave_nor_be_demoted():
    team = TeamFactory(name="ml")
    admin = UserFactory(username="ada", membership__team=team, membership__role=Role.ADMIN)

    with pytest.raises(MembershipError, match="ada is the last admin of ml") as demoted:
        membership_set(team=team, user=admin, role=Role.MEMBER, actor=admin)
    with pytest.raises(MembershipError, match="last admin") as removed:
        membership_remove(team=team, user=admin, actor=admin)

    assert (demoted.value.field, removed.value.field) == ("role", "user")
    assert Membership.objects.get(team=team, user=admin).role == Role.ADMIN


def test_removing_a_member_is_audited_with_their_role_before():
    team = TeamFactory(name="ml")
    admin = UserFactory(membership__team=team, membership__role=Role.ADMIN)
    bob = UserFactory(username="bob", membership__team=team, membership__role=Role.VIEWER)

    assert membership_remove(team=team, user=bob, actor=admin) is True
    assert membership_remove(team=team, user=bob, actor=admin) is False

    assert not Membership.objects.filter(team=team, user=bob).exists()
    entry = AuditEntry.objects.get(action=AuditAction.MEMBERSHIP_REMOVE)
    assert (entry.actor, entry.before, entry.after) == (admin, {"role": "viewer"}, None)


def test_only_a_superuser_creates_teams_and_names_are_unique():
    admin = UserFactory(membership__role=Role.ADMIN)
    root = UserFactory(is_superuser=True, membership=None)

    with pytest.raises(PermissionDenied):
        team_create(name="ml", actor=admin)
    team = team_create(name="ml", actor=root)
    with pytest.raises(MembershipError, match="exists already") as duplicate:
        team_create(name="ML", actor=root)

    assert duplicate.value.field == "name"
    assert AuditEntry.objects.get(action=AuditAction.TEAM_CREATE).team == team
