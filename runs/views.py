import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from controlplane.accounts.models import Role
from controlplane.accounts.selectors import role_allows, role_of
from controlplane.api.streaming import streamed
from controlplane.htmx import partial_name, render_page
from controlplane.http import AuthedHttpRequest
from runs import attempts, chart_layouts, chart_panels, launch, lifecycle, organize_views, progress, selectors
from runs import nodes as nodes_service
from runs import queue as queue_service
from runs.config_schema import PRESETS, preset_values
from runs.forms import MetricQueryForm, RunFilterForm, RunLaunchForm
from runs.log_text import CONTENT_TYPE as LOG_CONTENT_TYPE
from runs.log_text import log_filename, log_text_chunks
from runs.metric_store import metric_wall_times
from runs.node_sample_query import NodeSamplesQueryForm
from runs.node_samples import node_samples_read, run_samples_read

PRESETS_JSON = {name: preset_values(name) for name in PRESETS}


def run_list(request: AuthedHttpRequest) -> HttpResponse:
    form = RunFilterForm(request.GET, user=request.user)
    runs = selectors.run_list_filtered(user=request.user, **form.selector_filters())
    page = Paginator(runs, 50).get_page(request.GET.get("page"))
    progress.run_progress_many(page.object_list)
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "runs": page.object_list, "query": query.urlencode()}
    return render(request, "runs/run_list.html", context)


def run_launch(request: AuthedHttpRequest) -> HttpResponse:
    teams = launch.run_launch_teams(user=request.user)
    initial: dict[str, object] = {}
    if version := request.GET.get("dataset_version"):
        initial["dataset_version"] = version
    if (preset := request.GET.get("preset", "")) in PRESETS:
        initial = {**initial, **preset_values(preset), "preset": preset}
    if (clone := request.GET.get("clone", "")).isdigit():
        source = selectors.run_get_for_user(user=request.user, run_id=int(clone), at_least=Role.MEMBER)
        initial = {
            **source.config,
            "name": f"{source.name} (clone)",
            "dataset_version": source.dataset_version_id,
            "team": source.team_id,
            "model": source.model_id,
            "pool": source.pool,
        }
    if partial_name(request, {"config-yaml"}):  # the YAML, from the fields as they stand
        context = {"form": RunLaunchForm.yaml_from_fields(request.GET)}
        return render_page(request, "runs/run_launch.html", context, partials={"config-yaml"})
    form = RunLaunchForm(request.POST or None, initial=initial, teams=teams)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            result = launch.run_launch(
                user=request.user,
                team=form.cleaned_data.get("team"),
                dataset_version=form.cleaned_data["dataset_version"],
                name=form.cleaned_data["name"],
                config=form.config(),
                model=form.cleaned_data.get("model"),
                pool=form.cleaned_data.get("pool") or "",
            )
        except launch.RunLaunchError as exc:
            form.add_launch_error(exc)  # a broker that is down, too: the run is recorded as failed
            if isinstance(exc, launch.RunNotQueuedError):
                status = 503
        else:
            messages.success(request, f"Run #{result.run.pk} queued.")
            return redirect("runs:detail", run_id=result.run.pk)
    return render(request, "runs/run_launch.html", {"form": form, "presets": PRESETS_JSON}, status=status)


def run_detail(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    run = selectors.run_get_for_user(user=request.user, run_id=run_id)
    context = {
        "run": run,
        "can_operate": role_allows(role_of(user=request.user, team_id=run.team_id), Role.MEMBER),
        "latest": selectors.run_latest_metrics(run_id=run.pk),
        "generations": selectors.run_generations(run_id=run.pk),
        "log_lines": selectors.run_log_tail(run_id=run.pk),
        "chart_groups": selectors.run_chart_groups(run=run),
        "chart_board": chart_panels.run_chart_board(run=run, user=request.user),
        "config_rows": selectors.run_config_rows(run=run),
        "resumable": lifecycle.RESUMABLE,
        "attempts": attempts.attempt_list(run=run),
        "queue_place": queue_service.run_queue_place(run=run),
        "checkpoints": selectors.run_checkpoints(run=run),
        **organize_views.header_context(request, run),  # progress, tags, note (templates/runs/_organize.html)
    }
    return render_page(
        request, "runs/run_detail.html", context, partials={"run-status", "generations", "checkpoints"}
    )


def run_metrics(request: AuthedHttpRequest, run_id: int) -> JsonResponse:
    selectors.run_get_for_user(user=request.user, run_id=run_id)
    form = MetricQueryForm(request.GET)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        return JsonResponse({"error": f"{field}: {errors[0]}", "field": field}, status=400)
    data = form.cleaned_data
    read = selectors.run_metric_read(
        run_id=run_id,
        after_step=data["after_step"],
        until_step=data["until_step"],
        keys=data["keys"],
        max_points=data["max_points"],
    )
    answer: dict[str, object] = {"series": read.series, "truncated": read.truncated}
    if read.keys is not None:
        answer["keys"] = read.keys
    if data["wall"]:
        answer["wall"] = metric_wall_times(run_id=run_id, max_points=data["max_points"] or 2_000)
    return JsonResponse(answer)


def run_metric_keys(request: AuthedHttpRequest, run_id: int) -> JsonResponse:
    """The metric picker's list: every key the run logged, containing ?q= (any case)."""
    run = selectors.run_get_for_user(user=request.user, run_id=run_id)
    keys = selectors.run_metric_key_list(run_id=run.pk, q=request.GET.get("q", "")[:100])
    return JsonResponse({"keys": keys})


def chart_layout(request: AuthedHttpRequest, page: str) -> JsonResponse:
    """GET: the user's saved chart layout of a page ("run", "compare"; {} if none); PUT: replace it."""
    try:
        if request.method == "PUT":
            try:
                body = json.loads(request.body or b"null")
            except ValueError:
                return JsonResponse({"error": "body: not valid JSON", "field": "body"}, status=400)
            layout = chart_layouts.chart_layout_save(user=request.user, page=page, layout=body)
            return JsonResponse({"page": page, "layout": layout, "saved": True})
        if request.method != "GET":
            return JsonResponse({"error": "GET or PUT", "field": None}, status=405)
        saved = chart_layouts.chart_layout_get(user=request.user, page=page)
    except chart_layouts.LayoutError as exc:
        return JsonResponse(
            {"error": str(exc), "field": exc.field}, status=404 if exc.field == "page" else 400
        )
    return JsonResponse({"page": page, "layout": saved or {}, "saved": saved is not None})


@require_POST
def run_resume(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    run = selectors.run_get_for_user(user=request.user, run_id=run_id, at_least=Role.MEMBER)
    try:
        if launch.run_resume(run_id=run.pk, user=request.user) is None:
            messages.info(
                request,
                f"Run #{run.pk} is {run.get_status_display()}: only lost, failed or cancelled runs resume.",
            )
        else:
            messages.success(request, f"Run #{run.pk} queued again; it continues from its last checkpoint.")
    except launch.RunNotQueuedError as exc:  # the broker is down: the run is failed again, saying so
        messages.error(request, str(exc))
    except launch.RunLaunchError as exc:  # this control plane cannot run it as it is set: nothing changed
        messages.error(request, f"Run #{run.pk} not resumed: {exc}")
    return redirect("runs:detail", run_id=run.pk)


@require_POST
def run_cancel(request: AuthedHttpRequest, run_id: int) -> HttpResponse:
    run = selectors.run_get_for_user(user=request.user, run_id=run_id, at_least=Role.MEMBER)
    if not lifecycle.run_cancel(run_id=run.pk, user=request.user):
        messages.info(request, f"Run #{run.pk} is {run.get_status_display()}: nothing to cancel.")
    return redirect("runs:detail", run_id=run.pk)


def run_attempt_spec(request: AuthedHttpRequest, run_id: int, attempt: int) -> JsonResponse:
    """The resolved spec an attempt's node was served, whole (the run page shows a summary)."""
    run = selectors.run_get_for_user(user=request.user, run_id=run_id)
    record = attempts.attempt_get(run=run, attempt=attempt)
    if record is None or record.spec is None:
        raise Http404(f"run #{run.pk} attempt {attempt}: no spec recorded")
    response = JsonResponse(record.spec, json_dumps_params={"indent": 1})
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-attempt-{attempt}-spec.json"'
    return response


@require_POST
def run_rerun(request: AuthedHttpRequest, run_id: int, attempt: int) -> HttpResponse:
    """Re-run exactly: a new run from the attempt's resolved spec (docs/runs.md, "Provenance")."""
    run = selectors.run_get_for_user(user=request.user, run_id=run_id, at_least=Role.MEMBER)
    try:
        result = attempts.run_rerun_exact(user=request.user, run=run, attempt=attempt)
    except launch.RunLaunchError as exc:  # the broker down too: that run is recorded as failed, saying so
        messages.error(request, f"Not re-run: {exc}")
        return redirect("runs:detail", run_id=run.pk)
    messages.success(
        request, f"Run #{result.run.pk} queued: attempt {attempt} of run #{run.pk} again, exactly."
    )
    return redirect("runs:detail", run_id=result.run.pk)


def node_list(request: AuthedHttpRequest) -> HttpResponse:
    return render(request, "runs/node_list.html", {"nodes": nodes_service.node_list(user=request.user)})


def node_detail(request: AuthedHttpRequest, name: str) -> HttpResponse:
    """A node and its system metrics (CPU, memory, GPUs) charted over time (docs/runs.md)."""
    row = nodes_service.node_row_get(user=request.user, name=name)
    return render(request, "runs/node_detail.html", {"row": row, "node": row.node})


def node_samples(request: AuthedHttpRequest, name: str) -> JsonResponse:
    node = nodes_service.node_row_get(user=request.user, name=name).node
    form = NodeSamplesQueryForm(request.GET)
    if not form.is_valid():
        field, error = form.first_error()
        return JsonResponse({"error": error, "field": field}, status=400)
    data = form.cleaned_data
    read = node_samples_read(
        node=node, since=data["since"], until=data["until"], max_points=data["max_points"]
    )
    return JsonResponse(read.as_dict())


def run_system(request: AuthedHttpRequest, run_id: int) -> JsonResponse:
    """The run's nodes' samples from its start to its end: the run page's System card."""
    run = selectors.run_get_for_user(user=request.user, run_id=run_id)
    return JsonResponse({"nodes": [read.as_dict() for read in run_samples_read(run=run)]})


def run_log_download(request: AuthedHttpRequest, run_id: int) -> StreamingHttpResponse:
    """The run's whole log, every line of every source, as a text file (streamed)."""
    run = selectors.run_get_for_user(user=request.user, run_id=run_id)
    chunks = log_text_chunks(run_id=run.pk)
    return streamed(request, chunks, content_type=LOG_CONTENT_TYPE, filename=log_filename(run_id=run.pk))


def queue_list(request: AuthedHttpRequest) -> HttpResponse:
    return render(request, "runs/queue_list.html", {"pools": queue_service.pool_queue_list()})


def queue_pool(request: AuthedHttpRequest, pool: str) -> HttpResponse:
    queue = queue_service.pool_queue(user=request.user, pool=pool)
    return render(request, "runs/queue_pool.html", {"queue": queue})


def dataset_solve_rates(request: AuthedHttpRequest, dataset_id: int) -> HttpResponse:
    """The dataset page's "Solve rates" card (loaded with htmx: datasets_app never imports runs): for each
    version the user's runs trained on, how many problems they solve always, never, learn or forget."""
    from datasets_app.selectors import dataset_get_for_user
    from runs.diversity import ALWAYS, LEARN_GAIN, dataset_solve_rates

    dataset = dataset_get_for_user(user=request.user, dataset_id=dataset_id)
    rows = dataset_solve_rates(user=request.user, dataset=dataset)
    context = {"rows": rows, "always": ALWAYS, "gain": LEARN_GAIN}
    return render(request, "runs/dataset_solve_rates.html", context)
