"""`GET /nodes`: the nodes page as a list. Nodes are shared by every team; another team's runs on a node
only make it busy, unnamed (runs.nodes.node_list)."""

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from controlplane.api.auth import caller
from controlplane.api.paging import PER_PAGE_DEFAULT, Page, paged
from runs.nodes import NodeRow, node_list

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
