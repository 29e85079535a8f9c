from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from controlplane.http import AuthedHttpRequest
from datasets_app import selectors
from datasets_app.forms import DatasetUploadForm, ProblemFilterForm
from datasets_app.models import Dataset, DatasetVersion, Problem
from datasets_app.services import (
    DatasetImportError,
    VerifyNotQueuedError,
    dataset_import,
    dataset_version_verify_retry,
)

PAGE_SIZE = 200


def dataset_list(request: AuthedHttpRequest) -> HttpResponse:
    form = DatasetUploadForm(request.POST or None, request.FILES or None)
    errors: list[str] = []
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            outcome = dataset_import(
                user=request.user,
                name=form.cleaned_data["name"],
                fileobj=upload,
                filename=upload.name,
            )
        except DatasetImportError as exc:
            errors = [str(e) for e in exc.errors]
        else:
            version = outcome.version
            if outcome.created and version.verify_error:  # imported, but nothing will verify it yet
                messages.error(request, f"Imported {version}, but {version.verify_error}.")
            elif outcome.created:
                messages.success(request, f"Imported {version}: {version.problem_count} problems.")
            else:
                messages.info(request, f"Identical content is already {version}; reused it.")
            url = reverse("datasets:version", kwargs={"version_id": version.pk})
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    template = "datasets_app/dataset_list.html" + ("#upload" if request.htmx else "")
    context = {"form": form, "errors": errors, "datasets": selectors.dataset_list()}
    return render(request, template, context, status=400 if request.method == "POST" else 200)


def dataset_detail(request: AuthedHttpRequest, dataset_id: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset, pk=dataset_id)
    changes = selectors.dataset_version_changes(dataset=dataset)
    return render(request, "datasets_app/dataset_detail.html", {"dataset": dataset, "changes": changes})


def version_detail(request: AuthedHttpRequest, version_id: int) -> HttpResponse:
    """The version page; htmx asks for its `summary` partial (polled while problems are pending) or,
    from the search form, its `problems` partial."""
    version = get_object_or_404(DatasetVersion.objects.select_related("dataset", "created_by"), pk=version_id)
    filters = ProblemFilterForm(request.GET or None)
    criteria = filters.cleaned_data if filters.is_valid() else {}
    problems = selectors.problem_search(
        version=version, text=criteria.get("q", ""), status=criteria.get("status", "")
    )
    context = {
        "version": version,
        "summary": selectors.version_summary(version=version),
        "filters": filters,
        "problems": problems[:PAGE_SIZE],
        "page_size": PAGE_SIZE,
    }
    partial = request.htmx.target if request.htmx and request.htmx.target in ("summary", "problems") else ""
    template = "datasets_app/version_detail.html" + (f"#{partial}" if partial else "")
    return render(request, template, context)


@require_POST
def version_verify_retry(request: AuthedHttpRequest, version_id: int) -> HttpResponse:
    version = get_object_or_404(DatasetVersion, pk=version_id)
    try:
        queued = dataset_version_verify_retry(version_id=version.pk)
    except VerifyNotQueuedError as exc:
        messages.error(request, f"{str(exc).capitalize()}.")
    else:
        messages.success(request, f"Verification of {queued} pending problems queued again.")
    return redirect("datasets:version", version_id=version.pk)


def problem_detail(request: AuthedHttpRequest, problem_id: int) -> HttpResponse:
    problem = get_object_or_404(Problem.objects.select_related("version__dataset"), pk=problem_id)
    return render(request, "datasets_app/problem_detail.html", {"problem": problem})
