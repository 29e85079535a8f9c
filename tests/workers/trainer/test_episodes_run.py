"""A real Trainer (world size 1, DeepSpeed on the CPU, the tiny Hugging Face model, in a process of its
own: tests/workers/trainer/episodes_rank.py) on a repository task: an SFT warm-up step on the replayed
reference trajectory, then an RL step whose episodes run in the real sandbox. The plumbing only: the
tiny model resolves nothing (docs/trainer.md, "Repository tasks (multi-turn)")."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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


# A chat template in the shape instruct models ship (tests/workers/trainer/test_prompting.py's).
TEMPLATE = (
    "{% for m in messages %}<|bos|>{{ m['role'] }}\n{{ m['content'] }}<|eos|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|bos|>assistant\n{% endif %}"
)


@pytest.mark.e2e  # a real trainer process, as the other trainer runs (no database)
@pytest.mark.parametrize("chat", [False, True], ids=["base", "chat"])
def test_a_warm_up_step_and_an_rl_step_on_a_repo_task_end_every_episode_with_an_outcome(
    chat: bool, tmp_path: Path
):
    # the tiny HF model with room for the opening (statement and tool documentation) and two turns
    model_dir = build_tiny_hf(tmp_path / "model", max_len=4096, chat_template=TEMPLATE if chat else None)
    task = sample_task()
    control = FakeControl(token="tok").start()
    raw = {
        "run_id": 1,
        "control_url": control.url,
        "model": {"kind": "hf", "path": str(model_dir), "chat": chat},
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
        done = subprocess.run(
            [sys.executable, "-m", "tests.workers.trainer.episodes_rank", str(spec_path), str(free_port())],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        control.stop()
    assert done.returncode == 0, done.stderr[-3000:]

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


def test_the_byte_level_tiny_model_is_refused_repo_tasks_its_context_cannot_hold():
    # The check the Trainer makes at start, on the tiny model's tokenizer and length (a second
    # in-process Trainer cannot join a new process group after the first one's).
    from workers.trainer.loop import Trainer
    from workers.trainer.spec import parse_spec
    from workers.trainer.tokenizer import ByteTokenizer

    task = sample_task()
    raw = {
        "run_id": 1,
        "model": {"kind": "tiny", "max_len": 512},  # 512 bytes: the tool documentation alone is more
        "train": {"steps": 1, "prompts_per_step": 1, "group_size": 2},
        "problems": [repo_spec_problem(task)],
        "snapshots": {task.snapshot_sha256: base64.b64encode(task.snapshot).decode()},
    }
    trainer = Trainer.__new__(Trainer)
    trainer.spec, trainer.tokenizer, trainer.max_len = parse_spec(raw), ByteTokenizer(), 512

    with pytest.raises(
        ValueError, match=r"no repository task's opening leaves room for a turn: .* 512 tokens"
    ):
        trainer._check_openings(list(trainer.spec.problems))
    trainer.max_len = 8192  # a model with the room: accepted
    trainer._check_openings(list(trainer.spec.problems))
