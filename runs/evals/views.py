from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from controlplane.htmx import render_page
from controlplane.http import AuthedHttpRequest
from runs.evals import selectors, services
from runs.evals.forms import EvalJobForm

NO_EVALUATE = "Evaluating needs the member role in a team."


def eval_list(request: AuthedHttpRequest) -> HttpResponse:
    """The team's evaluation jobs, newest first; refreshes while one is queued or running."""
    jobs = list(selectors.eval_job_list_for_user(user=request.user)[:200])
    context = {"jobs": jobs, "waiting": any(job.is_waiting for job in jobs)}
    return render_page(request, "evals/eval_list.html", context, partials={"evals"})


def eval_new(request: AuthedHttpRequest) -> HttpResponse:
    """The form (prefilled by ?model=<id> or ?run=<id> from those pages' "Evaluate" links)."""
    teams = selectors.eval_teams(user=request.user)
    refusal = "" if request.user.is_superuser or teams.exists() else NO_EVALUATE
    if request.method == "POST" and refusal:
        raise PermissionDenied(refusal)
    models, runs = selectors.eval_subject_choices(teams=teams)
    versions = selectors.eval_version_choices(teams=teams)
    initial = {"subject": _prefill(request)}
    form = EvalJobForm(request.POST or None, initial=initial, models=models, runs=runs, versions=versions)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.eval_job_create(user=request.user, **form.job_arguments())
        except services.EvalJobError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, str(exc))
        else:
            messages.success(request, f"Evaluation #{job.pk} queued for a node of pool {job.pool}.")
            return redirect("evals:detail", job.pk)
    context = {"form": form, "refusal": refusal}
    return render_page(
        request, "evals/eval_new.html", context, status=400 if request.method == "POST" else 200
    )


def _prefill(request: AuthedHttpRequest) -> str:
    for kind in ("model", "run"):
        if request.GET.get(kind, "").isdigit():
            return f"{kind}:{request.GET[kind]}"
    return ""


def eval_detail(request: AuthedHttpRequest, job_id: int) -> HttpResponse:
    """One job: its status (refreshing while queued or running), totals and each problem's result."""
    job = selectors.eval_job_get_for_user(user=request.user, job_id=job_id)
    context = {"job": job, "problems": selectors.eval_problem_results(job=job)}
    return render_page(request, "evals/eval_detail.html", context, partials={"eval"})


@require_POST
def eval_again(request: AuthedHttpRequest, job_id: int) -> HttpResponse:
    """A new job with a finished one's inputs; the first one stays, to compare with."""
    job = selectors.eval_job_get_for_user(user=request.user, job_id=job_id)
    try:
        again = services.eval_job_again(user=request.user, job=job)
    except services.EvalJobError as exc:
        messages.error(request, f"Evaluation #{job.pk} was not evaluated again: {exc}")
        return redirect("evals:detail", job.pk)
    messages.success(request, f"Evaluation #{again.pk}: #{job.pk} again, queued for pool {again.pool}.")
    return redirect("evals:detail", again.pk)


def eval_compare(request: AuthedHttpRequest) -> HttpResponse:
    """Two jobs: their totals side by side, each problem's two results, those that differ first."""
    a, b = request.GET.get("a", ""), request.GET.get("b", "")
    if not (a.isdigit() and b.isdigit()):
        return HttpResponseBadRequest("a and b: the ids of two evaluations")
    job_a = selectors.eval_job_get_for_user(user=request.user, job_id=int(a))
    job_b = selectors.eval_job_get_for_user(user=request.user, job_id=int(b))
    totals, rows = selectors.eval_compare(a=job_a, b=job_b)
    context = {"a": job_a, "b": job_b, "totals": totals, "rows": rows}
    return render_page(request, "evals/eval_compare.html", context)
