import datetime as dt

import pytest
from django.utils import timezone

from controlplane import node_agent
from runs.models import Node, RunStatus
from runs.nodes import NodeInfo, node_heartbeat, node_is_healthy, node_register, run_node_assign
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db


def test_a_worker_registers_once_however_often_it_says_so():
    info = NodeInfo(
        name="gpu@h1", hostname="h1", pool="a100", gpu_type="A100", gpu_count=8, usd_per_gpu_hour=1.8
    )

    node_register(info=info)
    node_register(info=info)

    node = Node.objects.get()
    assert (node.pool, node.gpu_type, node.gpu_count, node.usd_per_gpu_hour) == ("a100", "A100", 8, 1.8)


def test_a_late_heartbeat_never_moves_the_time_back():
    node = node_register(info=NodeInfo(name="gpu@h1", hostname="h1", pool="cpu"))
    later = timezone.now() + dt.timedelta(seconds=30)

    assert node_heartbeat(name="gpu@h1", at=later)
    assert not node_heartbeat(name="gpu@h1", at=later - dt.timedelta(seconds=20))

    node.refresh_from_db()
    assert node.last_heartbeat_at == later


def test_a_silent_node_is_not_healthy(settings):
    settings.TRIAD_NODE_HEARTBEAT_S = 10
    node = node_register(info=NodeInfo(name="gpu@h1", hostname="h1", pool="cpu"))

    assert node_is_healthy(node, now=node.last_heartbeat_at + dt.timedelta(seconds=29))
    assert not node_is_healthy(node, now=node.last_heartbeat_at + dt.timedelta(seconds=31))


def test_the_nodes_page_shows_what_runs_where(logged_in):
    node_register(info=NodeInfo(name="gpu@h1", hostname="h1", pool="a100", gpu_type="A100", gpu_count=8))
    run = RunFactory(status=RunStatus.RUNNING, name="on-h1")
    assert run_node_assign(run_id=run.pk, node_name="gpu@h1")

    content = logged_in.get("/runs/nodes/").content.decode()

    assert "8 × A100" in content and "healthy" in content
    assert f"#{run.pk} on-h1" in content


def test_the_empty_nodes_page_says_how_to_add_one(logged_in):
    assert b"No node has registered yet." in logged_in.get("/runs/nodes/").content


def test_the_agent_describes_a_gpu_worker_and_ignores_others(settings):
    settings.TRIAD_NODE_GPU_TYPE, settings.TRIAD_NODE_GPU_COUNT = "H100", 4
    settings.TRIAD_NODE_USD_PER_GPU_HOUR = 2.5
    sent = []

    class App:
        def send_task(self, name, args):
            sent.append((name, args))

    node_agent.start(App(), "w@host", ["control", "sandbox"])
    assert sent == []

    node_agent.start(App(), "gpu@host", ["gpu.h100"])
    ((name, (info,)),) = sent
    assert name == "nodes.register"
    assert (info["name"], info["pool"], info["gpu_type"], info["gpu_count"], info["usd_per_gpu_hour"]) == (
        "gpu@host",
        "h100",
        "H100",
        4,
        2.5,
    )


def test_a_node_that_states_no_price_keeps_the_one_staff_set_when_it_registers_again():
    node = node_register(info=NodeInfo(name="gpu@h1", hostname="h1", pool="a100"))
    Node.objects.filter(pk=node.pk).update(usd_per_gpu_hour=2.75)  # as staff set it on the prices page

    node_register(info=NodeInfo(name="gpu@h1", hostname="h1", pool="a100"))
    assert Node.objects.get(pk=node.pk).usd_per_gpu_hour == 2.75

    node_register(info=NodeInfo(name="gpu@h1", hostname="h1", pool="a100", usd_per_gpu_hour=3.0))
    assert Node.objects.get(pk=node.pk).usd_per_gpu_hour == 3.0  # a price the node states wins
