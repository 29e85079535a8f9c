import json
from collections.abc import Iterator

from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_POST

from controlplane.accounts.models import Role
from controlplane.htmx import partial_name, render_page
from controlplane.http import AuthedHttpRequest
from runs.review import selectors, services
from runs.review.forms import CommentForm, CompareForm, LabelForm, ReviewFilterForm
from runs.review.models import Label
from runs.selectors import run_get_for_user


def review_run(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    run = run_get_for_user(user=request.user, run_id=run_id)
    form = ReviewFilterForm(request.GET)
    filters = form.filters()
    page = selectors.review_page(run_id=run.pk, filters=filters)
    context = {"run": run, "form": form, "filters": filters, "page": page, "labels": Label.choices}
    drops = (
        ("query", "after"),
        ("cls_query", "cls"),
        ("exc_query", "exception_type"),
        ("outcome_query", "outcome"),
    )
    for name, drop in drops:
        query = request.GET.copy()
        query.pop("after", None)
        query.pop(drop, None)
        context[name] = query.urlencode()
    return render_page(request, "review/review_run.html", context, partials={"review-rows"})


def review_generation(request: AuthedHttpRequest, generation_id: int) -> HttpResponse:
    selectors.review_generation_get_for_user(user=request.user, generation_id=generation_id)
    detail = selectors.review_generation_detail(generation_id=generation_id, user=request.user)
    context = {"d": detail, "labels": Label.choices}
    # review.js loads the row under the cursor into the review page's #detail
    return render_page(request, "review/generation.html", context, partials={"detail"})


def _labels(
    request: AuthedHttpRequest, generation_id: int, status: int = 200, note: str = ""
) -> HttpResponse:
    detail = selectors.review_generation_detail(generation_id=generation_id, user=request.user)
    return render(request, "review/generation.html#labels", {"d": detail, "note": note}, status=status)


def _labeller_check(request: AuthedHttpRequest, generation_id: int) -> None:
    """Members and admins of the run's team label; its viewers get 403, anyone else 404."""
    selectors.review_generation_get_for_user(
        user=request.user, generation_id=generation_id, at_least=Role.MEMBER
    )


@require_POST
def review_label(request: AuthedHttpRequest, generation_id: int) -> HttpResponse:
    _labeller_check(request, generation_id)
    form = LabelForm(request.POST)
    if not form.is_valid():
        return _labels(request, generation_id, status=400)
    added = services.review_label_add(
        generation_id=generation_id,
        user=request.user,
        label=form.cleaned_data["label"],
        comment=form.cleaned_data["comment"],
    )
    return _labels(request, generation_id, note=added.note)  # a verdict the dataset's problem did not take


@require_POST
def review_undo(request: AuthedHttpRequest, generation_id: int) -> HttpResponse:
    _labeller_check(request, generation_id)
    services.review_label_undo(generation_id=generation_id, user=request.user)
    return _labels(request, generation_id)


@require_POST
def review_comment(request: AuthedHttpRequest, generation_id: int) -> HttpResponse:
    _labeller_check(request, generation_id)
    form = CommentForm(request.POST)
    if form.is_valid():
        services.review_label_comment(
            generation_id=generation_id, user=request.user, comment=form.cleaned_data["comment"]
        )
    return _labels(request, generation_id, status=200 if form.is_valid() else 400)


def review_problems(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    run = run_get_for_user(user=request.user, run_id=run_id)
    problem = request.GET.get("problem", "")[:200]
    rows = selectors.review_problem_rows(run_id=run.pk, problem_id=problem)
    buckets: dict[str, int] = {}
    for row in rows:
        buckets[row.bucket] = buckets.get(row.bucket, 0) + 1
    context = {"run": run, "rows": rows, "buckets": sorted(buckets.items()), "problem": problem}
    return render(request, "review/problems.html", context)


def review_export(request: AuthedHttpRequest, run_id: int) -> StreamingHttpResponse:
    run = run_get_for_user(user=request.user, run_id=run_id)

    def lines() -> Iterator[str]:
        for row in selectors.review_label_export(run_id=run.pk):
            yield json.dumps(row) + "\n"

    response = StreamingHttpResponse(lines(), content_type="application/x-ndjson")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-labels.jsonl"'
    return response


def review_compare(request: AuthedHttpRequest) -> HttpResponse:
    """`?a=<generation id>&b=<generation id>`, or `?run_a=&step_a=&run_b=&step_b=&problem=`. The code
    shows at once; the matrix section (`#matrix`) polls itself while a sandbox worker computes it."""
    form = CompareForm(request.GET)
    polled = partial_name(request, {"matrix"}) is not None
    comparison = None
    if form.is_valid():
        comparison = services.review_generations_compare(
            a=form.side("a"), b=form.side("b"), user=request.user, retry_failed=not polled
        )
    missing = comparison is not None and (comparison.a is None or comparison.b is None)
    status = 404 if missing else 200
    retry_after = comparison.retry_after if comparison is not None else None
    if polled:
        status = 429 if retry_after is not None and not missing else status
    context = {"form": form, "c": comparison}
    response = render_page(request, "review/compare.html", context, partials={"matrix"}, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response
