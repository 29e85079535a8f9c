from django.contrib import messages
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from controlplane.http import AuthedHttpRequest
from runs import selectors, services
from runs.forms import RunLaunchForm
from runs.models import Run


def run_list(request: AuthedHttpRequest) -> HttpResponse:
    return render(request, "runs/run_list.html", {"runs": selectors.run_list()[:200]})


def run_launch(request: AuthedHttpRequest) -> HttpResponse:
    initial: dict[str, object] = {}
    if version := request.GET.get("dataset_version"):
        initial["dataset_version"] = version
    if (clone := request.GET.get("clone", "")).isdigit():
        source = get_object_or_404(Run, pk=int(clone))
        initial = {
            **source.config,
            "name": f"{source.name} (clone)",
            "dataset_version": source.dataset_version_id,
        }
    form = RunLaunchForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        result = services.run_launch(
            user=request.user,
            dataset_version=form.cleaned_data["dataset_version"],
            name=form.cleaned_data["name"],
            config=form.config(),
        )
        messages.success(request, f"Run #{result.run.pk} queued.")
        return redirect("runs:detail", run_id=result.run.pk)
    return render(request, "runs/run_launch.html", {"form": form})


def run_detail(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(selectors.run_list(), pk=run_id)
    context = {
        "run": run,
        "latest": selectors.run_latest_metrics(run_id=run.pk),
        "generations": selectors.run_generations(run_id=run.pk),
        "log_lines": selectors.run_log_tail(run_id=run.pk),
        "chart_keys": selectors.CHART_KEYS,
        "resumable": services.RESUMABLE,
    }
    template = "runs/run_detail.html"
    if request.htmx and request.GET.get("part") in {"status", "generations"}:
        template += "#" + request.GET["part"]
    return render(request, template, context)


def run_metrics(request: AuthedHttpRequest, run_id: int) -> JsonResponse:
    get_object_or_404(Run, pk=run_id)
    try:
        after_step = int(request.GET.get("after_step", "-1"))
    except ValueError:
        return JsonResponse({"error": "after_step: must be an integer"}, status=400)
    return JsonResponse({"series": selectors.run_metric_series(run_id=run_id, after_step=after_step)})


@require_POST
def run_resume(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(Run, pk=run_id)
    if services.run_resume(run_id=run.pk) is None:
        messages.info(
            request,
            f"Run #{run.pk} is {run.get_status_display()}: only lost, failed or cancelled runs resume.",
        )
    else:
        messages.success(request, f"Run #{run.pk} queued again; it continues from its last checkpoint.")
    return redirect("runs:detail", run_id=run.pk)


@require_POST
def run_cancel(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    run = get_object_or_404(Run, pk=run_id)
    if not services.run_cancel(run_id=run.pk):
        messages.info(request, f"Run #{run.pk} is {run.get_status_display()}: nothing to cancel.")
    return redirect("runs:detail", run_id=run.pk)
