"""The run spec: typed, frozen dataclasses parsed from the JSON the control plane builds."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{name}: must be an object")
    return value


def _int(d: dict[str, Any], prefix: str, key: str, default: int, *, minimum: int) -> int:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{prefix}.{key}: must be an integer >= {minimum} (got {value!r})")
    return value


def _float(
    d: dict[str, Any], prefix: str, key: str, default: float, *, minimum: float, strict: bool = False
) -> float:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{prefix}.{key}: must be a number (got {value!r})")
    if value < minimum or (strict and value == minimum):
        op = ">" if strict else ">="
        raise ValueError(f"{prefix}.{key}: must be a number {op} {minimum} (got {value!r})")
    return float(value)


def _bool(d: dict[str, Any], prefix: str, key: str, default: bool) -> bool:
    value = d.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{prefix}.{key}: must be true or false (got {value!r})")
    return value


def _str(d: dict[str, Any], prefix: str, key: str, default: str | None = None) -> str:
    value = d.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{prefix}.{key}: must be a string (got {value!r})")
    return value


@dataclass(frozen=True)
class ModelSpec:
    kind: str = "tiny"
    path: str | None = None
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    max_len: int = 512


@dataclass(frozen=True)
class TrainSpec:
    steps: int = 5
    prompts_per_step: int = 2
    group_size: int = 4
    lr: float = 1e-3
    seed: int = 0
    max_new_tokens: int = 48
    temperature: float = 1.0
    beta: float = 0.0
    clip_eps: float = 0.2
    zero_stage: int = 0
    precision: str = "fp32"
    partial_credit: bool = False
    sft_warmup_steps: int = 0
    sft_lr: float | None = None  # learning rate of the warm-up; None = lr
    checkpoint_every: int = 0
    # Start RL with fresh AdamW moments: the warm-up's second moments are scaled to imitation gradients.
    reset_optimizer_after_sft: bool = True
    eval_every: int = 0  # 0 = no periodic evaluation
    eval_problems: int = 0  # the last N problems (in spec order) are held out of training for evaluation
    eval_samples: int = 8  # samples per held-out problem (n of the pass@k estimator)
    eval_k: int = 4  # eval/pass@<k> besides eval/pass@1
    eval_temperature: float | None = None  # None = temperature
    eval_set: str = "none"  # a built-in benchmark evaluated too (eval/<set>/pass@k): "none" | "humaneval"
    eval_set_problems: int = 20  # its first N problems (0: all; HumanEval has 164)
    # The reward is the weighted sum of these components' scores (workers/trainer/reward_components.py).
    reward_correctness: float = 1.0
    reward_efficiency: float = 0.0
    reward_style: float = 0.0
    reward_format: float = 0.0
    # The execution-outcome critic (workers/trainer/critic.py); skip mode only with critic on.
    critic: bool = False
    critic_skip: bool = False
    critic_threshold: float = 0.95  # confidence max(p, 1 - p) at which a sample may be skipped
    critic_audit_frac: float = 0.1  # share of the confident samples that always run anyway
    critic_max_skip_frac: float = 0.5  # most of a step's samples that may be skipped
    critic_min_labels: int = 256  # verdicts the critic must have learned from before it skips any
    # Skipping pauses while the critic's confident predictions that ran were wrong more often than
    # this, over the last CRITIC_ERROR_WINDOW of them (see critic.SkipGuard).
    critic_max_audit_error: float = 0.05
    sft_with_reasoning: bool = False  # the warm-up imitates the problem's reasoning trace + solution


REWARD_WEIGHT_KEYS = ("reward_correctness", "reward_efficiency", "reward_style", "reward_format")
EVAL_SETS: dict[str, int] = {"humaneval": 164}  # name -> problems in it


def reward_weights(train: TrainSpec) -> dict[str, float]:
    """{component: weight} for every reward component, zero weights included."""
    return {key.removeprefix("reward_"): float(getattr(train, key)) for key in REWARD_WEIGHT_KEYS}


@dataclass(frozen=True)
class ResourcesSpec:
    num_nodes: int = 1
    procs_per_node: int = 1
    gpu: bool = False


@dataclass(frozen=True)
class SandboxSpec:
    timeout_s: float = 2.0
    memory_mb: int = 512


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    entry_point: str
    tests: str
    solution: str = ""
    reasoning: str = ""  # a teacher's step-by-step trace, when the dataset has one


@dataclass(frozen=True)
class RunSpec:
    run_id: int
    name: str
    control_url: str
    model: ModelSpec
    train: TrainSpec
    resources: ResourcesSpec
    sandbox: SandboxSpec
    problems: tuple[Problem, ...]


def _parse_model(d: dict[str, Any]) -> ModelSpec:
    kind = _str(d, "model", "kind", "tiny")
    if kind not in ("tiny", "hf"):
        raise ValueError(f"model.kind: must be 'tiny' or 'hf' (got {kind!r})")
    path = d.get("path")
    if path is not None and not isinstance(path, str):
        raise ValueError(f"model.path: must be a string or null (got {path!r})")
    if kind == "hf" and not path:
        raise ValueError("model.path: required when model.kind is 'hf'")
    d_model = _int(d, "model", "d_model", 64, minimum=8)
    n_heads = _int(d, "model", "n_heads", 4, minimum=1)
    if d_model % n_heads:
        raise ValueError(f"model.n_heads: must divide model.d_model ({d_model} % {n_heads} != 0)")
    return ModelSpec(
        kind=kind,
        path=path,
        d_model=d_model,
        n_layers=_int(d, "model", "n_layers", 2, minimum=1),
        n_heads=n_heads,
        max_len=_int(d, "model", "max_len", 512, minimum=16),
    )


def _parse_train(d: dict[str, Any]) -> TrainSpec:
    p = "train"
    precision = _str(d, p, "precision", "fp32")
    if precision not in ("fp32", "bf16", "fp16"):
        raise ValueError(f"train.precision: must be one of fp32, bf16, fp16 (got {precision!r})")
    zero_stage = _int(d, p, "zero_stage", 0, minimum=0)
    if zero_stage > 3:
        raise ValueError(f"train.zero_stage: must be an integer in 0..3 (got {zero_stage!r})")
    clip_eps = _float(d, p, "clip_eps", 0.2, minimum=0.0, strict=True)
    if clip_eps >= 1.0:
        raise ValueError(f"train.clip_eps: must be a number in (0, 1) (got {clip_eps!r})")
    eval_samples = _int(d, p, "eval_samples", 8, minimum=1)
    eval_k = _int(d, p, "eval_k", 4, minimum=1)
    if eval_k > eval_samples:
        raise ValueError(f"train.eval_k: must be <= train.eval_samples ({eval_k} > {eval_samples})")
    eval_set = _str(d, p, "eval_set", "none")
    if eval_set != "none" and eval_set not in EVAL_SETS:
        known = ", ".join(["none", *EVAL_SETS])
        raise ValueError(f"train.eval_set: must be one of {known} (got {eval_set!r})")
    eval_set_problems = _int(d, p, "eval_set_problems", 20, minimum=0)
    if eval_set in EVAL_SETS and eval_set_problems > EVAL_SETS[eval_set]:
        raise ValueError(
            f"train.eval_set_problems: {eval_set} has {EVAL_SETS[eval_set]} problems "
            f"(got {eval_set_problems})"
        )
    weights = {
        key: _float(d, p, key, 1.0 if key == "reward_correctness" else 0.0, minimum=0.0)
        for key in REWARD_WEIGHT_KEYS
    }
    for key, value in weights.items():
        if not math.isfinite(value):
            raise ValueError(f"train.{key}: must be a finite number (got {value!r})")
    if not any(weights.values()):
        raise ValueError(
            "train.reward_correctness: at least one reward weight must be > 0 "
            f"({', '.join(weights)} are all 0)"
        )
    critic = _bool(d, p, "critic", False)
    critic_skip = _bool(d, p, "critic_skip", False)
    if critic_skip and not critic:
        raise ValueError("train.critic_skip: needs train.critic to be true")
    critic_threshold = _float(d, p, "critic_threshold", 0.95, minimum=0.5)
    critic_audit_frac = _float(d, p, "critic_audit_frac", 0.1, minimum=0.0, strict=True)
    critic_max_skip_frac = _float(d, p, "critic_max_skip_frac", 0.5, minimum=0.0)
    critic_max_audit_error = _float(d, p, "critic_max_audit_error", 0.05, minimum=0.0)
    for key, value in (
        ("critic_threshold", critic_threshold),
        ("critic_audit_frac", critic_audit_frac),
        ("critic_max_skip_frac", critic_max_skip_frac),
        ("critic_max_audit_error", critic_max_audit_error),
    ):
        if value > 1.0:
            raise ValueError(f"train.{key}: must be a number <= 1 (got {value!r})")
    return TrainSpec(
        steps=_int(d, p, "steps", 5, minimum=1),
        prompts_per_step=_int(d, p, "prompts_per_step", 2, minimum=1),
        group_size=_int(d, p, "group_size", 4, minimum=2),
        lr=_float(d, p, "lr", 1e-3, minimum=0.0, strict=True),
        seed=_int(d, p, "seed", 0, minimum=0),
        max_new_tokens=_int(d, p, "max_new_tokens", 48, minimum=1),
        temperature=_float(d, p, "temperature", 1.0, minimum=0.0, strict=True),
        beta=_float(d, p, "beta", 0.0, minimum=0.0),
        clip_eps=clip_eps,
        zero_stage=zero_stage,
        precision=precision,
        partial_credit=_bool(d, p, "partial_credit", False),
        sft_warmup_steps=_int(d, p, "sft_warmup_steps", 0, minimum=0),
        sft_lr=None if d.get("sft_lr") is None else _float(d, p, "sft_lr", 1e-3, minimum=0.0, strict=True),
        checkpoint_every=_int(d, p, "checkpoint_every", 0, minimum=0),
        reset_optimizer_after_sft=_bool(d, p, "reset_optimizer_after_sft", True),
        eval_every=_int(d, p, "eval_every", 0, minimum=0),
        eval_problems=_int(d, p, "eval_problems", 0, minimum=0),
        eval_samples=eval_samples,
        eval_k=eval_k,
        eval_temperature=None
        if d.get("eval_temperature") is None
        else _float(d, p, "eval_temperature", 1.0, minimum=0.0, strict=True),
        eval_set=eval_set,
        eval_set_problems=eval_set_problems,
        **weights,
        critic=critic,
        critic_skip=critic_skip,
        critic_threshold=critic_threshold,
        critic_audit_frac=critic_audit_frac,
        critic_max_skip_frac=critic_max_skip_frac,
        critic_min_labels=_int(d, p, "critic_min_labels", 256, minimum=0),
        critic_max_audit_error=critic_max_audit_error,
        sft_with_reasoning=_bool(d, p, "sft_with_reasoning", False),
    )


def _parse_problems(raw: Any) -> tuple[Problem, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError("problems: must be a non-empty list")
    out: list[Problem] = []
    for i, item in enumerate(raw):
        prefix = f"problems[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{prefix}: must be an object")
        solution = item.get("solution") or ""
        if not isinstance(solution, str):
            raise ValueError(f"{prefix}.solution: must be a string (got {solution!r})")
        reasoning = item.get("reasoning") or ""
        if not isinstance(reasoning, str):
            raise ValueError(f"{prefix}.reasoning: must be a string (got {type(reasoning).__name__})")
        out.append(
            Problem(
                task_id=_str(item, prefix, "task_id"),
                prompt=_str(item, prefix, "prompt"),
                entry_point=_str(item, prefix, "entry_point"),
                tests=_str(item, prefix, "tests"),
                solution=solution,
                reasoning=reasoning,
            )
        )
    return tuple(out)


def parse_spec(raw: Any) -> RunSpec:
    """Parse the spec JSON object; raises ValueError naming the offending field."""
    if not isinstance(raw, dict):
        raise ValueError("spec: must be a JSON object")
    run_id = raw.get("run_id")
    if isinstance(run_id, bool) or not isinstance(run_id, int):
        raise ValueError(f"run_id: must be an integer (got {run_id!r})")
    problems = _parse_problems(raw.get("problems"))
    train = _parse_train(_section(raw, "train"))
    if train.eval_problems >= len(problems):
        raise ValueError(
            f"train.eval_problems: must leave at least one training problem "
            f"({train.eval_problems} of {len(problems)} held out)"
        )
    res = _section(raw, "resources")
    sb = _section(raw, "sandbox")
    return RunSpec(
        run_id=run_id,
        name=_str(raw, "spec", "name", f"run-{run_id}"),
        control_url=_str(raw, "spec", "control_url", ""),
        model=_parse_model(_section(raw, "model")),
        train=train,
        resources=ResourcesSpec(
            num_nodes=_int(res, "resources", "num_nodes", 1, minimum=1),
            procs_per_node=_int(res, "resources", "procs_per_node", 1, minimum=1),
            gpu=_bool(res, "resources", "gpu", False),
        ),
        sandbox=SandboxSpec(
            timeout_s=_float(sb, "sandbox", "timeout_s", 2.0, minimum=0.0, strict=True),
            memory_mb=_int(sb, "sandbox", "memory_mb", 512, minimum=16),
        ),
        problems=problems,
    )


def load_spec(path: Path) -> RunSpec:
    with open(path, encoding="utf-8") as fh:
        return parse_spec(json.load(fh))
