"""A real Trainer (world size 1, DeepSpeed on the CPU, the tiny Hugging Face model) on a repository task:
an SFT warm-up step on the replayed reference trajectory, then an RL step whose episodes run in the real
sandbox. The plumbing only: the tiny model resolves nothing (docs/trainer.md, "Repository tasks")."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import torch.distributed as dist

from tests.processes import free_port
from tests.workers.repo.sample_repo import sample_task
from tests.workers.trainer.fake_control import FakeControl
from workers.repo.task import RepoTask
from workers.spec import REPO_OUTCOMES
from workers.trainer.tiny_hf import build_tiny_hf


def repo_spec_problem(task: RepoTask) -> dict[str, Any]:
    """The contract's problem item of a repo task (what runs/spec.py writes)."""
    return {
        "task_id": task.task_id,
        "kind": "repo",
        "prompt": task.statement,
        "entry_point": "",
        "tests": "",
        "solution": task.patch,
        "repo": {
            "FAIL_TO_PASS": list(task.fail_to_pass),
            "PASS_TO_PASS": list(task.pass_to_pass),
            "runner": task.runner,
            "test_patch": task.test_patch,
            "repo": task.repo,
            "snapshot_sha256": task.snapshot_sha256,
        },
    }


@pytest.fixture
def single_rank(monkeypatch):
    monkeypatch.setenv("DS_ACCELERATOR", "cpu")
    monkeypatch.delenv("TRIAD_CHECKPOINT_DIR", raising=False)
    for key, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_SIZE": "1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(free_port()))
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


def test_a_warm_up_step_and_an_rl_step_on_a_repo_task_end_every_episode_with_an_outcome(
    single_rank, tmp_path: Path
):
    from workers.trainer.loop import Trainer
    from workers.trainer.spec import parse_spec

    # the tiny HF model with room for the opening (statement and tool documentation) and two turns
    model_dir = build_tiny_hf(tmp_path / "model", max_len=4096)
    task = sample_task()
    control = FakeControl(token="tok").start()
    raw = {
        "run_id": 1,
        "control_url": control.url,
        "model": {"kind": "hf", "path": str(model_dir)},
        "train": {
            "steps": 2,
            "sft_warmup_steps": 1,
            "prompts_per_step": 1,
            "group_size": 2,
            "max_new_tokens": 24,
            "repo_max_turns": 2,
            "repo_max_tokens": 4096,
            "repo_test_timeout_s": 30.0,
            "checkpoint_every": 0,
            "generations_keep": "all",
        },
        "problems": [repo_spec_problem(task)],
        "snapshots": {task.snapshot_sha256: base64.b64encode(task.snapshot).decode()},
    }
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(raw))
    try:
        Trainer(parse_spec(raw), spec_path, "tok").run()
    finally:
        control.stop()

    metrics = {m["step"]: m["values"] for m in control.of_type("metric", "trainer")}
    # the warm-up trained on the reference trajectory's actions (nothing skipped: it fits)
    assert metrics[0]["sft/skipped_rows"] == 0.0 and metrics[0]["loss"] > 0
    rl = metrics[1]
    # every episode ended with an outcome, counted in the shares
    assert sum(rl[f"repo/outcome/{o}"] for o in REPO_OUTCOMES) == pytest.approx(1.0)
    assert rl["repo/resolve_rate"] == rl["pass_rate"]
    assert 0 < rl["repo/turns_mean"] <= 2
    assert rl["repo/episode_s_mean"] > 0
    # and the update trained on the episodes' own tokens (at most 2 turns of 24 each)
    assert rl["throughput/train_tokens_per_s"] > 0
    assert 0 < rl["length/max"] <= 2 * 24
    generations = [g for g in control.of_type("generation", "trainer") if g["step"] == 1]
    assert len(generations) == 2
    for g in generations:
        assert g["problem_id"] == task.task_id
        assert g["repo"]["outcome"] in REPO_OUTCOMES
        assert g["passed"] == (g["repo"]["outcome"] == "resolved")
        assert 1 <= len(g["repo"]["trajectory"]) <= 2
