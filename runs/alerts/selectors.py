"""Reads the alert pages and the API share: the rules a user may see, their firings and deliveries, and
a user's notifications."""

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.http import Http404

from controlplane.accounts.selectors import team_filter
from runs.alerts.models import AlertFiring, AlertRule, Delivery, Notification
from runs.models import Run


def alert_rule_list_for_user(*, user: User, run_id: int | None = None) -> QuerySet[AlertRule]:
    """The rules of the user's teams, newest first; with `run_id`, those that watch that run (its own
    and its team's)."""
    rules = AlertRule.objects.filter(team_filter(user=user)).select_related("team", "run", "created_by")
    if run_id is not None:
        team_id = Run.objects.filter(pk=run_id).values("team_id")
        rules = rules.filter(Q(run_id=run_id) | Q(run__isnull=True, team_id__in=team_id))
    return rules


def alert_rule_get_for_user(*, user: User, rule_id: int) -> AlertRule:
    """A rule of one of the user's teams (else 404: another team's rule does not exist for them)."""
    rule = alert_rule_list_for_user(user=user).filter(pk=rule_id).first()
    if rule is None:
        raise Http404(f"no alert rule #{rule_id}")
    return rule


def alert_firing_list(*, rule: AlertRule, limit: int = 50) -> list[AlertFiring]:
    return list(rule.firings.select_related("run", "dataset_version__dataset")[:limit])


def alert_delivery_list(*, rule: AlertRule, limit: int = 100) -> list[Delivery]:
    return list(Delivery.objects.filter(firing__rule=rule).select_related("firing")[:limit])


def notification_list(*, user: User, unread: bool = False) -> QuerySet[Notification]:
    rows = Notification.objects.filter(user=user).select_related(
        "firing__rule", "firing__run", "firing__dataset_version__dataset"
    )
    return rows.filter(read_at__isnull=True) if unread else rows


def notification_unread_count(*, user: User) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()
