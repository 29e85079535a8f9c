"""Nodes: GPU workers register when they start, saying what they have, and heartbeat while they live.

The node side (a Celery worker on a `gpu.<pool>` queue) holds no database credentials: it describes
itself in Celery messages to the control queue, and the control worker records them here.
"""

import datetime as dt
import logging
import math
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Prefetch, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone

from controlplane.accounts.models import AuditAction, AuditEntry
from controlplane.accounts.selectors import team_ids_for
from controlplane.accounts.services import audit_record
from runs.models import ACTIVE_STATUSES, Node, NodeSample, Run, RunClaim
from runs.node_samples import node_latest_samples

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeInfo:
    name: str
    hostname: str
    pool: str
    gpu_type: str = "cpu"
    gpu_count: int = 0
    usd_per_gpu_hour: float | None = None
    address: str = ""  # where the pool's other nodes reach it
    gpu_memory_gb: float | None = None  # per GPU
    compute_capability: str = ""  # "8.0"; "" on a CPU node
    cpu_count: int | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "NodeInfo":
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_capability(value: object) -> bool:
    major, dot, minor = value.partition(".") if isinstance(value, str) else ("", "", "")
    return bool(dot) and major.isdigit() and minor.isdigit()


def _resources(info: NodeInfo) -> dict[str, Any]:
    """What the node says it has, as fields to store. A value that cannot be true (negative memory, a
    capability that is not "N.N") is left out with a warning, like a bad price: launches are checked
    against these, and a wrong figure is worse than none."""
    fields: dict[str, Any] = {"address": str(info.address or "")[:200]}
    memory, capability, cpus = info.gpu_memory_gb, info.compute_capability, info.cpu_count
    if memory is None or (_is_number(memory) and memory >= 0):
        fields["gpu_memory_gb"] = memory
    else:
        logger.warning("node %s states %r GB of memory per GPU; ignored (a size is ≥ 0)", info.name, memory)
    if capability == "" or _is_capability(capability):
        fields["compute_capability"] = capability
    else:
        logger.warning(
            "node %s states a compute capability of %r; ignored (expected N.N, e.g. 8.0)",
            info.name,
            capability,
        )
    if cpus is None or (isinstance(cpus, int) and not isinstance(cpus, bool) and cpus > 0):
        fields["cpu_count"] = cpus
    else:
        logger.warning("node %s states %r CPUs; ignored (a count is ≥ 1)", info.name, cpus)
    return fields


def node_register(*, info: NodeInfo) -> Node:
    """Record a node that started, with what it has (address, GPU memory and compute capability, CPUs).
    Its price per GPU-hour (TRIAD_NODE_USD_PER_GPU_HOUR on the node) overrides its pool's; a node that
    states none keeps the one an admin set, so a restart loses nothing."""
    now = timezone.now()
    defaults: dict[str, Any] = {
        "hostname": info.hostname,
        "pool": info.pool,
        "gpu_type": info.gpu_type,
        "gpu_count": info.gpu_count,
        **_resources(info),
        "registered_at": now,
        "last_heartbeat_at": now,
    }
    price = info.usd_per_gpu_hour
    if price is not None and not (math.isfinite(price) and price >= 0):
        # A negative price would make every team's spend go down: refused, the one set here is kept.
        logger.warning(
            "node %s states a price of %r per GPU-hour; ignored (a price is ≥ 0)", info.name, price
        )
    elif price is not None:
        defaults["usd_per_gpu_hour"] = price
    node, _ = Node.objects.update_or_create(name=info.name, defaults=defaults)
    return node


def node_heartbeat(*, name: str, at: dt.datetime | None = None) -> bool:
    """Record that the node is alive; a heartbeat that arrives late never moves the time back."""
    when = at or timezone.now()
    return bool(Node.objects.filter(name=name, last_heartbeat_at__lt=when).update(last_heartbeat_at=when))


def sandbox_worker_stopped(*, name: str, queue: str, batches: int, reason: str) -> AuditEntry:
    """Record that sandbox worker `name` stopped consuming `queue` after `batches` whole batches of
    sandbox_error in a row: an error line in the control worker's log and an entry of the audit log
    (site admins read it), where operators look for it. The worker stays out of the fleet until it is
    restarted (docs/sandbox.md, "The sandbox fleet")."""
    logger.error(
        "sandbox worker %s stopped consuming %s after %d batches of sandbox_error in a row: %s",
        name,
        queue,
        batches,
        reason,
    )
    return audit_record(
        actor=None,
        action=AuditAction.SANDBOX_STOP,
        target_type="sandbox_worker",
        target_id=name[:64],
        target=f"sandbox worker {name}",
        after={"queue": queue, "batches_in_a_row": batches, "reason": reason[:1000]},
    )


def run_node_assign(*, run_id: int, node_name: str) -> bool:
    """The node that claimed the run holds it (its page, spend). A gang's every member says so: the run's
    node stays its node rank 0's (the run page lists all of them, from its claims)."""
    node = Node.objects.filter(name=node_name).first()
    if node is None:
        return False
    attempt = Subquery(Run.objects.filter(pk=run_id).values("attempt"))
    current = RunClaim.objects.filter(run_id=run_id, attempt=attempt)
    if (
        current.filter(node_rank=1).exists()
        and not current.filter(node_rank=0, node__in=(node.name, node.hostname)).exists()
    ):
        return False
    return bool(Run.objects.filter(pk=run_id).update(node=node))


def node_is_healthy(node: Node, *, now: dt.datetime | None = None) -> bool:
    silence = ((now or timezone.now()) - node.last_heartbeat_at).total_seconds()
    return silence <= 3 * settings.TRIAD_NODE_HEARTBEAT_S


@dataclass(frozen=True)
class NodeRow:
    node: Node
    healthy: bool
    runs: list[Run]  # the active runs on it that the user may see
    busy_elsewhere: int  # active runs of other teams: the node is busy, but they are not named
    sample: NodeSample | None = None  # its newest system metrics (runs/node_samples.py)


def _node_row(node: Node, team_ids: list[int] | None) -> NodeRow:
    active: list[Run] = node.active_runs  # type: ignore[attr-defined]  # prefetched (to_attr)
    mine = [run for run in active if team_ids is None or run.team_id in team_ids]
    return NodeRow(node, node_is_healthy(node), mine, len(active) - len(mine))


def _nodes_with_active_runs() -> QuerySet[Node]:
    active = Run.objects.filter(status__in=ACTIVE_STATUSES).only("pk", "name", "team_id", "node_id")
    return Node.objects.prefetch_related(
        Prefetch("runs", queryset=active.order_by("-pk"), to_attr="active_runs")
    )


def node_row_get(*, user: User, name: str) -> NodeRow:
    """One node of the nodes page, by its name (404 if none): nodes are shared by every team."""
    node = _nodes_with_active_runs().filter(name=name).first()
    if node is None:
        raise Http404(f"no node {name!r}")
    return _node_row(node, team_ids_for(user=user))


def node_list(*, user: User) -> list[NodeRow]:
    """Every node (nodes are shared by all teams) with what runs on it. Another team's run does not exist
    for the user (docs/teams.md): it only makes the node show as busy, without its id or name."""
    team_ids = team_ids_for(user=user)  # None: every team (a superuser)
    rows = [_node_row(node, team_ids) for node in _nodes_with_active_runs()]
    latest = node_latest_samples(node_ids=[row.node.pk for row in rows])
    return [replace(row, sample=latest.get(row.node.pk)) for row in rows]
