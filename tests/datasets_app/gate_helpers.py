"""What the gate's tests share: problems and a CLI-shaped run_batch over the real sandbox."""

from __future__ import annotations

import dataclasses
from typing import Any

from datasets_app.parsing import ParsedProblem
from workers.sandbox import Item, Limits, run_batch

CLAMP_PROMPT = (
    "def clamp(x, lo, hi):\n"
    '    """Clamp x into the closed interval [lo, hi]: lo when x is below it, hi when x is above it,\n'
    '    and x itself otherwise."""\n'
)
CLAMP_SOLUTION = "    if x < lo:\n        return lo\n    if x > hi:\n        return hi\n    return x\n"
CLAMP_TESTS = (
    "def check(c):\n"
    "    assert c(5, 0, 10) == 5\n"
    "    assert c(-3, 0, 10) == 0\n"
    "    assert c(12, 0, 10) == 10\n"
    "    assert c(1, 0, 10) == 1\n"
    "    assert c(9, 0, 10) == 9\n"
)


def clamp(**changes: Any) -> ParsedProblem:
    problem = ParsedProblem(
        task_id="gen/0/0",
        prompt=CLAMP_PROMPT,
        entry_point="clamp",
        solution=CLAMP_SOLUTION,
        tests=CLAMP_TESTS,
    )
    return dataclasses.replace(problem, **changes)


def sandbox(limits: dict[str, Any]):
    """run_batch(items) -> results, CLI dicts in and out (as the sandbox.run_batch task), no cache."""

    def run(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results = run_batch([Item(**item) for item in items], Limits(**limits), cache=False)
        return [r.to_dict() for r in results]

    return run


def as_program(problem: ParsedProblem, *, cases: list[tuple[str, str]], compare: str) -> Any:
    """A program problem, whether or not ParsedProblem has the program fields yet (contract §1)."""
    names = {f.name for f in dataclasses.fields(problem)}
    if "kind" in names:
        return dataclasses.replace(problem, kind="program", cases=tuple(cases), compare=compare)  # type: ignore[call-arg]
    return _Program(problem, tuple(cases), compare)


class _Program:
    def __init__(self, base: ParsedProblem, cases: tuple[tuple[str, str], ...], compare: str) -> None:
        self._base, self.cases, self.compare, self.kind = base, cases, compare, "program"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)
