from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from controlplane.accounts.models import Role
from controlplane.accounts.selectors import is_site_admin
from controlplane.htmx import render_page
from controlplane.http import AuthedHttpRequest
from datasets_app import selectors
from datasets_app.forms import DatasetUploadForm, ProblemFilterForm
from datasets_app.services import (
    DatasetImportError,
    DatasetInUseError,
    VerifyNotQueuedError,
    dataset_delete,
    dataset_import,
    dataset_version_verify_retry,
)

PAGE_SIZE = 200
NO_UPLOAD = (
    "Uploading a dataset needs the member role in a team (it runs code on the verification workers): "
    "ask a team admin to add you as a member."
)


def dataset_list(request: AuthedHttpRequest) -> HttpResponse:
    """Datasets the user reads, and the upload form: members upload into their teams; viewers and users in
    no team get the reason instead (403 if they post anyway)."""
    teams = selectors.dataset_upload_teams(user=request.user)
    can_share = is_site_admin(user=request.user)
    refusal = "" if can_share or teams.exists() else NO_UPLOAD
    form = DatasetUploadForm(request.POST or None, request.FILES or None, teams=teams, can_share=can_share)
    errors: list[str] = []
    if request.method == "POST" and not refusal and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            outcome = dataset_import(
                user=request.user,
                name=form.cleaned_data["name"],
                fileobj=upload,
                filename=upload.name,
                team=form.cleaned_data.get("team"),
                shared=form.cleaned_data.get("shared", False),
            )
        except DatasetImportError as exc:
            errors = [str(e) for e in exc.errors]
        except PermissionDenied as exc:
            refusal = f"{str(exc).capitalize()}."
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
    datasets = selectors.dataset_list_for_user(user=request.user)
    context = {"form": form, "errors": errors, "refusal": refusal, "datasets": datasets}
    status = 200 if request.method != "POST" else 403 if refusal else 400
    return render_page(request, "datasets_app/dataset_list.html", context, partials={"upload"}, status=status)


def dataset_detail(request: AuthedHttpRequest, dataset_id: int) -> HttpResponse:
    dataset = selectors.dataset_get_for_user(user=request.user, dataset_id=dataset_id)
    context = {
        "dataset": dataset,
        "changes": selectors.dataset_version_changes(dataset=dataset),
        "diversity": selectors.dataset_diversity(dataset=dataset),
        "can_delete": selectors.dataset_role_allows(user=request.user, dataset=dataset, at_least=Role.ADMIN),
        "can_generate": selectors.dataset_role_allows(
            user=request.user, dataset=dataset, at_least=Role.MEMBER
        ),
        "generation_jobs": selectors.generation_job_list_for_dataset(dataset=dataset)[:20],
    }
    return render(request, "datasets_app/dataset_detail.html", context)


@require_POST
def dataset_delete_view(request: AuthedHttpRequest, dataset_id: int) -> HttpResponse:
    try:
        name = dataset_delete(user=request.user, dataset_id=dataset_id)
    except DatasetInUseError as exc:
        messages.error(request, f"Not deleted: {exc}.")
        return redirect("datasets:detail", dataset_id=dataset_id)
    messages.success(request, f"Deleted {name}.")
    return redirect("datasets:list")


def version_detail(request: AuthedHttpRequest, version_id: int) -> HttpResponse:
    """The version page; htmx asks for its `summary` partial (polled while problems are pending) or,
    from the search form, its `problems` partial."""
    version = selectors.dataset_version_get_for_user(user=request.user, version_id=version_id)
    filters = ProblemFilterForm(request.GET or None)
    criteria = filters.cleaned_data if filters.is_valid() else {}
    problems = selectors.problem_search(
        version=version,
        text=criteria.get("q", ""),
        status=criteria.get("status", ""),
        kind=criteria.get("kind", ""),
    )
    context = {
        "version": version,
        "summary": selectors.version_summary(version=version),
        "filters": filters,
        "problems": problems[:PAGE_SIZE],
        "page_size": PAGE_SIZE,
    }
    return render_page(request, "datasets_app/version_detail.html", context, partials={"summary", "problems"})


@require_POST
def version_verify_retry(request: AuthedHttpRequest, version_id: int) -> HttpResponse:
    version = selectors.dataset_version_get_for_user(
        user=request.user, version_id=version_id, at_least=Role.MEMBER, doing="verifying"
    )
    try:
        queued = dataset_version_verify_retry(version_id=version.pk)
    except VerifyNotQueuedError as exc:
        messages.error(request, f"{str(exc).capitalize()}.")
    else:
        messages.success(request, f"Verification of {queued} pending problems queued again.")
    return redirect("datasets:version", version_id=version.pk)


def problem_detail(request: AuthedHttpRequest, problem_id: int) -> HttpResponse:
    problem = selectors.problem_get_for_user(user=request.user, problem_id=problem_id)
    cases = selectors.problem_cases_shown(problem=problem)
    context = {
        "problem": problem,
        "cases": cases,
        "cases_hidden": len(problem.cases) - len(cases),
        "snapshot": selectors.problem_snapshot_shown(problem=problem),
    }
    return render(request, "datasets_app/problem_detail.html", context)


# --- generation jobs (docs/datasets.md, "Generation jobs") -------------------------------------------


@sensitive_post_parameters("api_key")  # an error report never shows the key
def generation_job_new(request: AuthedHttpRequest, dataset_id: int) -> HttpResponse:
    """The launch form (members of the dataset's team); a valid post launches and opens the job page."""
    from datasets_app.forms import GenerationJobForm
    from datasets_app.genjobs import GenerationJobError, generation_job_create

    dataset = selectors.dataset_get_for_user(
        user=request.user, dataset_id=dataset_id, at_least=Role.MEMBER, doing="generating problems for"
    )
    form = GenerationJobForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = generation_job_create(
                user=request.user,
                dataset_id=dataset.pk,
                base_url=data["base_url"],
                model=data["model"],
                api_key=data["api_key"],
                params=data["params"],
            )
        except GenerationJobError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            return redirect("datasets:job", job_id=job.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "datasets_app/generation_new.html", {"dataset": dataset, "form": form}, status=status
    )


def generation_job_detail(request: AuthedHttpRequest, job_id: int) -> HttpResponse:
    """A job's live progress; htmx polls its `job-progress` partial every 2 s while it is active."""
    job = selectors.generation_job_get_for_user(user=request.user, job_id=job_id)
    context = {
        "job": job,
        "progress": selectors.generation_job_progress(job=job),
        "rejections": selectors.generation_candidate_list(job=job, status="rejected").order_by("-pk")[
            :PAGE_SIZE
        ],
        "can_cancel": job.is_active
        and selectors.dataset_role_allows(user=request.user, dataset=job.dataset, at_least=Role.MEMBER),
        "page_size": PAGE_SIZE,
    }
    return render_page(request, "datasets_app/generation_job.html", context, partials={"job-progress"})


@require_POST
def generation_job_cancel_view(request: AuthedHttpRequest, job_id: int) -> HttpResponse:
    from datasets_app.genjobs import generation_job_cancel

    job = generation_job_cancel(user=request.user, job_id=job_id)
    messages.success(request, f"Generation job {job.pk}: {job.get_status_display().lower()}.")
    return redirect("datasets:job", job_id=job.pk)
