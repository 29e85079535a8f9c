"""External runs: a run whose trainer Triad does not launch (TRL, verl, a script of one's own;
docs/external-runs.md).

It is checked and recorded as a launch is (the same team role, dataset and budget rules, the same audit
entry), but never queued to a node: it stays `queued` until its trainer's first event reaches the ingest
door with the run's token, which moves it to `running` (runs/ingest.py). From then on it is billed at
its pool's price for the GPUs it declared (runs/spend/services.py, as any started run), reaped as `lost`
when its trainer is silent for its own heartbeat timeout (runs/lifecycle.py), and cancelled the way every
run is: the ingest answers carry `cancelling`, and the trainer stops.
"""

from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from controlplane.accounts.models import AuditAction, Team
from controlplane.accounts.services import audit_record
from datasets_app.models import DatasetVersion
from datasets_app.selectors import dataset_version_readable_by_team
from runs.launch import LaunchResult, RunLaunchError, check_monthly_budget, run_launch_team
from runs.models import LogLine, Node, Run
from runs.spend.models import GpuPrice
from runs.tokens import token_new
from workers.spec import SETTINGS, RunConfig, SettingError, config_from_dict

HEARTBEAT_TIMEOUT_MIN_S = 10
HEARTBEAT_TIMEOUT_MAX_S = 7 * 24 * 3600
# What `gpus` says for an external run; the config may not say it again, differently.
_DECLARED = ("gpus_per_node", "nodes")
_GPUS_HIGH = int(SETTINGS["gpus_per_node"].high or 1024)


def external_config(*, gpus: int, config: dict[str, Any] | None) -> RunConfig:
    """The run's settings as a launch's are checked (unknown keys, types, ranges, rules: SettingError
    naming the key), with the declared GPUs as its GPUs per node on one node: what accrual bills."""
    if isinstance(gpus, bool) or not isinstance(gpus, int) or not 1 <= gpus <= _GPUS_HIGH:
        raise RunLaunchError(f"gpus: must be an integer from 1 to {_GPUS_HIGH}, got {gpus!r}", field="gpus")
    values = dict(config or {})
    for key in _DECLARED:
        if key in values:
            raise RunLaunchError(
                f"config.{key}: an external run declares its GPUs in `gpus` (billed on one pool), not here",
                field=f"config.{key}",
            )
    try:
        return config_from_dict({**values, "gpus_per_node": gpus, "nodes": 1}, config_type=RunConfig)
    except SettingError as exc:
        raise RunLaunchError(f"config.{exc.key}: {exc.message}", field=f"config.{exc.key}") from None


def _check_pool(pool: str) -> str:
    """A pool that bills: one with a price, or one a node announced, or the default. A typo would
    otherwise be billed at the default price without a word (fail closed)."""
    pool = pool.strip()
    if not pool:
        return str(settings.TRIAD_DEFAULT_POOL)
    known = {str(settings.TRIAD_DEFAULT_POOL)}
    known |= set(GpuPrice.objects.values_list("pool", flat=True))
    known |= set(Node.objects.values_list("pool", flat=True).distinct())
    if pool not in known:
        raise RunLaunchError(
            f"pool {pool!r} has no price and no node: the run would be billed at no known price "
            f"(known pools: {', '.join(sorted(known))})",
            field="pool",
        )
    return pool


def _check_timeout(heartbeat_timeout_s: int | None) -> int | None:
    if heartbeat_timeout_s is None:
        return None
    low, high = HEARTBEAT_TIMEOUT_MIN_S, HEARTBEAT_TIMEOUT_MAX_S
    if (
        isinstance(heartbeat_timeout_s, bool)
        or not isinstance(heartbeat_timeout_s, int)
        or not low <= heartbeat_timeout_s <= high
    ):
        raise RunLaunchError(
            f"heartbeat_timeout_s: must be an integer from {low} to {high} seconds, "
            f"got {heartbeat_timeout_s!r}",
            field="heartbeat_timeout_s",
        )
    return heartbeat_timeout_s


def run_create_external(
    *,
    user: User,
    team: Team | None,
    dataset_version: DatasetVersion,
    name: str,
    pool: str,
    gpus: int,
    heartbeat_timeout_s: int | None = None,
    config: dict[str, Any] | None = None,
) -> LaunchResult:
    """Record an external run in the team (default: the user's first team they may launch into) and
    return it with its run token, shown once. Refused, with the field, as a launch is: a team the user
    may not launch into, another team's dataset, a bad setting, past a budget; and for an unknown pool,
    GPUs out of range or a heartbeat timeout out of range. Nothing is stored when refused."""
    team = run_launch_team(user=user, team=team)
    if not dataset_version_readable_by_team(version=dataset_version, team=team):
        raise RunLaunchError(
            f"{dataset_version} is not a dataset of team {team.name} nor a shared one",
            field="dataset_version",
        )
    run_config = external_config(gpus=gpus, config=config)
    timeout = _check_timeout(heartbeat_timeout_s)
    pool = _check_pool(pool)
    check_monthly_budget(user=user, team=team, dataset_version=dataset_version, config=run_config, pool=pool)
    token, hashed = token_new()
    with transaction.atomic():
        run = Run.objects.create(
            name=name.strip() or f"{dataset_version.dataset.name}-v{dataset_version.number}-external",
            created_by=user,
            team=team,
            dataset_version=dataset_version,
            config=run_config.as_dict(),
            pool=pool,
            token_hash=hashed,
            external=True,
            heartbeat_timeout_s=timeout,
        )
        LogLine.objects.create(
            run=run,
            source="control",
            message="external run created: waiting for its trainer's first event",
            time=timezone.now(),
        )
        audit_record(
            actor=user,
            action=AuditAction.RUN_LAUNCH,
            target_type="run",
            target_id=run.pk,
            target=f"run #{run.pk} {run.name}",
            team_id=team.pk,
            after={
                "status": run.status,
                "external": True,
                "dataset_version": dataset_version.pk,
                "pool": pool,
                "gpus": gpus,
                "heartbeat_timeout_s": timeout,
                **run.config,
            },
        )
    return LaunchResult(run=run, token=token)
