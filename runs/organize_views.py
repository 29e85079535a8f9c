"""The run page's heading: progress, rename, tags, note, archive and delete (docs/runs.md, "Organizing
runs"). An htmx form gets back the block it changed; a plain form (no scripts) a redirect to the page."""

from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from controlplane.accounts.models import Role
from controlplane.accounts.selectors import role_allows, role_of
from controlplane.http import AuthedHttpRequest
from runs import organize, progress, selectors
from runs.models import Run
from runs.note import note_html


def header_context(request: AuthedHttpRequest, run: Run) -> dict[str, Any]:
    """What templates/runs/_header.html and _organize.html read (the run page adds it to its own)."""
    role = role_of(user=request.user, team_id=run.team_id)
    return {
        "run": run,
        "progress": progress.run_progress(run=run),
        "note_html": note_html(run.note),
        "run_tags": list(run.tags.values_list("name", flat=True)),
        "can_organize": role_allows(role, Role.MEMBER),
        "can_delete": role_allows(role, Role.ADMIN),
    }


def _answer(request: AuthedHttpRequest, run: Run, block: str, error: str = "") -> HttpResponse:
    if not request.htmx:
        if error:
            messages.error(request, error)
        return redirect("runs:detail", run_id=run.pk)
    template = "runs/_header.html#run-header" if block == "run-header" else f"runs/_organize.html#{block}"
    return render(request, template, {**header_context(request, run), "error": error})


def run_progress(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    run = selectors.run_get_for_user(user=request.user, run_id=run_id)
    context = {"progress": progress.run_progress(run=run), "run": run}
    return render(request, "runs/_organize.html#run-progress", context)


@require_POST
def run_rename(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    run = selectors.run_get_for_user(user=request.user, run_id=run_id, at_least=Role.MEMBER)
    try:
        organize.run_rename(run=run, user=request.user, name=request.POST.get("name", ""))
    except organize.OrganizeError as exc:
        return _answer(request, run, "run-header", str(exc))
    return _answer(request, run, "run-header")


@require_POST
def run_tags(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    """Add the tags typed (comma-separated), or with `remove`, take that one off."""
    run = selectors.run_get_for_user(user=request.user, run_id=run_id, at_least=Role.MEMBER)
    try:
        if remove := request.POST.get("remove"):
            organize.run_tag_remove(run=run, tag=remove)
        else:
            organize.run_tags_add(run=run, tags=organize.tags_split(request.POST.get("tags", "")))
    except organize.OrganizeError as exc:
        return _answer(request, run, "run-tags", str(exc))
    return _answer(request, run, "run-tags")


@require_POST
def run_note(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    run = selectors.run_get_for_user(user=request.user, run_id=run_id, at_least=Role.MEMBER)
    try:
        organize.run_note_set(run=run, note=request.POST.get("note", ""))
    except organize.OrganizeError as exc:
        return _answer(request, run, "run-note", str(exc))
    return _answer(request, run, "run-note")


@require_POST
def run_archive(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    run = selectors.run_get_for_user(user=request.user, run_id=run_id, at_least=Role.MEMBER)
    organize.run_archive(run=run, user=request.user, archived=request.POST.get("archived") != "0")
    return _answer(request, run, "run-actions")


@require_POST
def run_delete(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    run = selectors.run_get_for_user(user=request.user, run_id=run_id, at_least=Role.ADMIN)
    checkpoints = request.POST.get("checkpoints") == "1"
    try:
        sent = organize.run_delete(run=run, user=request.user, checkpoints=checkpoints)
    except organize.OrganizeError as exc:
        messages.error(request, f"Not deleted: {exc}")
        return redirect("runs:detail", run_id=run.pk)
    messages.success(request, f"Run #{run_id} {run.name} deleted, with its metrics, generations and logs.")
    if checkpoints and sent:
        messages.info(request, f"A node of pool {run.pool} deletes its checkpoints (exported models stay).")
    elif checkpoints:
        messages.error(request, "Its checkpoints were not deleted: the broker is unreachable.")
    return redirect(reverse("runs:list"))
