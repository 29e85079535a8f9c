import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from controlplane.accounts.models import Role
from controlplane.accounts.selectors import (
    is_admin_anywhere,
    is_site_admin,
    team_list_for,
    user_list_managed_by,
)
from controlplane.http import AuthedHttpRequest
from runs.models import Node
from runs.pools import launch_resources, pool_for_run
from runs.selectors import run_get_for_user
from runs.spend import selectors, services
from runs.spend.csv_export import spend_csv_filename, spend_csv_lines
from runs.spend.forms import (
    EstimateForm,
    GpuPriceForm,
    MonthlyBudgetForm,
    NodePriceForm,
    SpendPeriodForm,
    TeamBudgetForm,
)
from runs.spend.models import GpuPrice


def admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The prices and budgets page and the budget forms: admins of any team, and site admins. Which
    budgets an admin may set, the services check (docs/teams.md)."""

    @wraps(view)
    def wrapped(request: AuthedHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not (is_admin_anywhere(user=request.user) or is_site_admin(user=request.user)):
            raise PermissionDenied("prices and budgets are managed by admins")
        return view(request, *args, **kwargs)

    return wrapped


def site_admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Changing a price: site admins only (superusers and staff). Prices are shared by every team and
    bill every team's runs, so a team's admin reads them but does not set them."""

    @wraps(view)
    def wrapped(request: AuthedHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_site_admin(user=request.user):
            raise PermissionDenied("prices are shared by every team: site admins set them")
        return view(request, *args, **kwargs)

    return wrapped


def _since(request: AuthedHttpRequest) -> tuple[SpendPeriodForm, dt.date]:
    form = SpendPeriodForm(request.GET)
    days = form.period_days()
    return form, timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=days - 1)


def spend_dashboard(request: AuthedHttpRequest) -> HttpResponse:
    form, since = _since(request)
    by_day = selectors.spend_by_day(user=request.user, since=since)
    context = {
        "form": form,
        "since": since,
        "by_day": by_day,
        "chart": {"days": [d["day"].isoformat() for d in by_day], "usd": [float(d["usd"]) for d in by_day]},
        "by_user": selectors.spend_by_user(user=request.user, since=since),
        "by_team": selectors.spend_by_team(user=request.user, since=since),
        "by_pool": selectors.spend_by_pool(user=request.user, since=since),
        "top_runs": selectors.spend_top_runs(user=request.user, since=since),
        "total": sum((d["usd"] for d in by_day), start=Decimal(0)),
    }
    return render(request, "spend/dashboard.html", context)


def spend_csv(request: AuthedHttpRequest) -> StreamingHttpResponse:
    _, since = _since(request)
    response = StreamingHttpResponse(spend_csv_lines(user=request.user, since=since), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{spend_csv_filename(since=since)}"'
    return response


@admin_required
def spend_prices(request: AuthedHttpRequest) -> HttpResponse:
    can_set_prices = is_site_admin(user=request.user)
    if request.method == "POST" and not can_set_prices:
        raise PermissionDenied("prices are shared by every team: site admins set them")
    form = GpuPriceForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        price = services.gpu_price_set(
            pool=form.cleaned_data["pool"],
            gpu_type=form.cleaned_data["gpu_type"],
            usd_per_gpu_hour=form.cleaned_data["usd_per_gpu_hour"],
            user=request.user,
        )
        messages.success(request, f"Price saved: {price}.")
        return redirect("spend:prices")
    context = {
        "form": form,
        "prices": GpuPrice.objects.all(),
        "budgets": selectors.user_budget_list(admin=request.user),
        "budget_form": MonthlyBudgetForm(users=user_list_managed_by(admin=request.user)),
        "team_budgets": selectors.team_budget_list(admin=request.user),
        "team_budget_form": TeamBudgetForm(teams=team_list_for(user=request.user, at_least=Role.ADMIN)),
        "nodes": Node.objects.order_by("pool", "name"),
        "node_price_form": NodePriceForm(),
        "default_price": settings.TRIAD_SPEND_DEFAULT_USD_PER_GPU_HOUR,
        "can_set_prices": can_set_prices,
    }
    return render(request, "spend/prices.html", context, status=400 if form.errors else 200)


def _first_errors(form: forms.Form) -> str:
    """Each invalid field with its first error, for a one-line message: "usd_per_month: …; user: …"."""
    return "; ".join(f"{field}: {errors[0]}" for field, errors in form.errors.items())


@require_POST
@admin_required
def spend_budget_set(request: AuthedHttpRequest) -> HttpResponse:
    form = MonthlyBudgetForm(request.POST, users=user_list_managed_by(admin=request.user))
    if not form.is_valid():
        messages.error(request, f"Budget not saved: {_first_errors(form)}")
        return redirect("spend:prices")
    user, usd = form.cleaned_data["user"], form.cleaned_data["usd_per_month"]
    services.monthly_budget_set(user=user, usd_per_month=usd, actor=request.user)
    messages.success(
        request, f"Monthly budget of {user}: " + (f"${usd}" if usd is not None else "no cap") + "."
    )
    return redirect("spend:prices")


@require_POST
@admin_required
def spend_team_budget_set(request: AuthedHttpRequest) -> HttpResponse:
    form = TeamBudgetForm(request.POST, teams=team_list_for(user=request.user, at_least=Role.ADMIN))
    if not form.is_valid():
        messages.error(request, f"Team budget not saved: {_first_errors(form)}")
        return redirect("spend:prices")
    team, usd = form.cleaned_data["team"], form.cleaned_data["usd_per_month"]
    services.team_monthly_budget_set(team=team, usd_per_month=usd, actor=request.user)
    messages.success(
        request, f"Monthly budget of team {team}: " + (f"${usd}" if usd is not None else "no cap") + "."
    )
    return redirect("spend:prices")


@require_POST
@site_admin_required
def spend_node_price_set(request: AuthedHttpRequest) -> HttpResponse:
    form = NodePriceForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Node price not saved: {_first_errors(form)}")
        return redirect("spend:prices")
    node, usd = form.cleaned_data["node"], form.cleaned_data["usd_per_gpu_hour"]
    services.node_price_set(node_id=node.pk, usd_per_gpu_hour=usd, user=request.user)
    messages.success(
        request, f"Node {node}: " + (f"${usd}/GPU-hour" if usd is not None else "pool price") + "."
    )
    return redirect("spend:prices")


def spend_estimate(request: AuthedHttpRequest) -> HttpResponse:
    """The launch form's cost estimate (an htmx partial that follows the form's fields)."""
    form = EstimateForm(request.GET, user=request.user)
    config = form.config()
    if form.yaml_error:
        return render(request, "spend/estimate.html", {"yaml_error": form.yaml_error})
    version, model = form.cleaned_data.get("dataset_version"), form.cleaned_data.get("model")
    pool = form.cleaned_data.get("pool") or ""
    estimate = selectors.spend_estimate(
        dataset_version_id=version.pk if version else None,
        pool=pool_for_run(pool=pool, model=model),
        steps=config.steps,
        gpus=config.gpus_per_node,
        nodes=config.nodes,
    )
    context = {
        "estimate": estimate,
        "resources": launch_resources(config=config, model=model, pool=pool),
        "budget_usd": config.budget_usd,
        "from_yaml": form.yaml_config is not None,
        "monthly": selectors.user_budget_state(user_id=request.user.pk),
    }
    return render(request, "spend/estimate.html", context)


def run_cost(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    """The run page's cost line (an htmx partial, refreshed while the run is active)."""
    run = run_get_for_user(user=request.user, run_id=run_id)
    context = {
        "run": run,
        "projection": selectors.run_cost_projection(run=run),
        "resolve": selectors.run_resolve_stats(run=run),  # None unless a repository run
    }
    return render(request, "spend/run_cost.html", context)
