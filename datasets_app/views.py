from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from controlplane.http import AuthedHttpRequest
from datasets_app import selectors
from datasets_app.forms import DatasetUploadForm
from datasets_app.models import DatasetVersion
from datasets_app.services import DatasetImportError, dataset_import


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
            if outcome.created:
                messages.success(request, f"Imported {version}: {version.problem_count} problems.")
            else:
                messages.info(request, f"Identical content is already {version}; reused it.")
            url = reverse("datasets:version", kwargs={"version_id": version.pk})
            return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    template = "datasets_app/dataset_list.html" + ("#upload" if request.htmx else "")
    context = {"form": form, "errors": errors, "datasets": selectors.dataset_list()}
    return render(request, template, context, status=400 if request.method == "POST" else 200)


def version_detail(request: AuthedHttpRequest, version_id: int) -> HttpResponse:
    version = get_object_or_404(DatasetVersion.objects.select_related("dataset"), pk=version_id)
    context = {"version": version, "problems": version.problems.all()[:500]}
    return render(request, "datasets_app/version_detail.html", context)
