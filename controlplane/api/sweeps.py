"""Sweeps: create (the same document the CLI's YAML file and the page's form make, with the same checks:
runs.sweeps.document and services), list, read, stop. docs/sweeps.md."""

import datetime as dt
from typing import Any

import yaml
from django.http import HttpRequest
from django.urls import reverse
from ninja import Router, Schema, Status
from pydantic import ConfigDict, Field

from controlplane.accounts.models import Role
from controlplane.api.auth import caller
from controlplane.api.errors import ApiError
from controlplane.api.idempotency import idempotent, request_fingerprint
from controlplane.api.paging import PER_PAGE_DEFAULT, Page, paged
from runs.sweeps import selectors, services
from runs.sweeps.document import sweep_document_from
from runs.sweeps.expansion import SweepError
from runs.sweeps.models import Sweep

router = Router(tags=["sweeps"])
YAML_MAX = 60_000


class SweepIn(Schema):
    """Either `yaml` (a sweep file, as `triad sweeps create --file` sends it) or the fields as JSON. Each
    field is checked by the sweeps' own validator, so an error names it (`axes.lr`, `count` ...)."""

    model_config = ConfigDict(extra="forbid")
    yaml: str | None = Field(None, max_length=YAML_MAX)
    name: Any = None
    dataset_version: Any = None
    team: Any = None
    model: Any = None
    pool: Any = None
    method: Any = None
    count: Any = None
    seed: Any = None
    config: Any = None
    axes: Any = None
    halving: Any = None


class SweepRunOut(Schema):
    id: int
    name: str
    index: int
    params: dict[str, Any]
    status: str
    last_step: int | None
    steps: int
    best_pass_rate: float | None
    final_pass_rate: float | None
    halted: str


class RungOut(Schema):
    step: int
    metric: str
    compared: int
    stopped: list[int]


class SweepOut(Schema):
    id: int
    name: str
    status: str
    state: str  # Active, Stopped or Finished (every run ended)
    status_message: str
    method: str
    count: int | None
    seed: int | None
    team: str
    dataset_version: int
    model: int | None
    pool: str
    config: dict[str, Any]
    axes: dict[str, Any]
    halving: dict[str, Any]
    created_at: dt.datetime
    url: str
    runs: list[SweepRunOut]
    best_run: int | None
    rungs: list[RungOut]


def sweep_object(request: HttpRequest, sweep: Sweep) -> dict[str, Any]:
    rows = selectors.sweep_rows(sweep=sweep)
    best = selectors.sweep_best(rows)
    return {
        "id": sweep.pk,
        "name": sweep.name,
        "status": sweep.status,
        "state": selectors.sweep_state_label(sweep=sweep, rows=rows),
        "status_message": sweep.status_message,
        "method": sweep.method,
        "count": sweep.count,
        "seed": sweep.seed,
        "team": sweep.team.name,
        "dataset_version": sweep.dataset_version_id,
        "model": sweep.model_id,
        "pool": sweep.pool,
        "config": sweep.base_config,
        "axes": sweep.axes,
        "halving": sweep.halving,
        "created_at": sweep.created_at,
        "url": request.build_absolute_uri(reverse("sweeps:detail", args=[sweep.pk])),
        "runs": [
            {
                "id": row.run.pk,
                "name": row.run.name,
                "index": row.index,
                "params": row.params,
                "status": row.run.status,
                "last_step": row.run.last_step,
                "steps": row.steps,
                "best_pass_rate": row.best,
                "final_pass_rate": row.final,
                "halted": row.halted,
            }
            for row in rows
        ],
        "best_run": best.run.pk if best else None,
        "rungs": [
            {
                "step": rung.step,
                "metric": rung.metric,
                "compared": rung.compared,
                "stopped": [halt.run_id for halt in rung.halts.all()],
            }
            for rung in sweep.rungs.all()
        ],
    }


@router.get("/sweeps", response=Page[SweepOut], url_name="sweeps-list", summary="List sweeps")
def sweeps_list(request: HttpRequest, page: int = 1, per_page: int = PER_PAGE_DEFAULT) -> dict[str, Any]:
    sweeps = selectors.sweep_list_for_user(user=caller(request))
    return paged(sweeps, page=page, per_page=per_page, to_item=lambda sweep: sweep_object(request, sweep))


@router.get("/sweeps/{sweep_id}", response=SweepOut, url_name="sweep-detail", summary="Read a sweep")
def sweep_detail(request: HttpRequest, sweep_id: int) -> dict[str, Any]:
    return sweep_object(request, selectors.sweep_get_for_user(user=caller(request), sweep_id=sweep_id))


@router.post(
    "/sweeps", response={201: SweepOut}, url_name="sweeps-create", summary="Launch a sweep (Idempotency-Key)"
)
def sweeps_create(request: HttpRequest, payload: SweepIn) -> Status[Any]:
    given = payload.model_dump(exclude_none=True)
    if "yaml" in given:
        if besides := sorted(given.keys() - {"yaml"}):
            raise ApiError(
                400, f"{besides[0]}: give the YAML document or the JSON fields, not both", field=besides[0]
            )
        values = _yaml(given["yaml"])
    else:
        values = given
    try:
        document = sweep_document_from(values)
    except SweepError as exc:
        raise ApiError(400, str(exc), field=exc.field) from None

    def create() -> tuple[int, Any]:
        try:
            result = services.sweep_launch(user=caller(request), document=document)
        except SweepError as exc:
            raise ApiError(400, str(exc), field=exc.field) from None
        if result.not_queued:
            raise ApiError(503, f"sweep #{result.sweep.pk} was recorded but {result.not_queued}")
        return 201, sweep_object(request, result.sweep)

    status, body = idempotent(
        request, operation="sweeps.create", fingerprint=request_fingerprint(request.body), create=create
    )
    return Status(status, body)


def _yaml(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise ApiError(
            400, f"yaml: {where}invalid YAML: {getattr(exc, 'problem', None) or exc}", field="yaml"
        ) from None


@router.post("/sweeps/{sweep_id}/stop", response=SweepOut, url_name="sweep-stop", summary="Stop a sweep")
def sweep_stop(request: HttpRequest, sweep_id: int) -> dict[str, Any]:
    """Mark the sweep stopped and cancel its queued and running runs."""
    sweep = selectors.sweep_get_for_user(user=caller(request), sweep_id=sweep_id, at_least=Role.MEMBER)
    services.sweep_stop(sweep_id=sweep.pk, user=caller(request))
    return sweep_object(request, selectors.sweep_get_for_user(user=caller(request), sweep_id=sweep.pk))
