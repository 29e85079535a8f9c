"""Every change to alerts: rules made, edited and deleted by team members, a rule firing and clearing on
a run, notifications read. Keyword-only and transactional (docs/alerts.md)."""

import math
import secrets
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from controlplane.accounts.models import Role, Team
from controlplane.accounts.selectors import role_allows, role_of, team_list_for
from runs.alerts.models import (
    METRIC_CONDITIONS,
    WATCHED_STATES,
    AlertFiring,
    AlertRule,
    AlertRuleRun,
    Condition,
    Notification,
)
from runs.alerts.targets import webhook_url_problem
from runs.models import ACTIVE_STATUSES, MetricPoint, Run
from runs.selectors import run_get_for_user

MAX_EMAILS = 10
MAX_MINUTES = 7 * 24 * 60
MIN_SECRET = 16
DIVERSITY_SCOPE = "a diversity rule watches the team's datasets: choose a team, not a run"


class AlertRuleInvalid(ValueError):
    """The rule as given cannot be saved: one message per field."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        self.field, self.message = next(iter(errors.items()))
        super().__init__(f"{self.field}: {self.message}")


@dataclass
class RuleInput:
    """What a person sets on a rule (the page's form and the API's body both become one)."""

    condition: str
    run_id: int | None = None
    team_id: int | None = None
    name: str = ""
    metric_key: str = ""
    threshold: float | None = None
    minutes: int | None = None
    states: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    webhook_url: str = ""
    webhook_secret: str | None = None  # None (or "" on an edit): keep the rule's; "" on create: make one
    enabled: bool = True


def _scope(*, user: User, data: RuleInput) -> tuple[Team, Run | None]:
    """The rule's team and run: a run the user may act on (404 if they cannot see it, 403 as a viewer),
    or a team where they are a member or admin."""
    if data.run_id is not None:
        run = run_get_for_user(user=user, run_id=data.run_id, at_least=Role.MEMBER)
        return run.team, run
    if data.team_id is None:
        raise AlertRuleInvalid({"team": "choose a run, or a team for every run of it"})
    team = team_list_for(user=user).filter(pk=data.team_id).first()
    if team is None:
        raise AlertRuleInvalid({"team": f"no team {data.team_id} among yours"})
    if not role_allows(role_of(user=user, team_id=team.pk), Role.MEMBER):
        raise PermissionDenied(f"alert rules need the member role in team {team}")
    return team, None


def _clean(data: RuleInput, *, creating: bool) -> dict[str, Any]:
    """The rule's fields, or AlertRuleInvalid naming every field that is wrong."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"name": data.name.strip()[:200], "enabled": data.enabled}
    if data.condition not in Condition.values:
        errors["condition"] = f"one of {', '.join(Condition.values)}, not {data.condition!r}"
    values["condition"] = data.condition
    key = data.metric_key.strip()
    if data.condition in METRIC_CONDITIONS:
        if not key:
            errors["metric_key"] = "required: the metric to watch, e.g. reward/mean"
        elif len(key) > 100 or any(c.isspace() or not c.isprintable() for c in key):
            errors["metric_key"] = "at most 100 characters, without spaces"
    values["metric_key"] = key if data.condition in METRIC_CONDITIONS else ""
    values["threshold"] = None
    if data.condition in (Condition.ABOVE, Condition.BELOW):
        if data.threshold is None:
            errors["threshold"] = "required: the value the metric must not cross"
        elif not math.isfinite(data.threshold):
            errors["threshold"] = "a finite number"
        values["threshold"] = data.threshold
    values["minutes"] = None
    if data.condition == Condition.NO_DATA:
        if data.minutes is None or not 1 <= data.minutes <= MAX_MINUTES:
            errors["minutes"] = f"required: whole minutes from 1 to {MAX_MINUTES}"
        values["minutes"] = data.minutes
    values["states"] = []
    if data.condition == Condition.STATE:
        states = list(dict.fromkeys(data.states))
        if not states or not set(states) <= set(WATCHED_STATES):
            errors["states"] = f"one or more of {', '.join(WATCHED_STATES)}"
        values["states"] = states
    emails = list(dict.fromkeys(e.strip() for e in data.emails if e.strip()))
    if len(emails) > MAX_EMAILS:
        errors["emails"] = f"at most {MAX_EMAILS} addresses"
    for address in emails:
        try:
            validate_email(address)
        except ValidationError:
            errors.setdefault("emails", f"{address!r} is not an email address")
    values["emails"] = emails
    url = data.webhook_url.strip()
    if url and (len(url) > 500 or (problem := webhook_url_problem(url))):
        errors["webhook_url"] = "at most 500 characters" if len(url) > 500 else problem
    values["webhook_url"] = url
    secret = (data.webhook_secret or "").strip()
    if secret and len(secret) < MIN_SECRET:
        errors["webhook_secret"] = f"at least {MIN_SECRET} characters (leave it empty to have one made)"
    if secret:
        values["webhook_secret"] = secret
    elif url and creating:
        values["webhook_secret"] = secrets.token_urlsafe(32)
    if errors:
        raise AlertRuleInvalid(errors)
    return values


def alert_rule_create(*, user: User, data: RuleInput) -> tuple[AlertRule, str]:
    """A new rule on a run (or every run of a team). Returns it and, when Triad made its webhook secret,
    that secret: shown this once, never again."""
    if data.condition == Condition.DIVERSITY and data.run_id is not None:
        raise AlertRuleInvalid({"run": DIVERSITY_SCOPE})
    team, run = _scope(user=user, data=data)
    values = _clean(data, creating=True)
    made = values.get("webhook_secret", "") if not (data.webhook_secret or "").strip() else ""
    with transaction.atomic():
        rule = AlertRule.objects.create(team=team, run=run, created_by=user, **values)
        _states_seed(rule)
    return rule, made


def _require_member(*, user: User, rule: AlertRule) -> None:
    if not role_allows(role_of(user=user, team_id=rule.team_id), Role.MEMBER):
        raise PermissionDenied(f"alert rules need the member role in team {rule.team}")


def alert_rule_update(*, user: User, rule: AlertRule, data: RuleInput) -> tuple[AlertRule, str]:
    """Change a rule's condition and channels (its scope stays). A blank secret keeps the rule's; a new
    webhook on a rule without a secret gets one made (returned, as at creation). A changed condition
    starts the rule afresh on every run: what fired under the old one says nothing about the new."""
    _require_member(user=user, rule=rule)
    if data.condition == Condition.DIVERSITY and rule.run_id is not None:
        raise AlertRuleInvalid({"condition": DIVERSITY_SCOPE})
    values = _clean(data, creating=not rule.webhook_secret)
    made = (
        "" if (data.webhook_secret or "").strip() or rule.webhook_secret else values.get("webhook_secret", "")
    )
    watched = ("condition", "metric_key", "threshold", "minutes", "states")
    changed = any(getattr(rule, name) != values[name] for name in watched)
    with transaction.atomic():
        for name, value in values.items():
            setattr(rule, name, value)
        rule.save()
        if changed:
            AlertRuleRun.objects.filter(rule=rule).delete()
            _states_seed(rule)
    return rule, made


def _states_seed(rule: AlertRule) -> None:
    """A new (or changed) threshold or NaN rule judges each run it watches from the run's latest point
    on: it fires at once if that point breaches it, but a run's history does not replay as a burst of
    old breaches. (A run that starts later is watched from its first point.)"""
    if rule.condition not in (Condition.ABOVE, Condition.BELOW, Condition.NAN):
        return
    active = Run.objects.filter(team_id=rule.team_id, status__in=ACTIVE_STATUSES)
    run_ids = [rule.run_id] if rule.run_id else list(active.values_list("pk", flat=True))
    for run_id in run_ids:
        newest = MetricPoint.objects.filter(run_id=run_id, key=rule.metric_key).order_by("-step")
        step = newest.values_list("step", flat=True).first()
        if step is not None:
            AlertRuleRun.objects.create(rule=rule, run_id=run_id, checked_step=step - 1)


def alert_rule_delete(*, user: User, rule: AlertRule) -> None:
    _require_member(user=user, rule=rule)
    rule.delete()


def alert_fire(
    *,
    rule: AlertRule,
    run_id: int | None,
    step: int | None,
    value: float | None,
    message: str,
    dataset_version_id: int | None = None,
) -> AlertFiring:
    """Record a breach (the caller won the rule's firing flag on the run, so this happens once per
    breach) and notify the rule's author in the app. Mail and webhook are the caller's to send, once this
    has committed (runs/alerts/tasks.py: `firings_deliver`). A diversity firing names a dataset version
    instead of a run."""
    now = timezone.now()
    firing = AlertFiring.objects.create(
        rule=rule,
        run_id=run_id,
        dataset_version_id=dataset_version_id,
        step=step,
        value=value if value is None or math.isfinite(value) else None,
        message=message[:2000],
        fired_at=now,
    )
    # Its author, while they may still see the team's runs (a member who left is told nothing more).
    if role_of(user=rule.created_by, team_id=rule.team_id) is not None:
        Notification.objects.create(user_id=rule.created_by_id, firing=firing, created_at=now)
    return firing


def alert_clear(*, rule: AlertRule, run_id: int) -> None:
    """The condition cleared: the open firing ends (its rule re-armed by the caller)."""
    AlertFiring.objects.filter(rule=rule, run_id=run_id, cleared_at__isnull=True).update(
        cleared_at=timezone.now()
    )


def notifications_mark_read(*, user: User, ids: list[int] | None = None) -> int:
    """Mark the user's notifications read: these ids (others' are ignored), or all of them."""
    rows = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    return rows.update(read_at=timezone.now())
