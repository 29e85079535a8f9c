"""Who may do what: a user's role in a team, the teams they can see or launch into, and audit reads.

The rule: a superuser is an admin of every team; anyone else has the role of their membership, or none
(and sees nothing of that team). Every page, API and socket that shows a team's data asks these.
"""

from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from controlplane.accounts.models import ROLE_RANK, ApiToken, AuditEntry, Membership, Role, Team


def role_allows(role: str | None, at_least: str) -> bool:
    return role is not None and ROLE_RANK[Role(role)] >= ROLE_RANK[Role(at_least)]


def role_of(*, user: User, team_id: int | None) -> Role | None:
    """The user's role in the team: admin for a superuser, else their membership's, else None."""
    if not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    if team_id is None:
        return None
    role = Membership.objects.filter(user_id=user.pk, team_id=team_id).values_list("role", flat=True).first()
    return Role(role) if role else None


def _roles_from(at_least: str) -> list[str]:
    return [role for role in Role if ROLE_RANK[role] >= ROLE_RANK[Role(at_least)]]


def team_ids_for(*, user: User, at_least: str = Role.VIEWER) -> list[int] | None:
    """Teams where the user has at least this role; None means every team (a superuser)."""
    if not user.is_authenticated or not user.is_active:
        return []
    if user.is_superuser:
        return None
    return list(
        Membership.objects.filter(user_id=user.pk, role__in=_roles_from(at_least)).values_list(
            "team_id", flat=True
        )
    )


def team_filter(*, user: User, field: str = "team_id", at_least: str = Role.VIEWER) -> Q:
    """A filter on `field` (a team id) that keeps the rows of the user's teams: for any queryset."""
    if not user.is_authenticated or not user.is_active:
        return Q(pk__in=[])
    if user.is_superuser:
        return Q()
    # The ids as a list, not a subquery: with a literal team id the planner walks the runs' (team,
    # created_at) index in page order instead of sorting all of a team's runs (bench/pages.py).
    return Q(**{f"{field}__in": team_ids_for(user=user, at_least=at_least)})


def team_list_for(*, user: User, at_least: str = Role.VIEWER) -> QuerySet[Team]:
    """The user's teams with at least this role, by name (a superuser: every team). With
    `at_least=Role.MEMBER`: the teams they may launch into, the first being the launch form's default."""
    return Team.objects.filter(team_filter(user=user, field="pk", at_least=at_least)).order_by("name", "pk")


def is_admin_anywhere(*, user: User) -> bool:
    """Admins of any team (and superusers) manage prices, which every team shares."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or Membership.objects.filter(user_id=user.pk, role=Role.ADMIN).exists()


def is_site_admin(*, user: User) -> bool:
    """Site admins (superusers and staff) own what every team shares: pool and node prices, which bill
    every team's runs. A team's admin does not: they read prices but do not set them."""
    return bool(user.is_authenticated and user.is_active and (user.is_superuser or user.is_staff))


def user_list_managed_by(*, admin: User) -> QuerySet[User]:
    """Users whose per-user budget the admin may set: the members of the teams they administer (every
    user for a superuser)."""
    users = User.objects.order_by("username")
    if admin.is_superuser:
        return users
    return users.filter(memberships__team_id__in=team_filter_ids(user=admin, at_least=Role.ADMIN)).distinct()


def team_filter_ids(*, user: User, at_least: str) -> QuerySet[Membership, Any]:
    """The team ids (a subquery) where the user has at least this role."""
    return Membership.objects.filter(user_id=user.pk, role__in=_roles_from(at_least)).values("team_id")


def membership_role(*, team: Team, user: User) -> Role | None:
    """The role of the user's own membership in the team (a superuser's implied admin role aside)."""
    role = Membership.objects.filter(team=team, user=user).values_list("role", flat=True).first()
    return Role(role) if role else None


def team_members(*, team: Team) -> QuerySet[Membership]:
    return Membership.objects.filter(team=team).select_related("user").order_by("user__username")


# Entries without a team that every team's admins read: prices bill every team's runs.
SHARED_AUDIT_TARGETS = ("price", "node_price")


def audit_user_list(*, user: User) -> QuerySet[User]:
    """The users an admin may filter the audit log by: the members of the teams they administer (every
    user for a site admin), so that the filter lists no one else's name."""
    if is_site_admin(user=user):
        return User.objects.order_by("username")
    return user_list_managed_by(admin=user)


def audit_list(*, user: User, action: str = "", actor_id: int | None = None) -> QuerySet[AuditEntry]:
    """What an admin may read of the audit log: the entries of the teams they administer, the price
    changes every team shares, and the per-user budget changes of their teams' members (those entries
    have no team: a user's budget spans their teams). A site admin reads all of it. Newest first."""
    entries = AuditEntry.objects.select_related("actor", "team")
    if not is_site_admin(user=user):
        members = [str(pk) for pk in user_list_managed_by(admin=user).values_list("pk", flat=True)]
        entries = entries.filter(
            team_filter(user=user, at_least=Role.ADMIN)
            | Q(team__isnull=True, target_type__in=SHARED_AUDIT_TARGETS)
            | Q(team__isnull=True, target_type="user_budget", target_id__in=members)
        )
    if action:
        entries = entries.filter(action=action)
    if actor_id is not None:
        entries = entries.filter(actor_id=actor_id)
    return entries.order_by("-created_at", "-pk")


def team_get_for_admin(*, user: User, team_id: int) -> Team:
    """A team the user administers: 404 if they are not in it at all, 403 if they are but not as admin."""
    team = team_list_for(user=user).filter(pk=team_id).first()
    if team is None:
        raise Http404(f"no team {team_id}")
    if not role_allows(role_of(user=user, team_id=team.pk), Role.ADMIN):
        raise PermissionDenied("only the team's admins manage its members")
    return team


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    """The user's own tokens, newest first, revoked ones too (the page shows when each was revoked)."""
    return ApiToken.objects.filter(user_id=user.pk).order_by("-created_at", "-pk")


def team_roles_of(*, user: User) -> list[tuple[Team, Role]]:
    """Every team the user can see, with their role in it (a superuser: admin of every team)."""
    if user.is_superuser:
        return [(team, Role.ADMIN) for team in Team.objects.order_by("name")]
    return [
        (m.team, Role(m.role))
        for m in Membership.objects.filter(user_id=user.pk).select_related("team").order_by("team__name")
    ]
