"""Changes to teams and memberships, and the one writer of the audit log.

Every service that changes something worth auditing (a launch, a cancel, a price, a budget, a membership)
calls `audit_record` in its own transaction, so the entry exists exactly when the change does.
"""

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from controlplane.accounts.models import (
    API_TOKEN_PREFIX,
    DEFAULT_TEAM,
    ApiToken,
    AuditAction,
    AuditEntry,
    Membership,
    Role,
    Team,
    TokenScope,
)
from controlplane.accounts.selectors import membership_role, role_allows, role_of, team_list_for


class MembershipError(ValueError):
    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


def audit_record(
    *,
    actor: User | None,
    action: AuditAction,
    target_type: str,
    target_id: object = "",
    target: str,
    team_id: int | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Write one audit entry; call it inside the transaction of the change it records."""
    return AuditEntry.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        action=action,
        team_id=team_id,
        target_type=target_type,
        target_id=str(target_id),
        target=target[:300],
        before=before,
        after=after,
    )


def require_role(*, user: User, team_id: int, at_least: str, doing: str) -> Role:
    """The user's role in the team if it allows `doing`, else PermissionDenied (a 403 from any view)."""
    role = role_of(user=user, team_id=team_id)
    if not role_allows(role, at_least):
        raise PermissionDenied(f"{doing} needs the {at_least} role in this team")
    assert role is not None
    return role


def team_default() -> Team:
    """The team existing data and new installs start in (created on first use)."""
    team, _ = Team.objects.get_or_create(name=DEFAULT_TEAM)
    return team


def team_acting_for(*, user: User, team: Team | None, doing: str) -> Team:
    """The team a user acts for (launching a run, registering a model): the one asked for, if they are a
    member or admin of it (else PermissionDenied); else their first such team by name. A superuser with
    no team gets the default one."""
    if team is not None:
        require_role(user=user, team_id=team.pk, at_least=Role.MEMBER, doing=doing)
        return team
    first = team_list_for(user=user, at_least=Role.MEMBER).first()
    if first is not None:
        return first
    if user.is_superuser:
        return team_default()
    raise PermissionDenied(f"{doing} needs the member role in a team")


@transaction.atomic
def team_create(*, name: str, actor: User | None) -> Team:
    """A new, empty team (superusers only, when an actor is given)."""
    name = name.strip()
    if actor is not None and not actor.is_superuser:
        raise PermissionDenied("only a superuser creates teams")
    if not name:
        raise MembershipError("a team needs a name", field="name")
    if Team.objects.filter(name__iexact=name).exists():
        raise MembershipError(f"a team named {name!r} exists already", field="name")
    team = Team.objects.create(name=name)
    audit_record(
        actor=actor,
        action=AuditAction.TEAM_CREATE,
        target_type="team",
        target_id=team.pk,
        target=team.name,
        team_id=team.pk,
        after={"name": team.name},
    )
    return team


_LAST_ADMIN = "{user} is the last admin of {team}: make someone else admin first"


def _other_admins(team: Team, user: User) -> int:
    return Membership.objects.filter(team=team, role=Role.ADMIN).exclude(user=user).count()


def membership_refusal(*, team: Team, user: User, role: str | None) -> str:
    """Why giving the user this role in the team (None: removing them) would be refused, else "": a team
    keeps at least one admin. The services check it again under their lock; forms ask it first."""
    if (
        membership_role(team=team, user=user) == Role.ADMIN
        and role != Role.ADMIN
        and not _other_admins(team, user)
    ):
        return _LAST_ADMIN.format(user=user, team=team)
    return ""


@transaction.atomic
def membership_set(*, team: Team, user: User, role: str, actor: User | None) -> Membership:
    """Add the user to the team with the role, or change their role. A team keeps at least one admin."""
    if actor is not None:
        require_role(user=actor, team_id=team.pk, at_least=Role.ADMIN, doing="managing members")
    role = Role(role)
    # Lock the team's memberships: two admins demoting each other at once must not leave none.
    current = {m.user_id: m for m in Membership.objects.select_for_update().filter(team=team)}
    existing = current.get(user.pk)
    if existing is not None and existing.role == role:
        return existing
    if existing is not None and existing.role == Role.ADMIN and not _other_admins(team, user):
        raise MembershipError(_LAST_ADMIN.format(user=user, team=team), field="role")
    membership, _ = Membership.objects.update_or_create(team=team, user=user, defaults={"role": role})
    audit_record(
        actor=actor,
        action=AuditAction.MEMBERSHIP_SET,
        target_type="membership",
        target_id=membership.pk,
        target=f"{user.get_username()} in {team.name}",
        team_id=team.pk,
        before={"role": existing.role} if existing else None,
        after={"role": role.value},
    )
    return membership


@transaction.atomic
def membership_remove(*, team: Team, user: User, actor: User | None) -> bool:
    """Take the user out of the team; False if they were not in it. A team keeps at least one admin."""
    if actor is not None:
        require_role(user=actor, team_id=team.pk, at_least=Role.ADMIN, doing="managing members")
    current = {m.user_id: m for m in Membership.objects.select_for_update().filter(team=team)}
    existing = current.get(user.pk)
    if existing is None:
        return False
    if existing.role == Role.ADMIN and not _other_admins(team, user):
        raise MembershipError(_LAST_ADMIN.format(user=user, team=team), field="user")
    Membership.objects.filter(pk=existing.pk).delete()
    audit_record(
        actor=actor,
        action=AuditAction.MEMBERSHIP_REMOVE,
        target_type="membership",
        target_id=existing.pk,
        target=f"{user.get_username()} in {team.name}",
        team_id=team.pk,
        before={"role": existing.role},
        after=None,
    )
    return True


@transaction.atomic
def user_invite(*, team: Team, email: str, role: str, actor: User, base_url: str) -> User:
    """Invite someone by email into the team with the role: their account is made with no usable
    password (the email is its username), they join the team at once, and they are mailed a one-time
    link to set a password — Django's password-reset token, which a set password or a login spends.
    Inviting a pending invitee again mails a fresh link. The mail is sent last, inside the transaction:
    if it cannot be sent, nothing is kept. `base_url`: where the link points, e.g. https://triad.example.com."""
    require_role(user=actor, team_id=team.pk, at_least=Role.ADMIN, doing="inviting members")
    email = User.objects.normalize_email(email.strip())
    try:
        validate_email(email)
    except ValidationError:
        raise MembershipError(f"not a valid email address: {email!r}", field="email") from None
    if len(email) > 150:  # the username it becomes holds 150 characters
        raise MembershipError(
            "addresses over 150 characters cannot be invited: add the user by hand", field="email"
        )
    user = User.objects.filter(email__iexact=email).order_by("pk").first()
    if user is not None and (user.has_usable_password() or user.last_login is not None):
        raise MembershipError(
            f"{email} already has an account ({user.get_username()}): add them by name instead",
            field="email",
        )
    if user is None:
        if User.objects.filter(username__iexact=email).exists():
            raise MembershipError(f"a user named {email!r} exists already", field="email")
        user = User(username=email, email=email)
        user.set_unusable_password()
        user.save()
    membership_set(team=team, user=user, role=role, actor=actor)
    audit_record(
        actor=actor,
        action=AuditAction.USER_INVITE,
        target_type="user",
        target_id=user.pk,
        target=email,
        team_id=team.pk,
        after={"email": email, "role": Role(role).value},
    )
    link = base_url.rstrip("/") + reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    context = {
        "team": team,
        "inviter": actor,
        "user": user,
        "link": link,
        "role": Role(role),
        "timeout_days": settings.PASSWORD_RESET_TIMEOUT // 86400,
    }
    subject = render_to_string("registration/invite_subject.txt", context).strip()
    send_mail(subject, render_to_string("registration/invite_email.txt", context), None, [email])
    return user


# Personal API tokens. A token is the prefix and 32 random bytes; only its SHA-256 is stored, so a
# database dump leaks no usable token. Expiry defaults to 90 days: a forgotten token stops working.
API_TOKEN_DEFAULT_DAYS = 90
API_TOKEN_MAX_DAYS = 366
# last_used_at is written at most this often per token, so that a busy script does not turn every read
# into a write.
API_TOKEN_TOUCH_S = 60


class ApiTokenError(ValueError):
    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


def api_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_create(
    *,
    user: User,
    name: str,
    scope: str = TokenScope.READ,
    expires_in_days: int | None = API_TOKEN_DEFAULT_DAYS,
) -> tuple[str, ApiToken]:
    """A new token for the user: the token (shown once) and its stored row. `expires_in_days=None`: a
    token that never expires."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ApiTokenError("a token needs a name of 1 to 100 characters", field="name")
    if scope not in TokenScope.values:
        raise ApiTokenError(f"scope must be one of {', '.join(TokenScope.values)}", field="scope")
    if expires_in_days is not None and not 1 <= expires_in_days <= API_TOKEN_MAX_DAYS:
        raise ApiTokenError(
            f"expiry must be 1 to {API_TOKEN_MAX_DAYS} days, or never", field="expires_in_days"
        )
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires_at = None if expires_in_days is None else timezone.now() + timedelta(days=expires_in_days)
    with transaction.atomic():
        row = ApiToken.objects.create(
            user=user,
            name=name,
            token_hash=api_token_hash(token),
            hint=token[len(API_TOKEN_PREFIX) : len(API_TOKEN_PREFIX) + 6],
            scope=scope,
            expires_at=expires_at,
        )
        audit_record(
            actor=user,
            action=AuditAction.TOKEN_CREATE,
            target_type="api_token",
            target_id=row.pk,
            target=f"{user.username}: {name}",
            after={"scope": scope, "expires_at": expires_at.isoformat() if expires_at else None},
        )
    return token, row


def api_token_revoke(*, user: User, token_id: int) -> ApiToken:
    """Revoke one of the user's own tokens (revoking twice is a no-op). Another user's token: not found."""
    with transaction.atomic():
        row = ApiToken.objects.select_for_update().filter(pk=token_id, user=user).first()
        if row is None:
            raise ApiTokenError(f"you have no token {token_id}", field="token")
        if row.revoked_at is None:
            row.revoked_at = timezone.now()
            row.save(update_fields=["revoked_at"])
            audit_record(
                actor=user,
                action=AuditAction.TOKEN_REVOKE,
                target_type="api_token",
                target_id=row.pk,
                target=f"{user.username}: {row.name}",
            )
    return row


class ApiTokenRefused(Exception):
    """Why a presented token does not authenticate (said to the caller: they hold the token)."""


def api_token_authenticate(token: str) -> ApiToken:
    """The live token row for a presented token, with its user, its use recorded; else ApiTokenRefused.
    The lookup is by hash (indexed, unique): comparing hashes of a secret of 256 random bits leaks nothing
    usable through timing."""
    if not token.startswith(API_TOKEN_PREFIX):
        raise ApiTokenRefused(f"not a personal API token (they start with {API_TOKEN_PREFIX!r})")
    row = ApiToken.objects.select_related("user").filter(token_hash=api_token_hash(token)).first()
    if row is None:
        raise ApiTokenRefused("unknown API token")
    now = timezone.now()
    if row.revoked_at is not None:
        raise ApiTokenRefused(f"API token {row.name!r} was revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise ApiTokenRefused(f"API token {row.name!r} expired on {row.expires_at:%Y-%m-%d %H:%M} UTC")
    if not row.user.is_active:
        raise ApiTokenRefused("the token's user is inactive")
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() >= API_TOKEN_TOUCH_S:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now
    return row
