"""The update of one big batch equals the accumulated update of its micro-batches, on 1 and 2 ranks.

Real Trainers (DeepSpeed, gloo, the tiny model) take one step's update on the same fixed rows: 3 groups
of completions of uneven lengths, which 2 ranks share 2 + 1. Each optimizer step's all-reduced gradient
must be the same whether one rank computes the whole mini-batch at once or two ranks accumulate it one
completion at a time. Before the loss was normalised over the global mini-batch, the rank holding a lone
group counted it double, and that failed here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.processes import free_port
from tests.workers.trainer.fake_control import FakeControl
from workers.trainer.batches import micro_batches_per_step
from workers.trainer.spec import parse_spec

ROOT = Path(__file__).resolve().parents[3]

# Real torch.distributed process groups: e2e, and run_once (make test runs them in one of its runs).
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def control():
    fake = FakeControl(token="tok").start()
    yield fake
    fake.stop()


def _grads(tmp: Path, control: FakeControl, *, world: int, **train: Any) -> list[torch.Tensor]:
    raw = {
        "run_id": 1,
        "control_url": control.url,
        "model": {"kind": "tiny", "d_model": 16, "n_layers": 1, "n_heads": 2, "max_len": 64},
        "train": {"steps": 2, "prompts_per_step": 3, "group_size": 2, "seed": 3, "kl_monitor_every": 0}
        | train,
        "resources": {"num_nodes": 1, "procs_per_node": world},
        "problems": [{"task_id": "t", "prompt": "def f():\n", "entry_point": "f", "tests": "pass"}],
    }
    name = "-".join(f"{k}{v}" for k, v in sorted(train.items())) + f"-w{world}"
    spec, out = tmp / f"{name}.json", tmp / f"{name}.pt"
    spec.write_text(json.dumps(raw))
    port = free_port()
    jobs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.workers.trainer.update_rank",
                json.dumps({"spec": str(spec), "rank": rank, "world": world, "port": port, "out": str(out)}),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(world)
    ]
    for job in jobs:
        output, _ = job.communicate(timeout=300)
        assert job.returncode == 0, output[-3000:]
    saved = torch.load(out)
    assert saved["n_micro"] == micro_batches_per_step(parse_spec(raw).train, world)
    grads: list[torch.Tensor] = saved["grads"]
    return grads


@pytest.mark.parametrize("loss_agg", ["token_mean", "seq_mean", "constant"])
def test_two_ranks_accumulating_single_completions_apply_the_gradient_of_one_big_batch(
    control, tmp_path: Path, loss_agg: str
):
    whole = _grads(tmp_path, control, world=1, loss_agg=loss_agg, mini_batches=2)
    split = _grads(tmp_path, control, world=2, loss_agg=loss_agg, mini_batches=2, micro_batch_size=1)

    assert len(whole) == len(split) == 2  # two mini-batches, one optimizer step each
    for big, accumulated in zip(whole, split, strict=True):
        assert big.abs().max() > 0
        torch.testing.assert_close(accumulated, big, rtol=1e-4, atol=1e-6)


def test_one_rank_accumulating_micro_batches_applies_the_gradient_of_the_whole_batch(control, tmp_path: Path):
    whole = _grads(tmp_path, control, world=1, clip_eps_high=0.3)
    split = _grads(tmp_path, control, world=1, clip_eps_high=0.3, micro_batch_size=4)

    assert len(whole) == len(split) == 1
    torch.testing.assert_close(split[0], whole[0], rtol=1e-4, atol=1e-6)
