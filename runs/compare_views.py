"""The compare page (a run picker when no runs are given), its chart script's JSON reads, and the metric
links to the comparison's export (the API's route, which takes the browser's session too)."""

from django import forms
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from controlplane.htmx import render_page
from controlplane.http import AuthedHttpRequest
from runs import compare, selectors
from runs.forms import (
    MAX_COMPARE,
    MAX_RUN_ID,
    CompareKeysForm,
    CompareMetricsForm,
    RunCompareForm,
    RunFilterForm,
)

PICKER_PARTIALS = {"picker-rows"}


def run_compare(request: AuthedHttpRequest) -> HttpResponse:
    """?runs=3,7,12 (or ?ids=, as the runs list sends) compares; no runs, `pick` (the picker's own
    search) or runs that cannot be compared show the picker, saying why."""
    checked = request.GET.getlist("runs")
    given = ",".join(checked + request.GET.getlist("ids"))
    if "pick" in request.GET or not given.strip():
        return _picker(request, given)
    form = RunCompareForm({"ids": given})
    if not form.is_valid():
        return _picker(request, given, form=form, status=400)
    run_ids = form.cleaned_data["ids"]
    if len(checked) > 1 or (checked and set(request.GET) - {"runs"}):
        # The picker's form (runs=1&runs=2, and its search fields): the one shareable URL instead.
        return redirect(f"{reverse('runs:compare')}?runs={','.join(map(str, run_ids))}")
    rows = selectors.run_compare_rows(user=request.user, run_ids=run_ids)
    shown = {row["run"].pk for row in rows}
    if missing := [run_id for run_id in run_ids if run_id not in shown]:
        # Another team's run does not exist for the user: the same 404 as an id that was never used.
        form.add_error("ids", f"no run #{missing[0]}")
        return _picker(request, given, form=form, status=404)
    context = {
        "form": form,
        "rows": rows,
        "run_ids": ",".join(str(row["run"].pk) for row in rows),
        "differences": selectors.config_differences([row["run"].config for row in rows]),
        "compare_keys": selectors.COMPARE_KEYS,
    }
    return render_page(request, "runs/run_compare.html", context)


def _loose_ids(text: str) -> list[int]:
    """The ids in `text` that could be runs, for the picker to keep checked while it says what is wrong
    with the rest."""
    parts = [p.strip() for p in text.split(",")]
    return list(dict.fromkeys(int(p) for p in parts if p.isascii() and p.isdigit() and int(p) <= MAX_RUN_ID))


def _picker(
    request: AuthedHttpRequest, given: str, *, form: forms.Form | None = None, status: int = 200
) -> HttpResponse:
    filters = RunFilterForm(request.GET, user=request.user)
    chosen = filters.cleaned_data if filters.is_valid() else {}
    selected = _loose_ids(given)
    listed = compare.compare_picker_runs(
        user=request.user,
        selected=selected,
        q=chosen.get("q") or "",
        status=chosen.get("status") or "",
        dataset_id=chosen["dataset"].pk if chosen.get("dataset") else None,
    )
    context = {
        "picker": listed,
        "filters": filters,
        "selected": set(selected),
        "form": form,
        "max_compare": MAX_COMPARE,
        "searched": any(request.GET.get(name) for name in ("q", "status", "dataset")),
    }
    return render_page(request, "runs/run_compare.html", context, partials=PICKER_PARTIALS, status=status)


def _refusal(form: forms.Form) -> JsonResponse:
    field, errors = next(iter(form.errors.items()))
    return JsonResponse({"error": f"{field}: {errors[0]}", "field": field}, status=400)


def compare_metrics(request: AuthedHttpRequest) -> JsonResponse:
    """{"runs": [visible ids, in order], "series": {key: {run id: [[step, value], ...]}}, "truncated",
    "max_points"}: every run × key the compare page charts, in one answer."""
    form = CompareMetricsForm(request.GET)
    if not form.is_valid():
        return _refusal(form)
    data = form.cleaned_data
    read = compare.compare_metric_read(
        user=request.user,
        run_ids=data["runs"],
        keys=data["keys"] or selectors.COMPARE_KEYS,
        max_points=data["max_points"],
    )
    answer = {
        "runs": read.runs,
        "series": read.series,
        "truncated": read.truncated,
        "max_points": read.max_points,
    }
    return JsonResponse(answer)


def compare_keys(request: AuthedHttpRequest) -> JsonResponse:
    """{"keys": [{"key", "runs": how many of the runs logged it}, ...]}, by key, `q` a substring."""
    form = CompareKeysForm(request.GET)
    if not form.is_valid():
        return _refusal(form)
    keys = compare.compare_metric_keys(
        user=request.user, run_ids=form.cleaned_data["runs"], q=form.cleaned_data["q"]
    )
    return JsonResponse({"keys": keys})
