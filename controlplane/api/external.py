"""`POST /runs/external`: an external run, whose trainer Triad does not launch (docs/external-runs.md). The
answer holds the run's token, shown once; the trainer sends its events with it through the ingest door
(`POST /api/v1/runs/{id}/events`)."""

from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from ninja import Router, Schema, Status
from pydantic import ConfigDict, Field

from controlplane.accounts.models import Team
from controlplane.api.errors import ApiError
from datasets_app.selectors import dataset_version_get_for_user
from runs.external import run_create_external
from runs.launch import RunLaunchError
from runs.models import Run

router = Router(tags=["runs"])


class ExternalRunIn(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=200)
    dataset_version: int
    team: int | None = None
    pool: str = Field("", max_length=100)
    gpus: int
    heartbeat_timeout_s: int | None = None
    config: dict[str, Any] | None = None


class ExternalRunOut(Schema):
    run: dict[str, Any]
    token: str


def external_run_object(request: HttpRequest, run: Run) -> dict[str, Any]:
    """The contract's run object for a run just created: nothing reported, billed or measured yet. (The
    runs router's serializer, when it lands, is the one to use for a run read later.)"""
    version = run.dataset_version
    return {
        "id": run.pk,
        "name": run.name,
        "status": run.status,
        "team": {"id": run.team_id, "name": run.team.name},
        "user": run.created_by.get_username(),
        "dataset_version": {"id": version.pk, "dataset": version.dataset.name, "version": version.number},
        "model": None,
        "pool": run.pool,
        "external": run.external,
        "heartbeat_timeout_s": run.heartbeat_timeout_s,
        "created_at": run.created_at.isoformat(),
        "started_at": None,
        "finished_at": None,
        "step": run.last_step,
        "total_steps": run.config.get("steps"),
        "cost_usd": 0.0,
        "gpu_hours": 0.0,
        "latest": {},
        "config": run.config,
        "url": request.build_absolute_uri(reverse("runs:detail", args=[run.pk])),
    }


@router.post(
    "/runs/external",
    response={201: ExternalRunOut},
    url_name="runs-create-external",
    summary="Create an external run (bring your own trainer)",
)
def runs_create_external(request: HttpRequest, payload: ExternalRunIn) -> Status[dict[str, Any]]:
    """Checked as a launch is (team role, dataset, settings, budget); never queued to a node. It becomes
    `running` on its trainer's first event, is billed for `gpus` at `pool`'s price while it runs, and is
    `lost` after `heartbeat_timeout_s` of silence (default: the server's). The token is shown once."""
    version = dataset_version_get_for_user(user=request.user, version_id=payload.dataset_version)  # type: ignore[arg-type]
    team = None
    if payload.team is not None:
        team = Team.objects.filter(pk=payload.team).first()
        if team is None:
            raise ApiError(404, f"no team {payload.team}", field="team")
    try:
        result = run_create_external(
            user=request.user,  # type: ignore[arg-type]
            team=team,
            dataset_version=version,
            name=payload.name,
            pool=payload.pool,
            gpus=payload.gpus,
            heartbeat_timeout_s=payload.heartbeat_timeout_s,
            config=payload.config,
        )
    except RunLaunchError as exc:
        raise ApiError(400, str(exc), field=exc.field) from None
    return Status(201, {"run": external_run_object(request, result.run), "token": result.token})
