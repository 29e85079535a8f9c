from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from controlplane.accounts.models import Role
from controlplane.accounts.selectors import team_list_for
from controlplane.htmx import render_page
from controlplane.http import AuthedHttpRequest
from runs.registry import selectors, services
from runs.registry.forms import ModelExportForm, ModelRegisterForm
from runs.registry.models import ModelStatus
from runs.selectors import run_get_for_user

NO_REGISTER = "Registering a model needs the member role in a team."


def model_list(request: AuthedHttpRequest) -> HttpResponse:
    """The models the user reads (pending ones refresh until a node answers) and the register form."""
    teams = team_list_for(user=request.user, at_least=Role.MEMBER)
    refusal = "" if request.user.is_superuser or teams.exists() else NO_REGISTER
    form = ModelRegisterForm(request.POST or None, teams=teams)
    status = 200
    if request.method == "POST":
        if refusal:
            raise PermissionDenied(refusal)
        if form.is_valid():
            try:
                model = services.model_register(user=request.user, **form.cleaned_data)
            except services.ModelRegisterError as exc:
                form.add_error(exc.field, str(exc))
            else:
                note = f"Registered {model.name}; a node of pool {model.pool} inspects it."
                messages.success(request, note)
                return redirect("registry:list")
        status = 400
    models = selectors.model_list_for_user(user=request.user)
    context = {
        "form": form,
        "refusal": refusal,
        "models": models,
        "pending": any(m.status in (ModelStatus.PENDING, ModelStatus.EXPORTING) for m in models),
    }
    return render_page(request, "registry/model_list.html", context, partials={"models"}, status=status)


@require_POST
def model_inspect_again_view(request: AuthedHttpRequest, model_id: int) -> HttpResponse:
    model = selectors.model_get_for_user(user=request.user, model_id=model_id)
    if services.model_inspect_again(user=request.user, model=model):
        doing = "exports" if model.from_run_id and not model.source else "inspects"
        messages.success(request, f"A node of pool {model.pool} {doing} {model.name} again.")
    else:
        messages.info(request, f"{model.name} is not refused: nothing to inspect again.")
    return redirect("registry:list")


def model_detail(request: AuthedHttpRequest, model_id: int) -> HttpResponse:
    """One model: what the node read, where it came from (the run and step it was exported at) and the
    runs that started from it. Refreshes while a node exports or inspects it."""
    model = selectors.model_get_for_user(user=request.user, model_id=model_id)
    context = {
        "model": model,
        "runs": selectors.model_runs_from(model=model),
        "waiting": model.status in (ModelStatus.EXPORTING, ModelStatus.PENDING),
    }
    return render_page(request, "registry/model_detail.html", context, partials={"model"})


@require_POST
def model_export_view(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    """The run page's "Export" form: a new model from the run's newest checkpoint, written by a node of
    its pool; its page follows the export."""
    run = run_get_for_user(user=request.user, run_id=run_id, at_least=Role.MEMBER)
    form = ModelExportForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Not exported: name: {form.errors['name'][0]}")
        return redirect("runs:detail", run.pk)
    try:
        model = services.model_export(user=request.user, run=run, name=form.cleaned_data["name"])
    except services.ModelRegisterError as exc:
        messages.error(request, f"Not exported: {exc.field}: {exc}")
        return redirect("runs:detail", run.pk)
    messages.success(request, f"Exporting run #{run.pk} as {model.name} on a node of pool {model.pool}.")
    return redirect("registry:detail", model.pk)
