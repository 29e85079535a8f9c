"""Reward components beyond pass/fail: efficiency, style and format (docs/trainer.md, "Rewards").

A sample's reward is the weighted sum of its component scores, each in [0, 1]:

- ``correctness``: the sandbox verdict (``rewards.reward_from_result``: 1 if every test passed, else 0,
  or the share of tests passed with ``partial_credit``).
- ``efficiency``: the candidate's CPU time in the sandbox against the reference solution's on the same
  tests, ``min(1, (ref + slack) / (candidate + slack))``; 0 unless the candidate passed.
- ``style``: static findings on the completion (unused imports and variables, bare ``except``, a
  complexity or length far beyond the reference's), ``max(0, 1 - 0.25 * findings)``; 0 if it does not
  parse.
- ``format``: 1 if prompt + completion parses and defines the entry point with a body, else 0.

Style and format run in the trusted process on ``ast`` trees: the generated code is parsed, never
executed. Efficiency times come from the sandbox only.
"""

from __future__ import annotations

import ast
import math
import statistics
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from workers.spec import REWARD_COMPONENTS, SETTINGS

COMPONENTS: tuple[str, ...] = REWARD_COMPONENTS  # named in workers.spec, with their weight settings
EFFICIENCY_SLACK_MS = 1.0  # added to both times: sub-millisecond differences are noise, not inefficiency
REFERENCE_RUNS = 3  # the reference's time is the median of this many sandbox runs
STYLE_PENALTY = 0.25  # per finding
COMPLEXITY_LIMIT = 10  # cyclomatic complexity always allowed; beyond, up to twice the reference's
LENGTH_LIMIT = 10  # code lines always allowed; beyond, up to twice the reference's

_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


# --------------------------------------------------------------------------- parsing
@lru_cache(maxsize=4096)
def parse_program(source: str) -> ast.Module | None:
    """The module's tree, or None when it does not parse (the text is never compiled to bytecode)."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def entry_function(tree: ast.Module, entry_point: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The module-level definition of entry_point (the last one, as at run time)."""
    found: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    for node in tree.body:
        if isinstance(node, _FUNCTIONS) and node.name == entry_point:
            found = node
    return found


def _is_docstring(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _is_placeholder(node: ast.stmt) -> bool:
    return isinstance(node, ast.Pass) or (
        isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and node.value.value is Ellipsis
    )


def has_body(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Does the function hold a statement beyond its docstring, `pass` and `...`?"""
    body = fn.body[1:] if fn.body and _is_docstring(fn.body[0]) else fn.body
    return any(not _is_placeholder(stmt) for stmt in body)


# --------------------------------------------------------------------------- format
def format_score(prompt: str, completion: str, entry_point: str) -> float:
    """1.0 if prompt + completion parses and defines entry_point with a body (any parse, when the
    problem names no entry point), else 0.0."""
    tree = parse_program(prompt + completion)
    if tree is None:
        return 0.0
    if not entry_point:
        return 1.0
    fn = entry_function(tree, entry_point)
    return 1.0 if fn is not None and has_body(fn) else 0.0


# --------------------------------------------------------------------------- style
def cyclomatic_complexity(node: ast.AST) -> int:
    """McCabe's number: 1 + the decision points under node (branches, loops, handlers, boolean
    operators, comprehension clauses, match cases)."""
    cc = 1
    for n in ast.walk(node):
        if isinstance(n, (ast.If, ast.IfExp, ast.For, ast.AsyncFor, ast.While, ast.ExceptHandler)):
            cc += 1
        elif isinstance(n, ast.BoolOp):
            cc += len(n.values) - 1
        elif isinstance(n, ast.comprehension):
            cc += 1 + len(n.ifs)
        elif isinstance(n, ast.match_case):
            cc += 1
    return cc


def code_lines(text: str) -> int:
    """Lines holding code: not blank, not only a comment."""
    return sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#"))


def _own_scope(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.AST]:
    """The nodes of fn's body that belong to its own scope (not to nested functions or classes)."""
    stack: list[ast.AST] = list(fn.body)
    while stack:
        node = stack.pop()
        yield node
        stack.extend(c for c in ast.iter_child_nodes(node) if not isinstance(c, _SCOPES))


def _unused_variables(fn: ast.FunctionDef | ast.AsyncFunctionDef, first_line: int) -> list[str]:
    """Names fn binds by assignment (in the completion's lines) and never reads anywhere inside it."""
    read: set[str] = set()
    for n in ast.walk(fn):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Load, ast.Del)):
            read.add(n.id)
        elif isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name):
            read.add(n.target.id)
    declared: set[str] = set()
    bound: dict[str, int] = {}
    for n in _own_scope(fn):
        targets: list[ast.expr] = []
        if isinstance(n, (ast.Global, ast.Nonlocal)):
            declared.update(n.names)
        elif isinstance(n, ast.Assign):
            targets = list(n.targets)
        elif (isinstance(n, ast.AnnAssign) and n.value is not None) or isinstance(n, ast.NamedExpr):
            targets = [n.target]
        line = int(getattr(n, "lineno", 0))
        for t in targets:
            if isinstance(t, ast.Name) and line >= first_line:
                bound.setdefault(t.id, line)
    return [
        f"unused-variable {name!r} (line {line})"
        for name, line in sorted(bound.items(), key=lambda kv: kv[1])
        if name not in read and name not in declared and not name.startswith("_")
    ]


@dataclass(frozen=True)
class StyleReport:
    score: float
    findings: tuple[str, ...]


@lru_cache(maxsize=1024)
def _reference_shape(prompt: str, solution: str, entry_point: str) -> tuple[int, int]:
    """(complexity of the reference's entry point, its code lines); (0, 0) without a usable one."""
    if not solution:
        return 0, 0
    tree = parse_program(prompt + solution)
    fn = entry_function(tree, entry_point) if tree is not None and entry_point else None
    complexity = cyclomatic_complexity(fn) if fn is not None else 0
    return complexity, code_lines(solution)


def style_report(prompt: str, completion: str, entry_point: str, reference: str = "") -> StyleReport:
    """Static findings on the completion's own lines of prompt + completion; the prompt's are not
    the model's to answer for."""
    tree = parse_program(prompt + completion)
    if tree is None:
        return StyleReport(0.0, ("syntax-error",))
    first_line = prompt.count("\n") + 1
    findings: list[str] = []
    read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Store)}
    for n in ast.walk(tree):
        if isinstance(n, (ast.Import, ast.ImportFrom)) and n.lineno >= first_line:
            for alias in n.names:
                name = alias.asname or alias.name.split(".")[0]
                if name != "*" and name not in read:
                    findings.append(f"unused-import {name!r} (line {n.lineno})")
        elif isinstance(n, ast.ExceptHandler) and n.type is None and n.lineno >= first_line:
            findings.append(f"bare-except (line {n.lineno})")
        elif isinstance(n, _FUNCTIONS) and n.end_lineno is not None and n.end_lineno >= first_line:
            findings.extend(_unused_variables(n, first_line))
    ref_complexity, ref_lines = _reference_shape(prompt, reference, entry_point)
    fn = entry_function(tree, entry_point) if entry_point else None
    if fn is not None:
        complexity = cyclomatic_complexity(fn)
        limit = max(COMPLEXITY_LIMIT, 2 * ref_complexity)
        if complexity > limit:
            findings.append(f"too-complex {complexity} > {limit}")
    if ref_lines:
        lines, limit = code_lines(completion), max(LENGTH_LIMIT, 2 * ref_lines)
        if lines > limit:
            findings.append(f"too-long {lines} lines > {limit}")
    return StyleReport(max(0.0, 1.0 - STYLE_PENALTY * len(findings)), tuple(findings))


# --------------------------------------------------------------------------- efficiency
def efficiency_score(passed: bool, cpu_ms: float, reference_ms: float | None) -> float:
    """min(1, (reference + slack) / (candidate + slack)) with the candidate's time past the reference's
    counted in whole slacks (rounded down); 0 unless the candidate passed; 1 for a passing candidate
    when there is no reference time to compare against.

    The rounding is a dead band: every candidate within one slack of the reference scores exactly 1,
    so in a group of equally good programs timing noise cannot make the scores (and, after the
    group's std scaling, the advantages) differ."""
    if not passed:
        return 0.0
    if reference_ms is None:
        return 1.0
    excess = EFFICIENCY_SLACK_MS * math.floor(max(0.0, cpu_ms - reference_ms) / EFFICIENCY_SLACK_MS)
    return min(1.0, (reference_ms + EFFICIENCY_SLACK_MS) / (reference_ms + excess + EFFICIENCY_SLACK_MS))


class ReferenceTimes:
    """The reference solution's CPU time per problem in the sandbox: the median of REFERENCE_RUNS
    runs, measured the first time a problem is met and kept for the process's life. None when the
    problem has no reference or it does not pass its tests."""

    def __init__(self) -> None:
        self._ms: dict[str, float | None] = {}

    def get(self, task_id: str) -> float | None:
        return self._ms.get(task_id)

    def ensure(self, problems: Sequence[Any], *, item_cls: Any, limits: Any, run_batch: Any) -> None:
        todo = {p.task_id: p for p in problems if p.task_id not in self._ms}
        if not todo:
            return
        items = [
            item_cls(id=f"{p.task_id}#reference{r}", code=p.prompt + p.solution, **sandbox_fields(p))
            for p in todo.values()
            if p.solution
            for r in range(REFERENCE_RUNS)
        ]
        results = list(run_batch(items, limits, cache=False)) if items else []
        runs: dict[str, list[Any]] = {}
        for item, result in zip(items, results, strict=True):
            runs.setdefault(item.id.rsplit("#reference", 1)[0], []).append(result)
        for task_id in todo:
            got = runs.get(task_id, [])
            ok = bool(got) and all(r.passed for r in got)
            self._ms[task_id] = statistics.median(float(r.cpu_ms) for r in got) if ok else None


def sandbox_fields(problem: Any) -> dict[str, Any]:
    """What a sandbox item needs of a problem beside its code: a function's tests and entry point, or
    a program's cases and comparison (docs/sandbox.md, "Program items")."""
    if getattr(problem, "kind", "function") == "program":
        return {
            "tests": "",
            "kind": "program",
            "cases": problem.cases,
            "compare": problem.compare or "whitespace",
        }
    return {"tests": problem.tests, "entry_point": problem.entry_point}


# --------------------------------------------------------------------------- weights
def weights_active(weights: Mapping[str, float]) -> dict[str, float]:
    """The components that count, in COMPONENTS order."""
    return {c: float(weights[c]) for c in COMPONENTS if weights.get(c, 0.0)}


def weighted_reward(weights: Mapping[str, float], scores: Mapping[str, float]) -> float:
    """sum(weight * score) over the weighted components."""
    return sum(w * scores[c] for c, w in weights_active(weights).items())


AUX_GATES = SETTINGS["reward_aux_gate"].choices  # "pass", "correctness", "none"
GATED = ("style", "format")  # the components a stub can earn without solving anything


def gate_factor(gate: str, *, passed: bool, correctness: float) -> float:
    """What style and format are multiplied by in the reward (docs/trainer.md, "Rewards"): 1 for a
    passing sample and 0 otherwise ("pass"), the correctness score ("correctness"), always 1 ("none")."""
    if gate == "pass":
        return 1.0 if passed else 0.0
    if gate == "correctness":
        return correctness
    if gate == "none":
        return 1.0
    raise ValueError(f"reward_aux_gate: must be one of {', '.join(AUX_GATES)}, got {gate!r}")


def gated(scores: Mapping[str, float], factor: float) -> dict[str, float]:
    """The scores with style and format multiplied by the gate's factor; the others as they are."""
    return {c: v * factor if c in GATED else v for c, v in scores.items()}
