"""What a node says it runs with (workers/provenance.py), and the launcher sending it in its claim."""

import os
import platform
import re
import socket
import subprocess
from pathlib import Path

import pytest
import torch

from tests.workers.trainer.fake_control import FakeControl
from workers.launcher import run_supervised
from workers.provenance import PACKAGE_DIR, code_commit, gpus, provenance

REPO = Path(__file__).resolve().parents[2]


def _head() -> str:
    done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip()


def test_provenance_names_this_checkouts_commit_and_the_installed_versions():
    before = _head()
    found = provenance()

    # Others may commit meanwhile: the commit is HEAD as it was at one of the two moments.
    assert re.fullmatch(r"[0-9a-f]{40}", found["commit"]) and found["commit"] in {before, _head()}
    assert found["triad"] == found["commit"]
    assert found["versions"]["torch"] == torch.__version__
    assert set(found["versions"]) == {
        "triad",
        "torch",
        "deepspeed",
        "transformers",
        "vllm",
        "peft",
        "tokenizers",
    }
    assert (found["hostname"], found["python"]) == (socket.gethostname(), platform.python_version())
    assert found["cpu_count"] == os.cpu_count()
    assert isinstance(found["gpus"], list) and all(gpu["name"] for gpu in found["gpus"])


def test_outside_a_checkout_there_is_no_commit(tmp_path: Path):
    assert code_commit(tmp_path) is None
    assert code_commit(PACKAGE_DIR) is not None


def test_gpus_are_read_from_nvidia_smi_where_there_is_one(tmp_path: Path, monkeypatch):
    # A stand-in for the driver's tool, printing what it prints for --format=csv,noheader on an H200 node.
    tool = tmp_path / "nvidia-smi"
    tool.write_text("#!/bin/sh\nprintf 'NVIDIA H200, 143771 MiB\\nNVIDIA H200, 143771 MiB\\n'\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    assert gpus() == [{"name": "NVIDIA H200", "memory": "143771 MiB"}] * 2
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert gpus() == []


def _spec(url: str) -> dict:
    return {"run_id": 5, "attempt": 1, "control_url": url, "resources": {"procs_per_node": 1}}


@pytest.fixture
def control():
    fake = FakeControl(token="tok").start()
    fake.spec = _spec(fake.url)
    # Cancelled right after the claim: the launcher stops before it starts a trainer.
    fake.desired_state = lambda _c: "cancelling"
    yield fake
    fake.stop()


def test_the_launcher_sends_its_provenance_with_the_claim(control, tmp_path: Path):
    final = run_supervised(run_id=5, token="tok", control_url=control.url, workdir=tmp_path, heartbeat_s=0.2)

    assert final == "cancelled"
    [body] = control.claim_bodies
    assert body["provenance"]["versions"]["torch"] == torch.__version__
    assert body["provenance"]["hostname"] == socket.gethostname()


def test_a_refused_provenance_does_not_stop_the_claim(control, tmp_path: Path):
    control.reject_provenance = lambda _p: "nested deeper than 8 levels"

    final = run_supervised(run_id=5, token="tok", control_url=control.url, workdir=tmp_path, heartbeat_s=0.2)

    assert final == "cancelled"
    assert ["provenance" in body for body in control.claim_bodies] == [True, False]
    assert list(control.claims) == [1]
