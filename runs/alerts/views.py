"""The alert pages: the rules of your teams (/alerts/), one rule with its firings and deliveries, your
notifications, the header's bell and the run page's "Alert me when…" card."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from controlplane.accounts.models import Role
from controlplane.accounts.selectors import role_allows, role_of, team_list_for
from controlplane.http import AuthedHttpRequest
from runs.alerts import selectors, services
from runs.alerts.forms import AlertRuleForm
from runs.alerts.models import AlertRule
from runs.selectors import run_get_for_user


def _teams(request: AuthedHttpRequest) -> list[tuple[int, str]]:
    return [(t.pk, t.name) for t in team_list_for(user=request.user, at_least=Role.MEMBER)]


def _secret_shown_once(request: AuthedHttpRequest, rule: AlertRule, made: str) -> None:
    messages.success(request, f"Alert rule #{rule.pk} saved: {rule.describe()}.")
    if made:
        messages.warning(request, f"Webhook secret of rule #{rule.pk}, shown this once: {made}")


def alert_list(request: AuthedHttpRequest) -> HttpResponse:
    """Every rule of your teams, newest first, and a form for a new one."""
    rules = list(selectors.alert_rule_list_for_user(user=request.user)[:500])
    form = AlertRuleForm(teams=_teams(request), initial={"enabled": True})
    context = {"rules": rules, "form": form, "unread": selectors.notification_unread_count(user=request.user)}
    return render(request, "alerts/alert_list.html", context)


def alert_rule_new(request: AuthedHttpRequest) -> HttpResponse:
    """Make a rule (from /alerts/ or a run page's card, which sends `next` to come back to)."""
    initial = {"enabled": True, "run": request.GET.get("run") or None}
    form = AlertRuleForm(request.POST or None, teams=_teams(request), initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            rule, made = services.alert_rule_create(user=request.user, data=form.rule_input())
        except services.AlertRuleInvalid as exc:
            form.add_rule_errors(exc.errors)
        else:
            _secret_shown_once(request, rule, made)
            back = request.POST.get("next", "")
            if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
                return redirect(back)
            return redirect("alerts:rule", rule.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "alerts/rule_new.html", {"form": form}, status=status)


def alert_rule_detail(request: AuthedHttpRequest, rule_id: int) -> HttpResponse:
    """One rule: edit it (members), what it fired and every delivery attempt."""
    rule = selectors.alert_rule_get_for_user(user=request.user, rule_id=rule_id)
    can_edit = role_allows(role_of(user=request.user, team_id=rule.team_id), Role.MEMBER)
    initial = {**{f: getattr(rule, f) for f in ("name", "condition", "metric_key", "threshold", "minutes")}}
    initial |= {"states": rule.states, "emails": ", ".join(rule.emails), "webhook_url": rule.webhook_url}
    initial["enabled"] = rule.enabled
    form = AlertRuleForm(request.POST or None, teams=[], editing=True, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            rule, made = services.alert_rule_update(user=request.user, rule=rule, data=form.rule_input())
        except services.AlertRuleInvalid as exc:
            form.add_rule_errors(exc.errors)
        else:
            _secret_shown_once(request, rule, made)
            return redirect("alerts:rule", rule.pk)
    context = {
        "rule": rule,
        "form": form,
        "can_edit": can_edit,
        "firings": selectors.alert_firing_list(rule=rule),
        "deliveries": selectors.alert_delivery_list(rule=rule),
    }
    return render(request, "alerts/rule_detail.html", context, status=400 if form.errors else 200)


@require_POST
def alert_rule_delete(request: AuthedHttpRequest, rule_id: int) -> HttpResponse:
    rule = selectors.alert_rule_get_for_user(user=request.user, rule_id=rule_id)
    services.alert_rule_delete(user=request.user, rule=rule)
    messages.success(request, f"Alert rule #{rule_id} deleted.")
    return redirect("alerts:list")


def notification_list(request: AuthedHttpRequest) -> HttpResponse:
    """Your notifications, newest first (the unread ones marked), with "Mark all read"."""
    rows = list(selectors.notification_list(user=request.user)[:200])
    return render(request, "alerts/notifications.html", {"notifications": rows})


@require_POST
def notifications_read(request: AuthedHttpRequest) -> HttpResponse:
    ids = [int(i) for i in request.POST.getlist("id") if i.isdigit()]
    services.notifications_mark_read(user=request.user, ids=ids or None)
    return redirect("alerts:notifications")


def bell(request: AuthedHttpRequest) -> HttpResponse:
    """The header's bell with your unread count (htmx polls it)."""
    unread = selectors.notification_unread_count(user=request.user)
    return render(request, "alerts/_bell.html#bell", {"unread": unread, "loaded": True})


def run_alerts(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    """The run page's card: the rules watching the run, and "Alert me when…" for its team's members."""
    run = run_get_for_user(user=request.user, run_id=run_id)
    can_edit = role_allows(role_of(user=request.user, team_id=run.team_id), Role.MEMBER)
    rules = list(selectors.alert_rule_list_for_user(user=request.user, run_id=run.pk)[:100])
    form = AlertRuleForm(teams=[], for_run=True, initial={"enabled": True, "run": run.pk})
    context = {"run": run, "rules": rules, "form": form, "can_edit": can_edit}
    return render(request, "alerts/run_alerts.html", context)
