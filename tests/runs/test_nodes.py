import datetime as dt
import logging
import os
import socket

import pytest
from django.urls import reverse
from django.utils import timezone

from controlplane import node_agent
from runs.models import Node, RunStatus
from runs.nodes import NodeInfo, node_heartbeat, node_is_healthy, node_register, run_node_assign
from runs.spec import run_resources
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


def _path_with_nvidia_smi(tmp_path, monkeypatch, rows: str) -> None:
    """A stand-in for the driver's tool on PATH, printing `rows` as it prints the agent's query."""
    tool = tmp_path / "nvidia-smi"
    tool.write_text(f"#!/bin/sh\nprintf '{rows}'\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")


def test_a_node_without_nvidia_smi_announces_a_cpu_node_with_its_cpus_and_address(settings, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    settings.TRIAD_NODE_ADDRESS = ""

    info = node_agent.node_info("cpu@host", "cpu")

    assert (info["gpu_type"], info["gpu_count"], info["gpu_memory_gb"], info["compute_capability"]) == (
        "cpu",
        0,
        None,
        "",
    )
    assert info["cpu_count"] == len(os.sched_getaffinity(0))
    assert info["address"] == socket.gethostbyname(socket.gethostname())


def test_a_gpu_node_reads_its_gpus_memory_and_capability_from_nvidia_smi(tmp_path, monkeypatch):
    _path_with_nvidia_smi(tmp_path, monkeypatch, "NVIDIA H200, 143771, 9.0\\nNVIDIA H200, 143771, 9.0\\n")

    info = node_agent.node_info("gpu@host", "h200")

    assert (info["gpu_type"], info["gpu_count"], info["gpu_memory_gb"], info["compute_capability"]) == (
        "NVIDIA H200",
        2,
        140.4,
        "9.0",
    )


def test_the_node_settings_override_what_nvidia_smi_says(settings, tmp_path, monkeypatch):
    _path_with_nvidia_smi(tmp_path, monkeypatch, "NVIDIA H200, 143771, 9.0\\n")
    settings.TRIAD_NODE_GPU_COUNT, settings.TRIAD_NODE_GPU_MEMORY_GB = 4, 80.0
    settings.TRIAD_NODE_COMPUTE_CAPABILITY, settings.TRIAD_NODE_ADDRESS = "8.0", "10.0.0.17"

    info = node_agent.node_info("gpu@host", "a100")

    assert (info["gpu_type"], info["gpu_count"], info["gpu_memory_gb"], info["compute_capability"]) == (
        "NVIDIA H200",  # not overridden: nvidia-smi's
        4,
        80.0,
        "8.0",
    )
    assert info["address"] == "10.0.0.17"


def test_a_registered_node_keeps_what_it_announced_and_the_pages_show_it(logged_in, admin_client):
    node_register(
        info=NodeInfo.from_dict(
            {
                "name": "gpu@h1",
                "hostname": "h1",
                "pool": "h200",
                "gpu_type": "H200",
                "gpu_count": 8,
                "address": "10.0.0.17",
                "gpu_memory_gb": 140.4,
                "compute_capability": "9.0",
                "cpu_count": 96,
                "a_field_of_a_newer_agent": 1,
            }
        )
    )

    node = Node.objects.get()
    assert (node.address, node.gpu_memory_gb, node.compute_capability, node.cpu_count) == (
        "10.0.0.17",
        140.4,
        "9.0",
        96,
    )
    for page in (logged_in.get("/runs/nodes/"), admin_client.get(reverse("spend:prices"))):
        content = page.content.decode()
        assert "8 × H200 140.4 GB" in content and "cc 9.0" in content
        assert "96 CPUs" in content and "10.0.0.17" in content


@pytest.mark.parametrize(
    ("field", "garbage"),
    [("gpu_memory_gb", -80.0), ("gpu_memory_gb", "80GB"), ("compute_capability", "sm_90"), ("cpu_count", 0)],
)
def test_a_node_that_announces_garbage_keeps_what_it_had_with_a_warning(field, garbage, caplog):
    good = {"gpu_memory_gb": 80.0, "compute_capability": "8.0", "cpu_count": 32}
    node_register(info=NodeInfo(name="gpu@h1", hostname="h1", pool="a100", gpu_count=8, **good))

    with caplog.at_level(logging.WARNING, logger="runs.nodes"):
        node_register(
            info=NodeInfo(name="gpu@h1", hostname="h1", pool="a100", gpu_count=8, **{**good, field: garbage})
        )

    node = Node.objects.get()
    assert getattr(node, field) == good[field]
    assert "ignored" in caplog.text and repr(garbage) in caplog.text


def test_the_spec_asks_for_the_runs_gpus_per_node_and_gpus_where_the_pool_has_them(settings):
    settings.TRIAD_PROCS_PER_NODE = 7  # a node's setting: the web no longer puts it in the spec
    node_register(info=NodeInfo(name="gpu@h1", hostname="h1", pool="h200", gpu_type="H200", gpu_count=8))
    node_register(info=NodeInfo(name="cpu@h2", hostname="h2", pool="cpu"))

    on_gpus = run_resources(run=RunFactory(pool="h200", config={"steps": 2, "gpus_per_node": 4}))
    left_to_the_node = run_resources(run=RunFactory(pool="h200", config={"steps": 2}))
    on_cpus = run_resources(run=RunFactory(pool="cpu", config={"steps": 2}))
    no_node_yet = run_resources(run=RunFactory(pool="a100", config={"steps": 2, "gpus_per_node": 2}))

    assert on_gpus == {"num_nodes": 1, "procs_per_node": 4, "gpu": True}
    assert left_to_the_node == {"num_nodes": 1, "procs_per_node": 0, "gpu": True}
    assert on_cpus == {"num_nodes": 1, "procs_per_node": 0, "gpu": False}
    assert no_node_yet == {"num_nodes": 1, "procs_per_node": 2, "gpu": False}


def test_a_sandbox_worker_that_stopped_consuming_is_in_the_audit_log_and_the_log(caplog):
    from controlplane.accounts.models import AuditAction, AuditEntry
    from runs.tasks import sandbox_worker_stopped_task

    with caplog.at_level(logging.ERROR, logger="runs.nodes"):
        sandbox_worker_stopped_task(
            name="sandbox@h3", queue="sandbox", batches=2, reason="sandbox unavailable on this node: no bwrap"
        )

    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor, entry.target_type, entry.target) == (
        AuditAction.SANDBOX_STOP,
        None,
        "sandbox_worker",
        "sandbox worker sandbox@h3",
    )
    assert entry.after == {
        "queue": "sandbox",
        "batches_in_a_row": 2,
        "reason": "sandbox unavailable on this node: no bwrap",
    }
    assert "sandbox worker sandbox@h3 stopped consuming sandbox" in caplog.text
