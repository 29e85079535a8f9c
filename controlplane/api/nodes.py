"""`GET /nodes`: the nodes page as a list. Nodes are shared by every team; another team's runs on a node
only make it busy, unnamed (runs.nodes.node_list). `GET /nodes/{name}/samples`: its system metrics, as
the node page charts them (runs/node_samples.py)."""

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from controlplane.api.auth import caller
from controlplane.api.errors import ApiError
from controlplane.api.paging import PER_PAGE_DEFAULT, Page, paged
from runs.node_sample_query import NodeSamplesQueryForm
from runs.node_samples import node_samples_read
from runs.nodes import NodeRow, node_list, node_row_get

router = Router(tags=["nodes"])


class NodeOut(Schema):
    id: int
    name: str
    pool: str
    gpus: int
    gpu_type: str
    status: str  # "healthy", or "silent": no heartbeat for three intervals
    last_seen: str
    runs: list[int]  # the active runs on it that the caller may see
    busy_elsewhere: int  # active runs of other teams


def _node(row: NodeRow) -> dict[str, Any]:
    node = row.node
    return {
        "id": node.pk,
        "name": node.name,
        "pool": node.pool,
        "gpus": node.gpu_count,
        "gpu_type": node.gpu_type,
        "status": "healthy" if row.healthy else "silent",
        "last_seen": node.last_heartbeat_at.isoformat(),
        "runs": [run.pk for run in row.runs],
        "busy_elsewhere": row.busy_elsewhere,
    }


@router.get("/nodes", response=Page[NodeOut], url_name="nodes-list", summary="List nodes")
def nodes_list(request: HttpRequest, page: int = 1, per_page: int = PER_PAGE_DEFAULT) -> dict[str, Any]:
    return paged(node_list(user=caller(request)), page=page, per_page=per_page, to_item=_node)


class SamplesOut(Schema):
    node: str
    times: list[float]  # seconds since the epoch, oldest first
    series: dict[str, list[float | None]]  # aligned with times; None where a sample lacked it
    gpu_memory_total_gb: dict[str, float]  # per GPU index
    downsampled: bool


@router.get(
    "/nodes/{path:name}/samples",
    response=SamplesOut,
    url_name="node-samples",
    summary="A node's system metrics (CPU, memory, GPUs)",
)
def node_samples(
    request: HttpRequest, name: str, since: str = "", until: str = "", max_points: int | None = None
) -> dict[str, Any]:
    """The node's samples from `since` to `until` (ISO 8601; default the last 6 hours), at most
    `max_points` (10 to 2000, default 600): over that, each span of time keeps its highest values."""
    node = node_row_get(user=caller(request), name=name).node
    query = {"since": since, "until": until, "max_points": "" if max_points is None else max_points}
    form = NodeSamplesQueryForm({k: v for k, v in query.items() if v != ""})
    if not form.is_valid():
        field, error = form.first_error()
        raise ApiError(400, error, field=field)
    data = form.cleaned_data
    return node_samples_read(
        node=node, since=data["since"], until=data["until"], max_points=data["max_points"]
    ).as_dict()
