"""The run's settings, each defined once: type, default, range, unit, help and which side acts on it.

`TrainConfig` is what the trainer receives (the spec's "train" section); `ControlConfig` is what the
control plane acts on itself (spend, stop rules) and never sends; `RunConfig` is both, flat, as a user
writes it and as `Run.config` stores it. The launch form, the YAML schema, the run page's config table,
the estimate, the spec the launcher writes and the trainer's parser all read `SETTINGS` and the one
validator below, so a setting added here is wired everywhere (tests/runs/test_run_spec_roundtrip.py
launches a run with every setting changed and checks what the trainer parses).

Standard library only: the GPU side imports this, and so does the Django side.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

NODE = "node"  # the trainer receives it in the spec
CONTROL = "control"  # the control plane acts on it; the trainer never sees it

EVAL_SETS: dict[str, int] = {"humaneval": 164}  # built-in benchmarks: name -> problems in it

# --------------------------------------------------------------------------- names both sides use


class RunState(StrEnum):
    """A run's states (runs.models.RunStatus takes its values from here). The launcher reports some and
    obeys others as the desired state its control plane answers."""

    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BUDGET_STOPPED = "budget_stopped"
    LOST = "lost"


# What a node may report; queued, cancelling and lost are the control plane's to set.
REPORTED_STATES = (
    RunState.STARTING,
    RunState.RUNNING,
    RunState.SUCCEEDED,
    RunState.FAILED,
    RunState.CANCELLED,
    RunState.BUDGET_STOPPED,
)
# Desired states that stop a running trainer (with a checkpoint, except lost: its attempt is fenced).
STOP_STATES = frozenset({RunState.CANCELLING, RunState.BUDGET_STOPPED, RunState.LOST})

# A sandbox verdict's class (workers.sandbox.types.Result.error_class; Generation.error_class).
ERROR_CLASSES = (
    "passed",
    "wrong_answer",
    "runtime_error",
    "syntax_error",
    "timeout",
    "memory_limit",
    "output_limit",
    "crash",
    "sandbox_error",
)

# A repository task's episode outcome (issue #23; docs/repository-tasks.md; Generation.outcome).
# sandbox_error is the infrastructure's fault: retried and never scored (resolve rates leave it out).
# The problem kind of a repository task is REPO_KIND.
REPO_KIND = "repo"
REPO_OUTCOMES = (
    "resolved",
    "tests_fail",
    "broke_passing_tests",
    "no_patch",
    "turn_limit",
    "token_limit",
    "invalid_actions",
    "sandbox_error",
)
# The tools an agent calls in a repository episode, one JSON object per turn (workers/repo/tools.py).
REPO_TOOLS = ("view", "search", "find", "replace", "create", "run_tests", "submit")

# The reward's components; each has a weight setting reward_<component> (docs/trainer.md).
REWARD_COMPONENTS = ("correctness", "efficiency", "style", "format", "custom")


class Metric:
    """Metric keys the trainer emits that the control plane reads by name (stop rules, charts, the
    estimate). Keyed families: `reward_share(c)`, `pass_at(k, eval_set)`, `eval_coverage(name, eval_set)`."""

    REWARD_MEAN = "reward/mean"
    PASS_RATE = "pass_rate"  # noqa: S105 - a metric's name, not a password
    FRAC_REWARD_ZERO_STD = "frac_reward_zero_std"
    LOSS = "loss"
    KL = "kl"
    ENTROPY = "entropy"
    LENGTH_MEAN = "length/mean"
    STEP_S = "time/step_s"
    TOKENS_PER_S = "throughput/tokens_per_s"
    # Completion tokens generated since the run began (over resumes): the charts' "tokens" x axis.
    TOKENS_TOTAL = "throughput/tokens_total"
    # Repository tasks (docs/trainer.md, "Repository tasks (multi-turn)"): shares of the step's scored
    # episodes, and repo_outcome(o) for each outcome class.
    REPO_RESOLVE_RATE = "repo/resolve_rate"
    REPO_TURNS_MEAN = "repo/turns_mean"
    REPO_INVALID_ACTION_FRAC = "repo/invalid_action_frac"
    REPO_TEST_EDIT_FRAC = "repo/test_edit_frac"
    REPO_EPISODE_S_MEAN = "repo/episode_s_mean"

    @staticmethod
    def repo_outcome(outcome: str) -> str:
        """The share of a step's episodes that ended with `outcome` (REPO_OUTCOMES)."""
        return f"repo/outcome/{outcome}"

    @staticmethod
    def reward_share(component: str) -> str:
        """A component's weight × mean score: its part of reward/mean."""
        return f"reward/{component}/share"

    @staticmethod
    def pass_at(k: int, eval_set: str = "") -> str:
        """pass@k on the held-out problems, or on the evaluation set `eval_set`."""
        return f"eval/{eval_set}/pass@{k}" if eval_set else f"eval/pass@{k}"

    @staticmethod
    def eval_coverage(name: str, eval_set: str = "") -> str:
        """What is behind an evaluation's pass@k: `problems_unscored` (left out: every completion hit a
        sandbox error) or `n_min` (the fewest valid samples of a scored problem), per set as pass_at."""
        return f"eval/{eval_set}/{name}" if eval_set else f"eval/{name}"


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class Setting:
    """One setting's metadata. `name`, `kind`, `default` and `side` are filled in from the dataclass
    field it sits on (see SETTINGS); the rest is written next to the field with `setting()`."""

    label: str
    help: str
    unit: str = ""
    low: float | None = None
    high: float | None = None
    low_exclusive: bool = False  # low itself is refused (a learning rate of 0 ...)
    high_exclusive: bool = False
    choices: tuple[str, ...] = ()  # the names a text setting takes
    text: bool = False  # free text (str without choices), up to max_length characters
    max_length: int = 0
    basic: bool = False  # a field of its own on the launch form; the rest is set through its YAML
    nullable: bool = False  # None is a value (it means what `help` says)
    name: str = ""
    kind: type = object  # int, float, bool or str
    default: Any = None
    side: str = NODE

    def describe(self) -> str:
        """What a valid value is, as the end of "<key> must be ..."."""
        if self.kind is bool:
            text = "must be true or false"
        elif self.text:
            text = f"must be text of at most {self.max_length} characters"
        elif self.kind is str:
            text = f"must be one of {', '.join(self.choices)}"
        else:
            low = f"{_number(self.low)} (exclusive)" if self.low_exclusive else _number(self.low)
            high = f"{_number(self.high)} (exclusive)" if self.high_exclusive else _number(self.high)
            text = f"must be {_KINDS[self.kind]} from {low} to {high}"
        return text + (" or null" if self.nullable else "")


def setting(
    default: Any,
    *,
    label: str,
    help: str,
    unit: str = "",
    low: float | None = None,
    high: float | None = None,
    low_exclusive: bool = False,
    high_exclusive: bool = False,
    choices: tuple[str, ...] = (),
    text: bool = False,
    max_length: int = 0,
    basic: bool = False,
    nullable: bool = False,
) -> Any:
    """A dataclass field with its `Setting` in the metadata (as TRL's GRPOConfig keeps its help)."""
    meta = Setting(
        label=label,
        help=help,
        unit=unit,
        low=low,
        high=high,
        low_exclusive=low_exclusive,
        high_exclusive=high_exclusive,
        choices=choices,
        text=text,
        max_length=max_length,
        basic=basic,
        nullable=nullable,
    )
    return field(default=default, metadata={"setting": meta})


class _Config:
    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


_STEPS = 100_000
SANDBOX_LOCAL, SANDBOX_FLEET = "local", "fleet"  # sandbox_mode: where rewards are scored
VERIFIER_SOURCE = "reward_custom_source"
VERIFIER_FUNCTION = "reward"
VERIFIER_MAX_CHARS = 8_000  # the YAML holding it, every other setting besides, stays under 30 000


@dataclass(frozen=True)
class TrainConfig(_Config):
    """Every setting the trainer receives (the spec's "train" section)."""

    steps: int = setting(
        5,
        label="Steps",
        help="Training steps, the SFT warm-up's included; each samples a rollout batch and learns from it.",
        low=1,
        high=_STEPS,
        basic=True,
    )
    group_size: int = setting(
        4,
        label="Group size",
        help="Samples per prompt (GRPO group).",
        unit="samples",
        low=2,
        high=64,
        basic=True,
    )
    prompts_per_step: int = setting(
        2,
        label="Prompts per step",
        help="Problems sampled per step.",
        low=1,
        high=1024,
        basic=True,
    )
    lr: float = setting(
        1e-3, label="Learning rate", help="AdamW's learning rate for RL.", low=1e-8, high=1.0, basic=True
    )
    lr_warmup_steps: int = setting(
        0,
        label="LR warm-up",
        help="RL optimizer steps over which the learning rate rises linearly to lr.",
        unit="optimizer steps",
        low=0,
        high=_STEPS,
    )
    lr_schedule: str = setting(
        "constant",
        label="LR schedule",
        help="The RL learning rate after the warm-up: constant, or cosine down to lr × lr_min_ratio at "
        "the last step.",
        choices=("constant", "cosine"),
    )
    lr_min_ratio: float = setting(
        0.0,
        label="LR floor",
        help="The cosine schedule's last learning rate, as a share of lr.",
        low=0,
        high=1,
    )
    seed: int = setting(
        0,
        label="Seed",
        help="Seeds the model's initialisation, sampling and problem order.",
        low=0,
        high=2**31 - 1,
        basic=True,
    )
    max_new_tokens: int = setting(
        48,
        label="Max new tokens",
        help="Longest completion sampled per prompt.",
        low=8,
        high=4096,
        basic=True,
    )
    temperature: float = setting(
        1.0, label="Temperature", help="Sampling temperature of the rollouts.", low=1e-3, high=10.0
    )
    beta: float = setting(
        0.0,
        label="KL β",
        help="Weight of the KL penalty to the reference: the policy as RL starts (0: none).",
        low=0.0,
        high=10.0,
        basic=True,
    )
    clip_eps: float = setting(
        0.2,
        label="Clip ε",
        help="PPO-style clip range of the policy ratio.",
        low=0.0,
        high=1.0,
        low_exclusive=True,
        high_exclusive=True,
        basic=True,
    )
    clip_eps_high: float | None = setting(
        None,
        label="Clip ε high",
        help="Upper clip range of the policy ratio, DAPO's clip-higher (null: clip_eps).",
        low=0.0,
        high=10.0,
        low_exclusive=True,
        nullable=True,
    )
    # The update's batch structure (docs/trainer.md, "One step"): a step's rollout batch is split into
    # mini-batches, one optimizer step each, ppo_epochs times over; a rank's part of a mini-batch runs in
    # micro-batches whose gradients accumulate.
    mini_batches: int = setting(
        1,
        label="Mini-batches",
        help="Optimizer steps per pass over a step's rollout batch: the batch's groups are split into "
        "this many mini-batches.",
        low=1,
        high=1024,
    )
    ppo_epochs: int = setting(
        1,
        label="PPO epochs",
        help="Passes over each rollout batch (more than one makes the policy ratio and the clip matter).",
        low=1,
        high=64,
    )
    micro_batch_size: int = setting(
        0,
        label="Micro-batch size",
        help="Completions per forward and backward on a rank; gradients accumulate over a mini-batch's "
        "micro-batches (0: a rank's whole mini-batch at once).",
        unit="completions",
        low=0,
        high=65536,
    )
    loss_agg: str = setting(
        "token_mean",
        label="Loss aggregation",
        help="How token losses add up: token_mean over every token of the global mini-batch (DAPO), "
        "seq_mean of each completion's token mean (DeepSeekMath's GRPO), or constant: the token sum over "
        "completions × max_new_tokens (Dr. GRPO).",
        choices=("token_mean", "seq_mean", "constant"),
    )
    adv_scale: str = setting(
        "group",
        label="Advantage scaling",
        help="What divides a reward minus its group's mean: the group's std (GRPO), the std of the whole "
        "batch's rewards, or none (Dr. GRPO).",
        choices=("group", "batch", "none"),
    )
    adv_std: str = setting(
        "population",
        label="Advantage std",
        help="The std that scales advantages: population (divides by n) or unbiased (by n - 1).",
        choices=("population", "unbiased"),
    )
    overlong: str = setting(
        "none",
        label="Overlong completions",
        help="Completions cut at max_new_tokens: none (trained on as they are), mask (left out of the loss "
        "but in their group's baseline, DAPO's overlong filtering) or penalty (DAPO's soft overlong "
        "punishment over the last overlong_buffer tokens).",
        choices=("none", "mask", "penalty"),
    )
    overlong_buffer: int = setting(
        16,
        label="Overlong buffer",
        help="The last tokens before max_new_tokens over which the overlong penalty grows from 0 to 1.",
        unit="tokens",
        low=1,
        high=4096,
    )
    dynamic_sampling: bool = setting(
        False,
        label="Dynamic sampling",
        help="Drop groups whose rewards all agree and sample more problems to refill the batch (DAPO).",
    )
    dynamic_sampling_max_rounds: int = setting(
        2,
        label="Dynamic sampling rounds",
        help="Extra sampling rounds a step may take to refill its batch; what is still missing after "
        "them is left out.",
        low=1,
        high=64,
    )
    kl_monitor_every: int | None = setting(
        None,
        label="KL monitor every",
        help="With β = 0, steps between measurements of the KL to the policy as RL started (null: every "
        "10 steps for models under 1B parameters, never for larger ones; 0: never).",
        unit="steps",
        low=0,
        high=_STEPS,
        nullable=True,
    )
    zero_stage: int = setting(
        0,
        label="ZeRO stage",
        help="DeepSpeed ZeRO: 0 plain data parallel; 1 shards optimizer states, 2 gradients too, "
        "3 weights too.",
        low=0,
        high=3,
        basic=True,
    )
    precision: str = setting(
        "fp32",
        label="Precision",
        help="Training precision: bf16 (GPUs of compute capability 8.0 or later), fp16 with loss "
        "scaling, fp32.",
        choices=("fp32", "bf16", "fp16"),
        basic=True,
    )
    rollout: str = setting(
        "torch",
        label="Rollout engine",
        help="What samples the completions: torch (the policy itself; with a KV cache for Hugging Face "
        "models) or vllm (a colocated vLLM on GPU nodes that have it installed; opt-in).",
        choices=("torch", "vllm"),
    )
    gradient_checkpointing: bool = setting(
        False,
        label="Gradient checkpointing",
        help="Recompute activations in the backward pass: less memory, about a third more compute.",
        basic=True,
    )
    lora_rank: int = setting(
        0,
        label="LoRA rank",
        help="Train low-rank adapters of this rank instead of every weight (0: full fine-tuning).",
        low=0,
        high=1024,
        basic=True,
    )
    lora_alpha: float = setting(
        16.0,
        label="LoRA α",
        help="Scale of the adapters' update (α / rank).",
        low=0.0,
        high=4096.0,
        low_exclusive=True,
    )
    partial_credit: bool = setting(
        False,
        label="Partial credit",
        help="Correctness scores the share of tests passed instead of all or nothing.",
    )
    sft_warmup_steps: int = setting(
        0,
        label="SFT warm-up steps",
        help="Steps of imitation on the reference solutions before RL (counted in Steps).",
        low=0,
        high=_STEPS,
        basic=True,
    )
    sft_lr: float = setting(
        3e-3,
        label="SFT learning rate",
        help="Learning rate of the SFT warm-up.",
        low=1e-8,
        high=1.0,
        basic=True,
    )
    sft_with_reasoning: bool = setting(
        False,
        label="SFT with reasoning",
        help="The warm-up imitates the problem's reasoning trace, then its solution.",
    )
    # The warm-up's second moments are scaled to imitation gradients, not RL's.
    reset_optimizer_after_sft: bool = setting(
        True, label="Reset optimizer after SFT", help="Start RL with fresh AdamW moments."
    )
    checkpoint_every: int = setting(
        50,
        label="Checkpoint every",
        help="Steps between checkpoints (0: only at the end).",
        unit="steps",
        low=0,
        high=_STEPS,
    )
    # Retention (workers/trainer/retention.py): after each save the trainer deletes what these don't keep.
    checkpoint_keep_last: int = setting(
        2,
        label="Checkpoints kept",
        help="The newest checkpoints kept (the best by the metric below is kept besides).",
        low=1,
        high=1000,
    )
    checkpoint_best_metric: str = setting(
        "",
        label="Keep the best by",
        help="Also keep the checkpoint with the best value of this metric when it was saved ('': none).",
        choices=("", Metric.PASS_RATE, Metric.REWARD_MEAN, Metric.pass_at(1), Metric.LOSS),
    )
    checkpoint_best_mode: str = setting(
        "max",
        label="Best is the",
        help="Whether the best checkpoint has the metric's highest value (max) or its lowest (min).",
        choices=("max", "min"),
    )
    checkpoint_quota_gb: float = setting(
        0.0,
        label="Checkpoint quota",
        help="Most storage the run's checkpoints take; the oldest beyond the newest and the best "
        "are deleted first (0: no quota).",
        unit="GB",
        low=0,
        high=1_000_000,
    )
    eval_every: int = setting(
        0,
        label="Evaluate every",
        help="Steps between held-out pass@1 / pass@k evaluations (0: never).",
        unit="steps",
        low=0,
        high=_STEPS,
        basic=True,
    )
    eval_problems: int = setting(
        0,
        label="Held-out problems",
        help="The last N problems are kept out of training for that evaluation.",
        low=0,
        high=_STEPS,
        basic=True,
    )
    eval_samples: int = setting(
        8,
        label="Eval samples",
        help="Completions sampled per evaluated problem (n of pass@k).",
        low=1,
        high=1024,
    )
    eval_k: int = setting(
        4, label="Eval k", help="eval/pass@k (and eval/<set>/pass@k) besides pass@1.", low=1, high=1024
    )
    eval_temperature: float | None = setting(
        None,
        label="Eval temperature",
        help="Sampling temperature of evaluations (null: 0.8 under eval_protocol codex, the rollouts' "
        "temperature under sampled).",
        low=1e-3,
        high=10.0,
        nullable=True,
    )
    eval_set: str = setting(
        "none",
        label="Eval set",
        help="A built-in benchmark evaluated every eval_every steps too.",
        choices=("none", *EVAL_SETS),
    )
    eval_set_problems: int = setting(
        20,
        label="Eval set problems",
        help="The benchmark's first N problems (0: all).",
        low=0,
        high=max(EVAL_SETS.values()),
    )
    eval_protocol: str = setting(
        "codex",
        label="Eval protocol",
        help="codex: pass@1 from one greedy completion, pass@k from eval_samples sampled at 0.8 (Chen et "
        "al. 2021); sampled: both from eval_samples sampled at one temperature (eval_temperature "
        "overrides either's sampling temperature).",
        choices=("codex", "sampled"),
    )
    # The reward is the weighted sum of these components' scores, each in [0, 1] (docs/trainer.md).
    reward_correctness: float = setting(
        1.0, label="Reward: correctness", help="Weight of the tests' verdict.", low=0, high=100
    )
    reward_efficiency: float = setting(
        0.0,
        label="Reward: efficiency",
        help="Weight of the CPU time score of passing programs.",
        low=0,
        high=100,
    )
    reward_style: float = setting(
        0.0, label="Reward: style", help="Weight of the style score.", low=0, high=100
    )
    reward_format: float = setting(
        0.0, label="Reward: format", help="Weight of the format score.", low=0, high=100
    )
    # The user's own verifier, run in the sandbox's judge beside the tests (docs/trainer.md, "Rewards").
    reward_custom: float = setting(
        0.0,
        label="Reward: custom",
        help="Weight of the score of the verifier in reward_custom_source.",
        low=0,
        high=100,
    )
    reward_custom_source: str = setting(
        "",
        label="Reward: custom verifier",
        help="Python source defining reward(candidate, problem) -> a number in [0, 1], run in the "
        "sandbox beside the tests (docs/trainer.md, Rewards).",
        text=True,
        max_length=VERIFIER_MAX_CHARS,
    )
    reward_aux_gate: str = setting(
        "pass",
        label="Reward: style and format gate",
        help=(
            "Which samples style and format count for: pass (passing ones only), correctness (scaled by "
            "the correctness score) or none (every sample)."
        ),
        choices=("pass", "correctness", "none"),
    )
    # Where samples are scored (docs/trainer.md, "Rewards"; docs/sandbox.md, "The sandbox fleet").
    sandbox_mode: str = setting(
        SANDBOX_LOCAL,
        label="Sandbox",
        help="Where samples are scored: local (each rank's sandbox on its own node) or fleet (the sandbox "
        "queue's workers, through Celery; needs Redis as broker and result backend).",
        choices=(SANDBOX_LOCAL, SANDBOX_FLEET),
    )
    # The execution-outcome critic (docs/trainer.md); skipping the sandbox is opt-in and audited.
    critic: bool = setting(False, label="Critic", help="Train a critic that predicts each sample's verdict.")
    critic_skip: bool = setting(
        False, label="Critic skips", help="Confident predictions skip the sandbox (audited; needs critic)."
    )
    critic_threshold: float = setting(
        0.95,
        label="Critic threshold",
        help="Confidence max(p, 1 - p) at which a sample may be skipped.",
        low=0.5,
        high=1.0,
    )
    critic_audit_frac: float = setting(
        0.1,
        label="Critic audit share",
        help="Share of the confident samples that run anyway.",
        low=0.01,
        high=1.0,
    )
    critic_max_skip_frac: float = setting(
        0.5,
        label="Critic max skip share",
        help="Most of a step's samples that may be skipped.",
        low=0.0,
        high=1.0,
    )
    critic_min_labels: int = setting(
        256,
        label="Critic min verdicts",
        help="Verdicts the critic learns from before it skips any.",
        low=0,
        high=10_000_000,
    )
    critic_max_audit_error: float = setting(
        0.05,
        label="Critic max audit error",
        help="Skipping pauses while audited confident predictions are wrong more often than this.",
        low=0.0,
        high=1.0,
    )
    critic_skip_scoring: str = setting(
        "baseline",
        label="Critic-skipped samples",
        help="Skipped samples set their group's baseline only (baseline) or are trained on too (train).",
        choices=("baseline", "train"),
    )
    hack_zero_reward: bool = setting(
        False,
        label="Zero hacked rewards",
        help="A passing sample a reward-hacking detector flags scores 0 before the advantages are "
        "computed (docs/review.md).",
    )
    generations_keep: str = setting(
        "capped",
        label="Generations kept",
        help="Which samples of a step are posted for review besides the flagged ones (always posted): "
        "capped (the first 8 failing and 2 passing), all, or sample (a uniform sample of "
        "generations_sample).",
        choices=("capped", "all", "sample"),
    )
    generations_sample: int = setting(
        32,
        label="Generations sampled",
        help="Samples posted per step with generations_keep: sample (flagged ones besides).",
        low=1,
        high=100_000,
    )
    # Repository tasks (kind "repo"; docs/trainer.md, "Repository tasks (multi-turn)"): each episode's
    # limits. A limit that ends an episode is its outcome (turn_limit, token_limit), scored 0.
    repo_max_turns: int = setting(
        20,
        label="Repo: max turns",
        help="Most model turns (actions) in one repository-task episode.",
        unit="turns",
        low=1,
        high=200,
    )
    repo_max_tokens: int = setting(
        8192,
        label="Repo: max tokens",
        help="Most tokens in one episode's context: the opening prompt, the model's turns and the "
        "observations together.",
        unit="tokens",
        low=256,
        high=1_048_576,
    )
    repo_wall_s: float = setting(
        300.0,
        label="Repo: episode wall time",
        help="Longest wall-clock time of one episode, generation and tool calls together.",
        unit="s",
        low=1.0,
        high=86_400.0,
    )
    repo_test_timeout_s: float = setting(
        30.0,
        label="Repo: test timeout",
        help="Time limit of one run_tests call inside an episode (and of each grading run).",
        unit="s",
        low=1.0,
        high=3_600.0,
    )


@dataclass(frozen=True)
class ControlConfig(_Config):
    """Settings the control plane acts on itself; the trainer never receives them."""

    include_unverified: bool = setting(
        False,
        label="Include unverified problems",
        help="Train on problems whose reference solution failed, was flaky or has weak tests too.",
        basic=True,
    )
    gpus_per_node: int = setting(
        0,
        label="GPUs per node",
        help="GPUs the run trains on in each node, one rank each (0: all the node has; on a CPU pool, "
        "the trainer processes its node is set to start). Billed per GPU-hour.",
        low=0,
        high=1024,
        basic=True,
    )
    nodes: int = setting(
        1,
        label="Nodes",
        help="Nodes of the pool the run trains on at once (a gang: it starts when all have claimed it).",
        low=1,
        high=64,
        basic=True,
    )
    budget_usd: float = setting(
        0.0,
        label="Budget (USD)",
        help="Stop the run, with a checkpoint, once it has cost this much (0: no cap).",
        low=0,
        high=10_000_000,
        basic=True,
    )
    # Stops on learning signals (docs/spend.md), checked on the accrual tick; never on by default.
    stop_pass_rate_flat_steps: int = setting(
        0,
        label="Stop when pass rate is flat for",
        help="Stop once pass_rate stays within the tolerance this many steps (0: off).",
        unit="steps",
        low=0,
        high=_STEPS,
    )
    stop_pass_rate_tolerance: float = setting(
        0.01,
        label="Flat pass rate tolerance",
        help="Flat: max - min of those steps' pass_rate at most this.",
        low=0,
        high=1,
    )
    stop_zero_std_steps: int = setting(
        0,
        label="Stop when rewards are uniform for",
        help="Stop once frac_reward_zero_std exceeds its threshold this many steps (0: off).",
        unit="steps",
        low=0,
        high=_STEPS,
    )
    stop_zero_std_frac: float = setting(
        0.9,
        label="Uniform rewards threshold",
        help="Share of groups with one reward for every sample.",
        low=0,
        high=1,
    )


_C = TypeVar("_C", bound=TrainConfig)


@dataclass(frozen=True)
class RunConfig(ControlConfig, TrainConfig):
    """A run's whole config, flat: the trainer's settings first, then the control plane's."""

    def train(self) -> TrainConfig:
        """What the trainer receives."""
        return TrainConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig)})


def _settings() -> dict[str, Setting]:
    hints = typing.get_type_hints(RunConfig)
    control = {f.name for f in dataclasses.fields(ControlConfig)}
    out: dict[str, Setting] = {}
    for f in dataclasses.fields(RunConfig):
        meta = f.metadata.get("setting")
        if not isinstance(meta, Setting):
            raise RuntimeError(f"RunConfig.{f.name} must be declared with workers.spec.setting()")
        kinds = [k for k in typing.get_args(hints[f.name]) if k is not type(None)] or [hints[f.name]]
        kind = kinds[0]
        if kind not in _KINDS or (kind is str) != bool(meta.choices or meta.text):
            raise RuntimeError(f"RunConfig.{f.name}: int, float, bool, str with choices or text")
        if meta.text and (kind is not str or meta.choices or meta.max_length < 1):
            raise RuntimeError(f"RunConfig.{f.name}: text is a str without choices, with a max_length")
        if kind in (int, float) and (meta.low is None or meta.high is None):
            raise RuntimeError(f"RunConfig.{f.name}: a number needs low and high")
        weight = f.name.startswith("reward_") and kind is float  # reward_aux_gate is not a weight
        if weight and f.name.removeprefix("reward_") not in REWARD_COMPONENTS:
            raise RuntimeError(f"RunConfig.{f.name}: a reward weight needs its name in REWARD_COMPONENTS")
        side = CONTROL if f.name in control else NODE
        out[f.name] = dataclasses.replace(meta, name=f.name, kind=kind, default=f.default, side=side)
    if missing := [c for c in REWARD_COMPONENTS if f"reward_{c}" not in out]:
        raise RuntimeError(f"RunConfig needs a weight setting reward_<component> for {missing}")
    return out


_KINDS: dict[type, str] = {int: "an integer", float: "a number", bool: "true or false", str: "a name"}
_FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")

SETTINGS: dict[str, Setting] = _settings()  # every setting, in RunConfig's field order
REWARD_WEIGHTS = tuple(f"reward_{component}" for component in REWARD_COMPONENTS)


class SettingError(ValueError):
    """A value or a combination of values refused. `keys` are the settings involved, the one to point
    at first (the YAML shows the line of the first one the user wrote)."""

    def __init__(self, key: str, message: str, *, keys: tuple[str, ...] = ()):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message
        self.keys = keys or (key,)


def setting_value(key: str, value: Any) -> Any:
    """`value` checked against setting `key` (type, range, choices, finite) and in its type."""
    s = SETTINGS[key]
    if value is None and s.nullable:
        return None
    if s.kind is float and isinstance(value, str) and _FLOAT_TEXT.fullmatch(value.strip()):
        value = float(value)  # YAML 1.1 reads 3e-4 (no dot) as text
    if s.text:
        if not isinstance(value, str) or len(value) > s.max_length or "\x00" in value:
            raise SettingError(key, f"{s.describe()} (no NUL), got {_shown(value)}")
        if key == VERIFIER_SOURCE and value:
            check_verifier_source(value)
        return value
    if s.kind is bool or s.kind is str:
        valid = isinstance(value, bool) if s.kind is bool else isinstance(value, str) and value in s.choices
        if not valid:
            raise SettingError(key, f"{s.describe()}, got {_shown(value)}")
        return value
    numeric = isinstance(value, int) or (s.kind is float and isinstance(value, float))
    if isinstance(value, bool) or not numeric or not math.isfinite(value):
        raise SettingError(key, f"{s.describe()}, got {_shown(value)}")
    assert s.low is not None and s.high is not None  # _settings() saw to it
    kind = _KINDS[s.kind]
    if value < s.low or (s.low_exclusive and value == s.low):
        raise SettingError(key, f"must be {kind} {'>' if s.low_exclusive else '≥'} {_number(s.low)}")
    if value > s.high or (s.high_exclusive and value == s.high):
        raise SettingError(key, f"must be {kind} {'<' if s.high_exclusive else '≤'} {_number(s.high)}")
    return s.kind(value)


def check_rules(config: TrainConfig) -> None:
    """The rules that tie settings together (all of them are the trainer's settings)."""
    if config.sft_warmup_steps >= config.steps:
        raise SettingError(
            "sft_warmup_steps",
            f"sft_warmup_steps ({config.sft_warmup_steps}) must be fewer than steps ({config.steps}), "
            "or there is no RL at all",
            keys=("sft_warmup_steps", "steps"),
        )
    if config.eval_k > config.eval_samples:
        raise SettingError(
            "eval_k",
            f"eval_k ({config.eval_k}) must be at most eval_samples ({config.eval_samples}): pass@k "
            "is estimated from that many samples",
            keys=("eval_k", "eval_samples"),
        )
    if config.eval_set != "none" and not config.eval_every:
        raise SettingError(
            "eval_every",
            f"eval_set {config.eval_set!r} needs eval_every > 0, or it is never evaluated",
            keys=("eval_every", "eval_set"),
        )
    size = EVAL_SETS.get(config.eval_set)
    if size is not None and config.eval_set_problems > size:
        raise SettingError(
            "eval_set_problems",
            f"{config.eval_set} has {size} problems (got {config.eval_set_problems})",
            keys=("eval_set_problems", "eval_set"),
        )
    if config.clip_eps_high is not None and config.clip_eps_high < config.clip_eps:
        raise SettingError(
            "clip_eps_high",
            f"clip_eps_high ({config.clip_eps_high:g}) must be at least clip_eps ({config.clip_eps:g})",
            keys=("clip_eps_high", "clip_eps"),
        )
    if config.mini_batches > config.prompts_per_step:
        raise SettingError(
            "mini_batches",
            f"mini_batches ({config.mini_batches}) must be at most prompts_per_step "
            f"({config.prompts_per_step}): a mini-batch holds whole groups",
            keys=("mini_batches", "prompts_per_step"),
        )
    if config.overlong == "penalty" and config.overlong_buffer >= config.max_new_tokens:
        raise SettingError(
            "overlong_buffer",
            f"overlong_buffer ({config.overlong_buffer}) must be fewer than max_new_tokens "
            f"({config.max_new_tokens})",
            keys=("overlong_buffer", "max_new_tokens", "overlong"),
        )
    if not any(getattr(config, key) for key in REWARD_WEIGHTS):
        raise SettingError(
            REWARD_WEIGHTS[0],
            f"at least one reward weight must be > 0 ({', '.join(REWARD_WEIGHTS)} are all 0)",
            keys=REWARD_WEIGHTS,
        )
    if config.reward_custom and not config.reward_custom_source.strip():
        raise SettingError(
            "reward_custom",
            "reward_custom > 0 needs a verifier in reward_custom_source",
            keys=("reward_custom", VERIFIER_SOURCE),
        )
    if config.reward_custom_source.strip() and not config.reward_custom:
        raise SettingError(
            VERIFIER_SOURCE,
            "reward_custom_source is only run with reward_custom > 0 (its weight is 0)",
            keys=(VERIFIER_SOURCE, "reward_custom"),
        )
    if config.critic_skip and not config.critic:
        raise SettingError("critic_skip", "critic_skip needs critic: true", keys=("critic_skip", "critic"))


def check_verifier_source(source: str) -> None:
    """Refuse a verifier that does not parse or defines no module-level ``reward(candidate, problem)``,
    naming the source's line. Parsed with ``ast`` only: nothing of it runs outside the sandbox."""
    import ast  # here: the trainer's every import of this module would pay for it

    key = VERIFIER_SOURCE
    try:
        tree = ast.parse(source, "<verifier>")
    except SyntaxError as exc:
        raise SettingError(key, f"line {exc.lineno or 1} of the source does not parse: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise SettingError(key, f"the source does not parse: {exc}") from None
    found: ast.FunctionDef | None = None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == VERIFIER_FUNCTION:
            found = node
        elif isinstance(node, ast.AsyncFunctionDef) and node.name == VERIFIER_FUNCTION:
            raise SettingError(key, f"line {node.lineno}: reward must be a plain def, not async")
    if found is None:
        raise SettingError(
            key, "defines no function reward(candidate, problem) at module level (no line has one)"
        )
    args = found.args
    positional = len(args.posonlyargs) + len(args.args)
    required = positional - len(args.defaults)
    kw_required = sum(1 for d in args.kw_defaults if d is None)
    if (positional < 2 and args.vararg is None) or required > 2 or kw_required:
        raise SettingError(
            key, f"line {found.lineno}: reward must take exactly (candidate, problem) positionally"
        )


KL_MONITOR_DEFAULT_EVERY = 10
KL_MONITOR_MAX_PARAMS = 1_000_000_000  # larger models measure no KL by default: the copy costs memory


def kl_monitor_every(config: TrainConfig, params: int) -> int:
    """Steps between measurements of the KL to the policy as RL started with β = 0 (0: never)."""
    if config.kl_monitor_every is not None:
        return config.kl_monitor_every
    return KL_MONITOR_DEFAULT_EVERY if params < KL_MONITOR_MAX_PARAMS else 0


def keeps_reference(config: TrainConfig, params: int) -> bool:
    """Does the trainer keep a frozen copy of the policy as RL started (the KL term, or its monitor)?"""
    return config.beta > 0 or kl_monitor_every(config, params) > 0


def config_from_dict(values: Mapping[str, Any], *, config_type: type[_C], prefix: str = "") -> _C:
    """A config from user input or the spec: unknown keys, bad values and broken rules are refused
    (SettingError, its key with `prefix`); keys left out take their defaults."""
    known = {f.name for f in dataclasses.fields(config_type)}
    try:
        for key in values:
            if key not in known:
                raise SettingError(str(key)[:60], "unknown setting")
        config = config_type(**{key: setting_value(key, value) for key, value in values.items()})
        check_rules(config)
    except SettingError as exc:
        if not prefix:
            raise
        raise SettingError(prefix + exc.key, exc.message, keys=tuple(prefix + k for k in exc.keys)) from None
    return config


def config_from_stored(values: Mapping[str, Any]) -> RunConfig:
    """A run's config as stored (Run.config): older runs lack newer settings, which take their
    defaults, and may hold settings since removed, which are ignored. Not checked again: it was when
    the run was launched, and the trainer checks what it receives."""
    known = {key: value for key, value in values.items() if key in SETTINGS}
    if "gpu_count" in values and "gpus_per_node" not in values:  # its name before models and pools
        known["gpus_per_node"] = values["gpu_count"]
    for key, value in known.items():
        if SETTINGS[key].kind is float and isinstance(value, int) and not isinstance(value, bool):
            known[key] = float(value)
    return RunConfig(**known)


def _shown(value: Any) -> str:
    return "nothing" if value is None else repr(value)[:40]


def _number(value: float | None) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"
