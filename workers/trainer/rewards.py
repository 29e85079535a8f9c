"""Score completions by running them in the sandbox against the problem's tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from workers.trainer.spec import Problem, SandboxSpec

ERROR_CLASSES: tuple[str, ...] = (
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
INFRA_ERROR = "sandbox_error"


@dataclass(frozen=True)
class Score:
    reward: float
    valid: bool  # False for sandbox_error: the infrastructure failed, the sample is masked out
    passed: bool
    error_class: str
    tests_passed: int
    tests_total: int
    duration_ms: int
    stdout: str
    stderr: str


def reward_from_result(
    passed: bool, error_class: str, tests_passed: int, tests_total: int, *, partial_credit: bool
) -> tuple[float, bool]:
    """Return (reward, valid). sandbox_error is not the model's fault: invalid, reward 0 but masked."""
    if error_class == INFRA_ERROR:
        return 0.0, False
    if passed:
        return 1.0, True
    if partial_credit and tests_total > 0:
        return max(0.0, min(1.0, tests_passed / tests_total)), True
    return 0.0, True


RunBatch = Callable[[list[Any], Any], list[Any]]


def _real_sandbox() -> tuple[type[Any], type[Any], RunBatch]:
    from workers.sandbox import Item, Limits, run_batch

    return Item, Limits, run_batch


def score_completions(
    problems: Sequence[Problem],
    completions: Sequence[Sequence[str]],
    *,
    sandbox: SandboxSpec,
    partial_credit: bool,
    retries: int = 1,
) -> list[list[Score]]:
    """Score completions[i][j] (j-th sample for problems[i]); sandbox_error items are retried once."""
    item_cls, limits_cls, run_batch = _real_sandbox()
    limits = limits_cls(timeout_s=sandbox.timeout_s, memory_mb=sandbox.memory_mb)
    keys: list[tuple[int, int]] = []
    items: list[Any] = []
    for i, (problem, group) in enumerate(zip(problems, completions, strict=True)):
        for j, text in enumerate(group):
            keys.append((i, j))
            items.append(
                item_cls(
                    id=f"{problem.task_id}#{j}",
                    code=problem.prompt + text,
                    tests=problem.tests,
                    entry_point=problem.entry_point,
                )
            )
    results: list[Any] = list(run_batch(items, limits)) if items else []
    for _ in range(retries):
        redo = [k for k, r in enumerate(results) if r.error_class == INFRA_ERROR]
        if not redo:
            break
        again = run_batch([items[k] for k in redo], limits)
        for k, r in zip(redo, again, strict=True):
            results[k] = r
    out: list[list[Score]] = [[] for _ in problems]
    for (i, _j), r in zip(keys, results, strict=True):
        reward, valid = reward_from_result(
            bool(r.passed),
            str(r.error_class),
            int(r.tests_passed),
            int(r.tests_total),
            partial_credit=partial_credit,
        )
        out[i].append(
            Score(
                reward=reward,
                valid=valid,
                passed=bool(r.passed),
                error_class=str(r.error_class),
                tests_passed=int(r.tests_passed),
                tests_total=int(r.tests_total),
                duration_ms=int(r.duration_ms),
                stdout=str(r.stdout),
                stderr=str(r.stderr),
            )
        )
    return out
