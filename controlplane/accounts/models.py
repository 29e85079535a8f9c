"""Teams, memberships with a role, and the audit log.

A run belongs to one team; what a user may see and do with it is their role in that team. Superusers are
admins of every team. The audit log is written by the services that make each change, never by signals.
"""

import json

from django.conf import settings
from django.db import models

DEFAULT_TEAM = "default"


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    MEMBER = "member", "Member"
    ADMIN = "admin", "Admin"


# Each role may do what the roles below it may.
ROLE_RANK = {Role.VIEWER: 1, Role.MEMBER: 2, Role.ADMIN: 3}


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["team__name", "user__username"]
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="membership_team_user")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}: {self.role}"


class AuditAction(models.TextChoices):
    RUN_LAUNCH = "run.launch", "Run launched"
    RUN_RESUME = "run.resume", "Run resumed"
    RUN_CANCEL = "run.cancel", "Run cancelled"
    RUN_RENAME = "run.rename", "Run renamed"
    RUN_ARCHIVE = "run.archive", "Run archived"
    RUN_UNARCHIVE = "run.unarchive", "Run unarchived"
    RUN_DELETE = "run.delete", "Run deleted"
    PRICE_SET = "price.set", "Price set"
    PRICE_DELETE = "price.delete", "Price deleted"
    BUDGET_SET = "budget.set", "Budget set"
    TEAM_CREATE = "team.create", "Team created"
    MEMBERSHIP_SET = "membership.set", "Membership set"
    MEMBERSHIP_REMOVE = "membership.remove", "Membership removed"
    USER_INVITE = "user.invite", "User invited"
    TOKEN_CREATE = "token.create", "API token created"
    TOKEN_REVOKE = "token.revoke", "API token revoked"
    # By the system: a sandbox worker that stopped taking batches (docs/sandbox.md, "The sandbox fleet").
    SANDBOX_STOP = "sandbox.stop", "Sandbox worker stopped"


class AuditEntry(models.Model):
    """Who did what to which target, with the target's state before and after, and when."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )  # None: the system (a management command, the demo, a test tearing down)
    action = models.CharField(max_length=32, choices=AuditAction.choices, db_index=True)
    # The team the change belongs to; None for what every team shares (prices, per-user budgets).
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # "run", "price", "node_price", "user_budget", "team_budget", "team", "membership"
    target_type = models.CharField(max_length=32)
    target_id = models.CharField(max_length=64, blank=True)
    target = models.CharField(max_length=300)  # a readable name, kept if the target is deleted
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["action", "-created_at"], name="audit_action_time"),
            models.Index(fields=["actor", "-created_at"], name="audit_actor_time"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor or 'system'} {self.action} {self.target}"

    @property
    def before_json(self) -> str:
        return "–" if self.before is None else json.dumps(self.before, sort_keys=True)

    @property
    def after_json(self) -> str:
        return "–" if self.after is None else json.dumps(self.after, sort_keys=True)


class TokenScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Read and write"


API_TOKEN_PREFIX = "triad_pat_"  # noqa: S105 (makes a leaked token greppable; not a secret)


class ApiToken(models.Model):
    """A personal API token: the user's roles, narrowed to reading when its scope says so. Only the hash
    of the token is stored; the token itself is shown once, when it is made."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True)
    # The first characters after the prefix, shown on the user page so that a token can be recognised.
    hint = models.CharField(max_length=16)
    scope = models.CharField(max_length=8, choices=TokenScope.choices, default=TokenScope.READ)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)  # None: never
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.user} · {self.name} ({self.scope})"


class ApiIdempotency(models.Model):
    """The first answer to a request that carried an `Idempotency-Key`: a retry with the same key gets
    it again instead of creating a second run or dataset."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    operation = models.CharField(max_length=100)  # e.g. "runs.launch"
    request_hash = models.CharField(max_length=64)  # of the request body: the same key, another body → 409
    status = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "operation", "key"], name="api_idempotency_user_key")
        ]
