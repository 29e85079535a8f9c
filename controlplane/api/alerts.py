"""Alert rules, as the /alerts/ pages make them (the same service, the same checks), and your
notifications: list them, mark them read (docs/alerts.md). A rule's webhook secret is write-only: it is
never answered, except once, when Triad made it (`webhook_secret` in the creating answer)."""

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import ConfigDict, Field

from controlplane.api.errors import ApiError
from controlplane.api.lookups import caller, page_url
from controlplane.api.paging import PER_PAGE_DEFAULT, Page, paged
from runs.alerts import selectors, services
from runs.alerts.models import AlertRule, Notification

router = Router(tags=["alerts"])


class RuleOut(Schema):
    id: int
    name: str
    description: str
    team: int
    run: int | None  # None: every run of the team
    condition: str
    metric_key: str
    threshold: float | None
    minutes: int | None
    states: list[str]
    emails: list[str]
    webhook_url: str
    webhook_secret_set: bool
    enabled: bool
    created_by: str
    created_at: str
    url: str


class RuleCreated(RuleOut):
    webhook_secret: str | None  # only when Triad made it: shown this once


class RuleIn(Schema):
    model_config = ConfigDict(extra="forbid")

    condition: str
    run: int | None = None
    team: int | None = None
    name: str = Field("", max_length=200)
    metric_key: str = ""
    threshold: float | None = None
    minutes: int | None = None
    states: list[str] = []
    emails: list[str] = []
    webhook_url: str = ""
    webhook_secret: str | None = None
    enabled: bool = True


class RulePatch(Schema):
    """Any of a rule's settings; what is left out stays. Its run and team stay what it was made with."""

    model_config = ConfigDict(extra="forbid")

    condition: str | None = None
    name: str | None = Field(None, max_length=200)
    metric_key: str | None = None
    threshold: float | None = None
    minutes: int | None = None
    states: list[str] | None = None
    emails: list[str] | None = None
    webhook_url: str | None = None
    webhook_secret: str | None = None
    enabled: bool | None = None


class NotificationOut(Schema):
    id: int
    rule: int
    run: int | None  # None: a diversity rule's firing, on a dataset version
    dataset_version: int | None = None
    step: int | None
    value: float | None
    message: str
    fired_at: str
    read: bool


class ReadIn(Schema):
    model_config = ConfigDict(extra="forbid")

    ids: list[int] | None = None  # None: all of yours


class ReadOut(Schema):
    marked: int
    unread: int


class Deleted(Schema):
    deleted: int


def _rule(request: HttpRequest, rule: AlertRule) -> dict[str, Any]:
    return {
        "id": rule.pk,
        "name": rule.name,
        "description": rule.describe(),
        "team": rule.team_id,
        "run": rule.run_id,
        "condition": rule.condition,
        "metric_key": rule.metric_key,
        "threshold": rule.threshold,
        "minutes": rule.minutes,
        "states": rule.states,
        "emails": rule.emails,
        "webhook_url": rule.webhook_url,
        "webhook_secret_set": bool(rule.webhook_secret),
        "enabled": rule.enabled,
        "created_by": rule.created_by.username,
        "created_at": rule.created_at.isoformat(),
        "url": page_url(request, "alerts:rule", rule.pk),
    }


def _notification(n: Notification) -> dict[str, Any]:
    f = n.firing
    return {
        "id": n.pk,
        "rule": f.rule_id,
        "run": f.run_id,
        "dataset_version": f.dataset_version_id,
        "step": f.step,
        "value": f.value,
        "message": f.message,
        "fired_at": f.fired_at.isoformat(),
        "read": n.read_at is not None,
    }


def _invalid(exc: services.AlertRuleInvalid) -> ApiError:
    return ApiError(400, str(exc), field=exc.field, errors=exc.errors)


@router.get("/alerts/rules", response=Page[RuleOut], url_name="alert-rules-list", summary="List alert rules")
def alert_rules_list(
    request: HttpRequest, run: int | None = None, page: int = 1, per_page: int = PER_PAGE_DEFAULT
) -> dict[str, Any]:
    """The rules of your teams, newest first; `run`: those watching that run (its own and its team's)."""
    rules = selectors.alert_rule_list_for_user(user=caller(request), run_id=run)
    return paged(rules, page=page, per_page=per_page, to_item=lambda r: _rule(request, r))


@router.post(
    "/alerts/rules", response={201: RuleCreated}, url_name="alert-rules-create", summary="Make an alert rule"
)
def alert_rules_create(request: HttpRequest, payload: RuleIn) -> Status[Any]:
    """On a run (`run`) or every run of a team (`team`); you need the member role there."""
    data = services.RuleInput(
        condition=payload.condition,
        run_id=payload.run,
        team_id=payload.team,
        name=payload.name,
        metric_key=payload.metric_key,
        threshold=payload.threshold,
        minutes=payload.minutes,
        states=payload.states,
        emails=payload.emails,
        webhook_url=payload.webhook_url,
        webhook_secret=payload.webhook_secret,
        enabled=payload.enabled,
    )
    try:
        rule, made = services.alert_rule_create(user=caller(request), data=data)
    except services.AlertRuleInvalid as exc:
        raise _invalid(exc) from None
    return Status(201, {**_rule(request, rule), "webhook_secret": made or None})


@router.get("/alerts/rules/{rule_id}", response=RuleOut, url_name="alert-rule-detail", summary="Read a rule")
def alert_rule_detail(request: HttpRequest, rule_id: int) -> dict[str, Any]:
    return _rule(request, selectors.alert_rule_get_for_user(user=caller(request), rule_id=rule_id))


@router.patch(
    "/alerts/rules/{rule_id}", response=RuleCreated, url_name="alert-rule-update", summary="Change a rule"
)
def alert_rule_update(request: HttpRequest, rule_id: int, payload: RulePatch) -> dict[str, Any]:
    rule = selectors.alert_rule_get_for_user(user=caller(request), rule_id=rule_id)
    given = payload.model_dump(exclude_unset=True)
    current = {
        "condition": rule.condition,
        "name": rule.name,
        "metric_key": rule.metric_key,
        "threshold": rule.threshold,
        "minutes": rule.minutes,
        "states": rule.states,
        "emails": rule.emails,
        "webhook_url": rule.webhook_url,
        "webhook_secret": None,
        "enabled": rule.enabled,
    }
    try:
        rule, made = services.alert_rule_update(
            user=caller(request), rule=rule, data=services.RuleInput(**{**current, **given})
        )
    except services.AlertRuleInvalid as exc:
        raise _invalid(exc) from None
    return {**_rule(request, rule), "webhook_secret": made or None}


@router.delete(
    "/alerts/rules/{rule_id}", response=Deleted, url_name="alert-rule-delete", summary="Delete a rule"
)
def alert_rule_delete(request: HttpRequest, rule_id: int) -> dict[str, Any]:
    rule = selectors.alert_rule_get_for_user(user=caller(request), rule_id=rule_id)
    services.alert_rule_delete(user=caller(request), rule=rule)
    return {"deleted": rule_id}


@router.get(
    "/alerts/notifications",
    response=Page[NotificationOut],
    url_name="alert-notifications",
    summary="Your alert notifications",
)
def alert_notifications(
    request: HttpRequest, unread: bool = False, page: int = 1, per_page: int = PER_PAGE_DEFAULT
) -> dict[str, Any]:
    """Newest first; `unread=true`: only those not read yet (the bell's count is their `count`)."""
    rows = selectors.notification_list(user=caller(request), unread=unread)
    return paged(rows, page=page, per_page=per_page, to_item=_notification)


@router.post(
    "/alerts/notifications/read",
    response=ReadOut,
    url_name="alert-notifications-read",
    summary="Mark notifications read",
)
def alert_notifications_read(request: HttpRequest, payload: ReadIn) -> dict[str, Any]:
    """These `ids` of yours (others' are ignored), or all of them when `ids` is left out."""
    user = caller(request)
    marked = services.notifications_mark_read(user=user, ids=payload.ids)
    return {"marked": marked, "unread": selectors.notification_unread_count(user=user)}
