"""The spec a GPU node trains from: everything it needs, and no database credentials."""

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from datasets_app.selectors import problem_list_for_run
from runs.models import (
    Run,
)


@dataclass(frozen=True)
class RunConfig:
    steps: int = 5
    group_size: int = 4
    prompts_per_step: int = 2
    lr: float = 1e-3
    seed: int = 0
    max_new_tokens: int = 48
    temperature: float = 1.0
    sft_warmup_steps: int = 0  # imitation of the reference solutions before RL
    sft_lr: float = 3e-3
    checkpoint_every: int = 50
    eval_every: int = 0  # held-out pass@k every N steps (0: never)
    eval_problems: int = 0  # problems held out of training for that evaluation
    eval_set: str = "none"  # a built-in benchmark evaluated every eval_every steps too: none | humaneval
    eval_set_problems: int = 20  # its first N problems (0: all 164 of HumanEval)
    eval_samples: int = 8  # completions sampled per evaluated problem (n of pass@k)
    eval_k: int = 4  # eval/pass@<k> (and eval/<set>/pass@<k>) besides pass@1
    # The reward: the weighted sum of these components' scores, each in [0, 1] (docs/trainer.md).
    reward_correctness: float = 1.0
    reward_efficiency: float = 0.0
    reward_style: float = 0.0
    reward_format: float = 0.0
    include_unverified: bool = False  # train on problems that did not verify too
    budget_usd: float = 0  # the run's spend cap in USD (0: no cap); past it, the run is budget_stopped
    gpu_count: int = 0  # GPUs billed (0: one, or the trainer processes on a CPU pool)
    # Stops on learning signals (see docs/spend.md), checked on the accrual tick; never on by default.
    stop_pass_rate_flat_steps: int = 0  # stop once pass_rate stays within the tolerance this long (0: off)
    stop_pass_rate_tolerance: float = 0.01  # "flat": max - min of those steps' pass_rate at most this
    stop_zero_std_steps: int = 0  # stop once frac_reward_zero_std > stop_zero_std_frac this long (0: off)
    stop_zero_std_frac: float = 0.9
    # The execution-outcome critic (docs/trainer.md); skipping the sandbox is opt-in and audited.
    critic: bool = False
    critic_skip: bool = False
    critic_threshold: float = 0.95
    critic_audit_frac: float = 0.1
    critic_max_skip_frac: float = 0.5
    critic_max_audit_error: float = 0.05
    sft_with_reasoning: bool = False  # the warm-up imitates the problem's reasoning trace, then its solution

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# Settings the control plane acts on itself; the trainer never sees them.
CONTROL_ONLY = frozenset(
    {
        "include_unverified",
        "budget_usd",
        "gpu_count",
        "stop_pass_rate_flat_steps",
        "stop_pass_rate_tolerance",
        "stop_zero_std_steps",
        "stop_zero_std_frac",
    }
)


def run_spec(*, run: Run) -> dict[str, Any]:
    """Everything a GPU node needs to train this run; it holds no database credentials."""
    config = RunConfig(**{k: v for k, v in run.config.items() if k in RunConfig.__dataclass_fields__})
    version = run.dataset_version
    problems = [
        {
            "task_id": p.task_id,
            "prompt": p.prompt,
            "entry_point": p.entry_point,
            "solution": p.solution,
            "tests": p.tests,
            "reasoning": p.reasoning,
        }
        for p in problem_list_for_run(version=version, include_unverified=config.include_unverified)
    ]
    return {
        "run_id": run.pk,
        "attempt": run.attempt,  # what the launcher claims (`run_claim`) before it starts anything
        "name": run.name,
        "control_url": settings.TRIAD_CONTROL_URL,
        "dataset": {
            "name": run.dataset_version.dataset.name,
            "version": run.dataset_version.number,
            "content_hash": run.dataset_version.content_hash,
        },
        "model": {"kind": "tiny", "path": None, "d_model": 64, "n_layers": 2, "n_heads": 4, "max_len": 512},
        "train": {
            **{key: value for key, value in config.as_dict().items() if key not in CONTROL_ONLY},
            "beta": 0.0,
            "clip_eps": 0.2,
            "zero_stage": 0,
            "precision": "fp32",
        },
        "resources": {"num_nodes": 1, "procs_per_node": settings.TRIAD_PROCS_PER_NODE, "gpu": False},
        "sandbox": {"timeout_s": 2.0, "memory_mb": 512},
        "problems": problems,
    }
