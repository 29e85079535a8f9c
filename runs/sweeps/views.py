from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from controlplane.accounts.models import Role
from controlplane.accounts.selectors import role_allows, role_of
from controlplane.htmx import partial_name, render_page
from controlplane.http import AuthedHttpRequest
from runs import launch
from runs.sweeps import selectors, services
from runs.sweeps.document import SweepDocument
from runs.sweeps.expansion import SweepError
from runs.sweeps.forms import SweepForm


def sweep_list(request: AuthedHttpRequest) -> HttpResponse:
    sweeps = list(selectors.sweep_list_for_user(user=request.user)[:200])
    return render_page(request, "sweeps/sweep_list.html", {"sweeps": sweeps})


def sweep_new(request: AuthedHttpRequest) -> HttpResponse:
    """The form; its preview (htmx, as the fields change) shows the runs it expands to and their total
    estimate; a POST launches them all or none."""
    teams = launch.run_launch_teams(user=request.user)
    form = SweepForm(request.POST if request.method == "POST" else None, teams=teams)
    preview = partial_name(request, {"sweep-preview"}) is not None
    plan, over_budget = None, ""
    if request.method == "POST" and form.is_valid() and form.document is not None:
        try:
            if not preview:
                return _launch(request, form.document)
            plan = services.sweep_plan_make(user=request.user, document=form.document)
            over_budget = services.sweep_budget_refusal(user=request.user, plan=plan)
        except SweepError as exc:
            form.add_sweep_error(exc)
    status = 400 if request.method == "POST" and not preview and form.errors else 200
    context = {"form": form, "plan": plan, "over_budget": over_budget}
    return render_page(request, "sweeps/sweep_new.html", context, partials={"sweep-preview"}, status=status)


def _launch(request: AuthedHttpRequest, document: SweepDocument) -> HttpResponse:
    result = services.sweep_launch(user=request.user, document=document)
    if result.not_queued:  # recorded, but the broker is down: the sweep page says which runs failed
        messages.error(request, result.not_queued)
    else:
        count = result.sweep.sweep_runs.count()
        messages.success(request, f"Sweep {result.sweep.name}: {count} runs queued.")
    return redirect("sweeps:detail", result.sweep.pk)


def sweep_detail(request: AuthedHttpRequest, sweep_id: int) -> HttpResponse:
    sweep = selectors.sweep_get_for_user(user=request.user, sweep_id=sweep_id)
    rows = selectors.sweep_rows(sweep=sweep)
    best = selectors.sweep_best(rows)
    context = {
        "sweep": sweep,
        "rows": rows,
        "best": best,
        "state": selectors.sweep_state_label(sweep=sweep, rows=rows),
        "plot": selectors.sweep_plot(sweep=sweep, rows=rows, best=best),
        "axes": selectors.sweep_axis_names(sweep=sweep),
        "rungs": sweep.rungs.prefetch_related("halts__run"),
        "run_ids": ",".join(str(row.run.pk) for row in rows),
        "can_operate": role_allows(role_of(user=request.user, team_id=sweep.team_id), Role.MEMBER),
    }
    return render_page(request, "sweeps/sweep_detail.html", context, partials={"sweep-runs"})


@require_POST
def sweep_stop(request: AuthedHttpRequest, sweep_id: int) -> HttpResponse:
    sweep = selectors.sweep_get_for_user(user=request.user, sweep_id=sweep_id, at_least=Role.MEMBER)
    cancelled = services.sweep_stop(sweep_id=sweep.pk, user=request.user)
    messages.success(request, f"Sweep {sweep.name} stopped: {cancelled} active run(s) cancelled.")
    return redirect("sweeps:detail", sweep.pk)
