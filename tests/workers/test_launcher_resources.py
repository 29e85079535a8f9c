"""The node decides what "0 GPUs per node" means, and refuses a run it cannot fit (docs/runs.md, "Nodes")."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from runs.lifecycle import run_cancel
from runs.models import Run, RunAttempt, RunStatus
from runs.nodes import NodeInfo, node_register
from tests.factories import TEST_TOKEN, RunFactory
from tests.workers.stand_in import Launch, kill_groups, stand_in_deepspeed, supervise_args, wait_until
from tests.workers.trainer.fake_control import FakeControl
from workers.launcher import (
    ResourceError,
    cpu_procs_from_env,
    deepspeed_command,
    node_gpu_count,
    resolve_resources,
    run_supervised,
)


def _resolve(procs: int, *, gpu: bool, node_gpus: int = 0, cpu_procs: int = 3) -> dict[str, object]:
    asked = {"num_nodes": 1, "procs_per_node": procs, "gpu": gpu}
    return resolve_resources(asked, cpu_procs=cpu_procs, gpu_count=lambda: node_gpus)


def test_zero_on_a_cpu_run_is_the_nodes_trainer_processes_and_a_count_is_kept():
    assert _resolve(0, gpu=False) == {"num_nodes": 1, "procs_per_node": 3, "gpu": False}
    assert _resolve(2, gpu=False)["procs_per_node"] == 2


def test_zero_on_a_gpu_run_is_every_gpu_of_the_node():
    assert _resolve(0, gpu=True, node_gpus=8) == {"num_nodes": 1, "procs_per_node": 8, "gpu": True}
    assert _resolve(4, gpu=True, node_gpus=8)["procs_per_node"] == 4


def test_a_gpu_run_that_asks_for_more_gpus_than_the_node_has_is_refused_naming_both():
    with pytest.raises(ResourceError, match=r"asks for 4 GPUs per node; this node \(.+\) has 2"):
        _resolve(4, gpu=True, node_gpus=2)
    with pytest.raises(ResourceError, match=r"trains on GPUs, and this node .* has none"):
        _resolve(0, gpu=True, node_gpus=0)


def test_a_spec_with_a_count_that_is_not_one_is_refused():
    for bad in (-1, "2", True, 1.5):
        with pytest.raises(ResourceError, match=r"resources\.procs_per_node"):
            resolve_resources({"procs_per_node": bad}, cpu_procs=1, gpu_count=lambda: 0)


@pytest.mark.parametrize(("visible", "count"), [("0,1", 2), ("3", 1), ("", 0), ("-1", 0), ("0,-1,2", 1)])
def test_the_node_counts_the_gpus_cuda_visible_devices_shows(monkeypatch, visible, count):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    assert node_gpu_count() == count


def test_without_cuda_visible_devices_the_node_counts_the_gpus_nvidia_smi_lists(monkeypatch, tmp_path: Path):
    tool = tmp_path / "nvidia-smi"  # a stand-in printing what `nvidia-smi --list-gpus` prints with MIG on
    tool.write_text(
        "#!/bin/sh\nprintf 'GPU 0: NVIDIA H200 (UUID: GPU-a)\\n  MIG 3g.71gb Device 0: (UUID: MIG-b)\\n"
        "GPU 1: NVIDIA H200 (UUID: GPU-c)\\n'\n"
    )
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    assert node_gpu_count() == 2


def test_a_malformed_procs_per_node_on_the_node_is_refused_naming_it(monkeypatch):
    monkeypatch.setenv("TRIAD_PROCS_PER_NODE", "two")
    with pytest.raises(ResourceError, match="TRIAD_PROCS_PER_NODE"):
        cpu_procs_from_env()
    monkeypatch.delenv("TRIAD_PROCS_PER_NODE")
    assert cpu_procs_from_env() == 1


def test_a_gpu_run_starts_on_the_visible_gpus_deepspeed_would_otherwise_ignore(tmp_path: Path):
    gpu = {"resources": {"num_nodes": 1, "procs_per_node": 2, "gpu": True}}
    cpu = {"resources": {"num_nodes": 1, "procs_per_node": 2, "gpu": False}}

    def where(spec: dict[str, object], visible: str | None) -> list[str]:
        cmd = deepspeed_command(spec, tmp_path / "s", deepspeed_bin="ds", port=1, visible_devices=visible)
        return cmd[1 : cmd.index("--master_addr")]

    assert where(gpu, "4,5,6") == ["--include", "localhost:4,5"]
    assert where(gpu, None) == ["--num_nodes", "1", "--num_gpus", "2"]
    assert where(cpu, "4,5,6") == ["--num_nodes", "1", "--num_gpus", "2"]


@pytest.fixture
def control():
    fake = FakeControl(token="tok").start()
    fake.spec = {"run_id": 5, "attempt": 1, "control_url": fake.url, "resources": {"procs_per_node": 0}}
    fake.desired_state = lambda _c: "cancelling"  # stops right after the claim: no trainer is started
    yield fake
    fake.stop()


def test_the_resolved_resources_go_with_the_claim_and_into_spec_json(control, tmp_path: Path):
    final = run_supervised(
        run_id=5, token="tok", control_url=control.url, workdir=tmp_path, heartbeat_s=0.2, cpu_procs=3
    )

    assert final == "cancelled"
    resolved = {"num_nodes": 1, "procs_per_node": 3, "gpu": False}
    [body] = control.claim_bodies
    assert body["provenance"]["resources"] == resolved
    assert json.loads((tmp_path / "spec.json").read_text())["resources"] == resolved


@pytest.mark.django_db(transaction=True)
def test_a_run_asking_for_more_gpus_than_the_node_has_fails_and_starts_nothing(
    live_server, tmp_path: Path, monkeypatch
):
    node_register(info=NodeInfo(name="gpu@h1", hostname="h1", pool="h200", gpu_type="H200", gpu_count=8))
    run = RunFactory(pool="h200", config={"steps": 2, "gpus_per_node": 2})
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # this node may use one of them
    stand_in = stand_in_deepspeed(tmp_path)
    try:
        final = run_supervised(
            **supervise_args(
                stand_in, run_id=run.pk, token=TEST_TOKEN, control_url=live_server.url, workdir=tmp_path / "r"
            )
        )

        assert final == "failed"
        assert stand_in.starts() == []
        run.refresh_from_db()
        assert run.status == RunStatus.FAILED
        assert f"asks for 2 GPUs per node; this node ({socket.gethostname()}) has 1" in run.status_message
    finally:
        kill_groups(stand_in.starts())


@pytest.mark.django_db(transaction=True)
def test_the_ranks_a_node_resolved_are_recorded_and_shown_on_the_run_page(
    live_server, tmp_path: Path, admin_client
):
    run = RunFactory(config={"steps": 2, "gpus_per_node": 0})  # the CPU pool, no node with GPUs
    stand_in = stand_in_deepspeed(tmp_path)
    launch = Launch(
        **supervise_args(
            stand_in,
            run_id=run.pk,
            token=TEST_TOKEN,
            control_url=live_server.url,
            workdir=tmp_path / "r",
            cpu_procs=3,
        )
    )
    try:
        wait_until(stand_in.starts, 60, "the launcher to start its trainer")

        record = RunAttempt.objects.get(run=run, attempt=1)
        assert record.provenance["resources"] == {"num_nodes": 1, "procs_per_node": 3, "gpu": False}
        page = admin_client.get(f"/runs/{run.pk}/").content.decode()
        assert f"3 CPU ranks on {socket.gethostname()}" in page

        assert run_cancel(run_id=run.pk)
        assert launch.wait(60) and launch.result == "cancelled", launch.error
        assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED
    finally:
        kill_groups(stand_in.starts())
