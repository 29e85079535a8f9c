"""Runs: list, read, launch (from the launch form's YAML or as JSON), clone, cancel, resume, logs,
metrics and their export.

Launching goes through the launch page's own checks: the settings through config_schema (the YAML's
line and key in each error), the run's fields (name, team, dataset version, model, pool) through
RunLaunchForm with the same choices the page offers the user, then runs.launch.run_launch. So the API
refuses exactly what the page refuses, with the same words, naming the field."""

from typing import Any, Literal

from django.db import transaction
from django.http import HttpRequest, StreamingHttpResponse
from ninja import Router, Schema, Status
from ninja.params import P, QueryEx
from pydantic import ConfigDict, Field

from controlplane.accounts.models import Role
from controlplane.api.auth import caller
from controlplane.api.errors import ApiError
from controlplane.api.idempotency import idempotent, request_fingerprint
from controlplane.api.paging import PER_PAGE_DEFAULT, Page, paged
from controlplane.api.run_objects import RunOut, run_object
from controlplane.api.streaming import streamed
from runs import launch, lifecycle, organize, selectors
from runs.compare import compare_runs_visible
from runs.config_schema import (
    ConfigError,
    ParsedConfig,
    config_from_values,
    config_from_yaml,
    yaml_error_message,
)
from runs.forms import CompareKeysForm, MetricQueryForm, RunFilterForm, RunLaunchForm
from runs.log_text import CONTENT_TYPE as LOG_CONTENT_TYPE
from runs.log_text import log_filename, log_text_chunks
from runs.metric_export import FORMATS, metric_export_chunks, metric_export_many
from runs.metric_store import metric_keys_list
from workers.spec import SETTINGS, RunConfig, SettingError, config_from_stored

router = Router(tags=["runs"])

# What a launch document names besides the settings: the launch form's own fields.
RUN_KEYS = ("name", "dataset_version", "team", "model", "pool")
YAML_MAX = RunLaunchForm.base_fields["config_yaml"].max_length  # type: ignore[attr-defined]
LOG_LIMIT_MAX = 1000


@router.get("/runs", response=Page[RunOut], url_name="runs-list", summary="List runs")
def runs_list(
    request: HttpRequest,
    q: str = "",
    status: str = "",
    dataset: int | None = None,
    tag: str = "",
    model: int | None = None,
    user: str = "",
    archived: Literal["", "only", "all"] = "",
    sort: str = "newest",
    page: int = 1,
    per_page: int = PER_PAGE_DEFAULT,
) -> dict[str, Any]:
    """The runs page's list: search over name and dataset; status, dataset, tag, model and user (who
    launched it) filters; archived runs hidden unless `archived` is `only` or `all`; its sorts (and
    `reward`, `cost`), 50 a page by default."""
    query = {"q": q, "status": status, "dataset": dataset, "tag": tag, "model": model, "user": user}
    form = RunFilterForm({**query, "archived": archived, "sort": sort}, user=caller(request))
    _refuse_invalid(form)
    runs = selectors.run_list_api(user=caller(request), **form.selector_filters())
    return paged(runs, page=page, per_page=per_page, to_item=lambda run: run_object(request, run))


@router.get("/runs/{run_id}", response=RunOut, url_name="run-detail", summary="Read a run")
def run_detail(request: HttpRequest, run_id: int) -> dict[str, Any]:
    return run_object(request, selectors.run_get_api(user=caller(request), run_id=run_id))


class RunPatchIn(Schema):
    """What a member changes about a run (docs/runs.md, "Organizing runs"); what is left out stays."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    note: str | None = None
    tags: list[str] | None = None  # the run's tags become exactly these
    archived: bool | None = Field(None, strict=True)


@router.patch(
    "/runs/{run_id}", response=RunOut, url_name="run-update", summary="Rename, tag, annotate, archive"
)
def run_update(request: HttpRequest, run_id: int, payload: RunPatchIn) -> dict[str, Any]:
    """All of it in one transaction: a refused field changes nothing (400, naming it)."""
    user = caller(request)
    run = selectors.run_get_for_user(user=user, run_id=run_id, at_least=Role.MEMBER)
    try:
        with transaction.atomic():
            if payload.name is not None:
                organize.run_rename(run=run, user=user, name=payload.name)
            if payload.note is not None:
                organize.run_note_set(run=run, note=payload.note)
            if payload.tags is not None:
                organize.run_tags_set(run=run, tags=payload.tags)
            if payload.archived is not None:
                organize.run_archive(run=run, user=user, archived=payload.archived)
    except organize.OrganizeError as exc:
        raise ApiError(400, str(exc), field=exc.field) from None
    return run_object(request, selectors.run_get_api(user=user, run_id=run.pk))


class DeletedOut(Schema):
    deleted: int
    checkpoints: str  # "kept", "deleting" (a node of its pool removes them) or why they were kept


@router.delete("/runs/{run_id}", response=DeletedOut, url_name="run-delete", summary="Delete a run (admins)")
def run_delete(request: HttpRequest, run_id: int, checkpoints: bool = False) -> dict[str, Any]:
    """A run that has ended, with its points, generations and logs; its checkpoints stay on the pool's
    storage unless `checkpoints=true` (then a node of its pool removes them; exported models stay).
    409 while it is active (cancel it first) or while an evaluation of it exists."""
    run = selectors.run_get_for_user(user=caller(request), run_id=run_id, at_least=Role.ADMIN)
    try:
        sent = organize.run_delete(run=run, user=caller(request), checkpoints=checkpoints)
    except organize.OrganizeError as exc:
        raise ApiError(409, str(exc), field=exc.field) from None
    return {
        "deleted": run_id,
        "checkpoints": ("deleting" if sent else "kept: broker unreachable") if checkpoints else "kept",
    }


class LaunchIn(Schema):
    """Either `yaml` (the launch form's YAML, which may also name the run's fields) or the fields and
    `config` as JSON."""

    model_config = ConfigDict(extra="forbid")
    yaml: str | None = Field(None, max_length=YAML_MAX)
    name: str | None = None
    dataset_version: int | None = Field(None, strict=True)  # ids: `true` is not 1
    team: int | None = Field(None, strict=True)
    model: int | None = Field(None, strict=True)
    pool: str | None = None
    config: dict[str, Any] | None = None


@router.post(
    "/runs", response={201: RunOut}, url_name="runs-launch", summary="Launch a run (Idempotency-Key)"
)
def runs_launch(request: HttpRequest, payload: LaunchIn) -> Status[Any]:
    given = payload.model_dump(exclude_none=True)
    if "yaml" in given:
        if besides := sorted(given.keys() - {"yaml"}):
            raise ApiError(
                400, f"{besides[0]}: give the YAML document or the JSON fields, not both", field=besides[0]
            )
        parsed = _parsed_yaml(payload.yaml or "")
        fields, config = parsed.run, parsed.config
    else:
        parsed = None
        fields = {key: value for key, value in given.items() if key in RUN_KEYS}
        config = _config_from_json(payload.config or {})
    status, body = idempotent(
        request,
        operation="runs.launch",
        fingerprint=request_fingerprint(request.body),
        create=lambda: (201, _launch(request, fields=fields, config=config, parsed=parsed)),
    )
    return Status(status, body)


class CloneIn(Schema):
    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    config: dict[str, Any] | None = None  # settings to change; the rest are the source run's


@router.post("/runs/{run_id}/clone", response={201: RunOut}, url_name="run-clone", summary="Clone a run")
def run_clone(request: HttpRequest, run_id: int, payload: CloneIn) -> Status[Any]:
    """A new run with the source's dataset version, team, model, pool and settings (as the page's Clone
    fills the launch form), the settings in `config` changed."""
    source = selectors.run_get_for_user(user=caller(request), run_id=run_id, at_least=Role.MEMBER)
    config = _config_from_json({**config_from_stored(source.config).as_dict(), **(payload.config or {})})
    fields = {
        "name": payload.name if payload.name is not None else f"{source.name} (clone)",
        "dataset_version": source.dataset_version_id,
        "team": source.team_id,
        "model": source.model_id,
        "pool": source.pool,
    }
    status, body = idempotent(
        request,
        operation="runs.clone",
        fingerprint=request_fingerprint(request.path, request.body),
        create=lambda: (201, _launch(request, fields=fields, config=config, parsed=None)),
    )
    return Status(status, body)


@router.post("/runs/{run_id}/cancel", response=RunOut, url_name="run-cancel", summary="Cancel a run")
def run_cancel(request: HttpRequest, run_id: int) -> dict[str, Any]:
    run = selectors.run_get_for_user(user=caller(request), run_id=run_id, at_least=Role.MEMBER)
    if not lifecycle.run_cancel(run_id=run.pk, user=caller(request)):
        raise ApiError(409, f"run #{run.pk} is {run.get_status_display()}: nothing to cancel")
    return run_object(request, selectors.run_get_api(user=caller(request), run_id=run.pk))


@router.post("/runs/{run_id}/resume", response=RunOut, url_name="run-resume", summary="Resume a run")
def run_resume(request: HttpRequest, run_id: int) -> dict[str, Any]:
    """A lost, failed or cancelled run, queued again as a new attempt from its last checkpoint."""
    run = selectors.run_get_for_user(user=caller(request), run_id=run_id, at_least=Role.MEMBER)
    try:
        resumed = launch.run_resume(run_id=run.pk, user=caller(request))
    except launch.RunNotQueuedError as exc:  # the broker is down: the run is failed again, saying so
        raise ApiError(503, str(exc)) from None
    except launch.RunLaunchError as exc:  # this control plane cannot run it as it is set: nothing changed
        raise ApiError(409, f"run #{run.pk} not resumed: {exc}", field=exc.field) from None
    if resumed is None:
        raise ApiError(
            409, f"run #{run.pk} is {run.get_status_display()}: only lost, failed or cancelled runs resume"
        )
    return run_object(request, selectors.run_get_api(user=caller(request), run_id=run.pk))


class LogLineOut(Schema):
    seq: int
    time: str
    level: str
    source: str
    message: str


class LogsOut(Schema):
    items: list[LogLineOut]
    next_after: int


@router.get(
    "/runs/{run_id}/logs",
    response={200: LogsOut},
    url_name="run-logs",
    summary="Read a run's log (format=text: all of it, as a file)",
)
def run_logs(
    request: HttpRequest,
    run_id: int,
    after: int = 0,
    limit: int = 200,
    format: Literal["json", "text"] = "json",
) -> Any:
    """The log lines after line `after`, oldest first; ask again with `after=next_after` to follow.
    `format=text`: the whole log, every source, as plain text streamed (`after` and `limit` unused)."""
    run = selectors.run_get_for_user(user=caller(request), run_id=run_id)
    if format == "text":
        chunks = log_text_chunks(run_id=run.pk)
        return streamed(request, chunks, content_type=LOG_CONTENT_TYPE, filename=log_filename(run_id=run.pk))
    if after < 0:
        raise ApiError(400, "after: must be 0 or more", field="after")
    if not 1 <= limit <= LOG_LIMIT_MAX:
        raise ApiError(400, f"limit: must be 1 to {LOG_LIMIT_MAX}", field="limit")
    lines = selectors.run_log_after(run_id=run.pk, after=after, limit=limit)
    items = [
        {
            "seq": ln.pk,
            "time": ln.time.isoformat(),
            "level": ln.level,
            "source": ln.source,
            "message": ln.message,
        }
        for ln in lines
    ]
    return {"items": items, "next_after": lines[-1].pk if lines else after}


class KeysOut(Schema):
    keys: list[str]


@router.get(
    "/runs/{run_id}/metrics/keys", response=KeysOut, url_name="run-metric-keys", summary="A run's metrics"
)
def run_metric_keys(request: HttpRequest, run_id: int) -> dict[str, Any]:
    run = selectors.run_get_for_user(user=caller(request), run_id=run_id)
    return {"keys": metric_keys_list(run_id=run.pk, limit=selectors.METRICS_KEYS_LISTED)}


class MetricsOut(Schema):
    series: dict[str, list[list[float]]]
    downsampled: bool


@router.get("/runs/{run_id}/metrics", response=MetricsOut, url_name="run-metrics", summary="Read metrics")
def run_metrics(
    request: HttpRequest,
    run_id: int,
    metric_keys: QueryEx[str, P(alias="keys")] = "",  # `keys` itself would shadow the parameters' .keys()
    max_points: int | None = None,
    after_step: int | None = None,
    until_step: int | None = None,
) -> dict[str, Any]:
    """Series as the run page's charts read them: each cut to about `max_points` with every bucket's min
    and max kept (`downsampled` says points or keys were left out)."""
    run = selectors.run_get_for_user(user=caller(request), run_id=run_id)
    query = {
        "keys": metric_keys,
        "max_points": max_points,
        "after_step": after_step,
        "until_step": until_step,
    }
    form = MetricQueryForm({k: v for k, v in query.items() if v is not None})
    _refuse_invalid(form)
    data = form.cleaned_data
    read = selectors.run_metric_read(
        run_id=run.pk,
        after_step=data["after_step"],
        until_step=data["until_step"],
        keys=data["keys"],
        max_points=data["max_points"],
    )
    return {"series": read.series, "downsampled": read.truncated}


@router.get(
    "/runs/compare/export",
    url_name="runs-compare-export",
    summary="Export the metric points of several runs in one file (CSV, JSON lines or JSON, streamed)",
    response={200: None},
)
def runs_compare_export(
    request: HttpRequest,
    runs: str = "",
    format: Literal["csv", "jsonl", "json"] = "csv",
    metric_keys: QueryEx[str, P(alias="keys")] = "",
) -> StreamingHttpResponse:
    """Every point of each run in `runs` (comma-separated ids, up to 100; those you may not see are left
    out), run after run in the order given, each row naming its run: a comparison's export."""
    form = CompareKeysForm({"runs": runs})
    _refuse_invalid(form)
    shown = compare_runs_visible(user=caller(request), run_ids=form.cleaned_data["runs"])
    wanted = [key.strip() for key in metric_keys.split(",") if key.strip()]
    chunks = metric_export_many(run_ids=shown, fmt=format, keys=wanted)
    name = "-".join(map(str, shown[:5])) + ("-and-more" if len(shown) > 5 else "")
    return streamed(
        request, chunks, content_type=FORMATS[format], filename=f"compare-{name}-metrics.{format}"
    )


@router.get(
    "/runs/{run_id}/metrics/export",
    url_name="run-metrics-export",
    summary="Export every metric point (CSV or JSON lines, streamed)",
    response={200: None},
)
def run_metrics_export(
    request: HttpRequest,
    run_id: int,
    format: Literal["csv", "jsonl", "json"] = "csv",
    metric_keys: QueryEx[str, P(alias="keys")] = "",
) -> StreamingHttpResponse:
    """Every point, not downsampled, by key and step: CSV `run,key,step,value,wall_time`, one JSON
    object per line, or (json) those objects in one array; streamed from a server-side cursor, so any
    size is exported in constant memory."""
    run = selectors.run_get_for_user(user=caller(request), run_id=run_id)
    wanted = [key.strip() for key in metric_keys.split(",") if key.strip()]
    chunks = metric_export_chunks(run_id=run.pk, fmt=format, keys=wanted)
    return streamed(request, chunks, content_type=FORMATS[format], filename=f"run-{run.pk}-metrics.{format}")


def _refuse_invalid(form: Any) -> None:
    """A form's first error as the API's 400, naming its field."""
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        raise ApiError(400, f"{field}: {errors[0]}", field=field)


def _parsed_yaml(text: str) -> ParsedConfig:
    try:
        parsed = config_from_yaml(text, run_keys=RUN_KEYS)
    except ConfigError as exc:
        raise ApiError(400, str(exc), field=exc.key or "yaml") from None
    for key, value in parsed.run.items():  # as the JSON's types: text, or an id (`yes` is not 1)
        text_key = key in ("name", "pool")
        if value is not None and (isinstance(value, bool) or not isinstance(value, str if text_key else int)):
            wanted = "text (quote it)" if text_key else "an id"
            message = f"must be {wanted}, got {str(value)[:60]!r}"
            raise ApiError(400, yaml_error_message(parsed, key, message), field=key)
    return parsed


def _config_from_json(values: dict[str, Any]) -> RunConfig:
    try:
        return config_from_values(values)
    except SettingError as exc:
        raise ApiError(400, f"config.{exc.key}: {exc.message}", field=f"config.{exc.key}") from None


def _launch(
    request: HttpRequest, *, fields: dict[str, Any], config: RunConfig, parsed: ParsedConfig | None
) -> dict[str, Any]:
    """The launch page's checks of the run's fields, then run_launch. The run's token is not in the
    answer: a run Triad launches gets it from its start task, on its node."""
    user = caller(request)
    teams = launch.run_launch_teams(user=user)
    data = {key: "" if value is None else value for key, value in fields.items()}
    form = RunLaunchForm(data, teams=teams, config=config)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        raise _launch_refusal(field, str(errors[0]), parsed)
    try:
        result = launch.run_launch(
            user=user,
            team=form.cleaned_data.get("team"),
            dataset_version=form.cleaned_data["dataset_version"],
            name=form.cleaned_data["name"],
            config=form.config(),
            model=form.cleaned_data.get("model"),
            pool=form.cleaned_data.get("pool") or "",
        )
    except launch.RunNotQueuedError as exc:  # recorded as failed, saying why (docs/runs.md, "Broker down")
        raise ApiError(503, str(exc)) from None
    except launch.RunLaunchError as exc:
        raise _launch_refusal(exc.field, str(exc), parsed) from None
    return run_object(request, selectors.run_get_api(user=user, run_id=result.run.pk))


def _launch_refusal(field: str, message: str, parsed: ParsedConfig | None) -> ApiError:
    """Where the refused value was given: the YAML's line, the JSON's `config.<setting>`, or the field."""
    if parsed is not None and field in parsed.lines:
        return ApiError(400, yaml_error_message(parsed, field, message), field=field)
    if field in SETTINGS and field not in RUN_KEYS:
        return ApiError(400, f"config.{field}: {message}", field=f"config.{field}")
    if field == "__all__":
        return ApiError(400, message)
    return ApiError(400, f"{field}: {message}", field=field)
