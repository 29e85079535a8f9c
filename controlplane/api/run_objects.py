"""The run object every runs route answers (and the external-runs and generations routes may embed)."""

import datetime as dt
from typing import Any

from django.http import HttpRequest
from django.urls import reverse
from ninja import Schema

from runs.models import Run
from runs.progress import run_progress
from workers.spec import Metric, config_from_stored


class TeamRef(Schema):
    id: int
    name: str


class VersionRef(Schema):
    id: int
    dataset: str
    version: int


class ModelRef(Schema):
    id: int
    name: str


class ProgressOut(Schema):
    done: int  # steps done
    total: int  # the run's `steps`
    percent: int
    elapsed_s: float | None
    eta_s: float | None  # None: not running, or too few steps timed to say


class RunOut(Schema):
    id: int
    name: str
    status: str
    status_message: str
    team: TeamRef
    user: str
    dataset_version: VersionRef
    model: ModelRef | None
    pool: str
    external: bool
    heartbeat_timeout_s: int | None  # an external run's own; None: the server's
    created_at: str
    started_at: str | None
    finished_at: str | None
    step: int | None
    total_steps: int
    cost_usd: float
    gpu_hours: float
    latest: dict[str, float | None]
    config: dict[str, Any]
    tags: list[str]
    note: str  # Markdown, as written
    archived: bool
    archived_at: str | None
    progress: ProgressOut
    url: str


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def run_object(request: HttpRequest, run: Run) -> dict[str, Any]:
    """`run` as the API shows it; a run of selectors.run_list_api (its latest metrics annotated, its
    model and cost joined). JSON-ready as it is: an idempotent launch stores it for its replays."""
    version = run.dataset_version
    cost = getattr(run, "cost", None)  # none until the run's first cost tick
    config = config_from_stored(run.config)
    return {
        "id": run.pk,
        "name": run.name,
        "status": run.status,
        "status_message": run.status_message,
        "team": {"id": run.team_id, "name": run.team.name},
        "user": run.created_by.username,
        "dataset_version": {"id": version.pk, "dataset": version.dataset.name, "version": version.number},
        "model": {"id": run.model.pk, "name": run.model.name} if run.model is not None else None,
        "pool": run.pool,
        "external": run.external,  # bring-your-own-trainer runs (api/external.py)
        "heartbeat_timeout_s": run.heartbeat_timeout_s,
        "created_at": _time(run.created_at),
        "started_at": _time(run.started_at),
        "finished_at": _time(run.finished_at),
        "step": run.last_step,
        "total_steps": config.steps,
        "cost_usd": float(cost.usd) if cost is not None else 0.0,
        "gpu_hours": cost.gpu_hours if cost is not None else 0.0,
        "latest": {
            Metric.REWARD_MEAN: getattr(run, "latest_reward", None),
            Metric.PASS_RATE: getattr(run, "latest_pass_rate", None),
            Metric.KL: getattr(run, "latest_kl", None),
        },
        "config": config.as_dict(),
        "tags": sorted(tag.name for tag in run.tags.all()),
        "note": run.note,
        "archived": run.archived_at is not None,
        "archived_at": _time(run.archived_at),
        "progress": _progress(run),
        "url": request.build_absolute_uri(reverse("runs:detail", args=[run.pk])),
    }


def _progress(run: Run) -> dict[str, Any]:
    progress = run_progress(run=run)
    return {
        "done": progress.done,
        "total": progress.total,
        "percent": progress.percent,
        "elapsed_s": progress.elapsed_s,
        "eta_s": progress.eta_s,
    }
