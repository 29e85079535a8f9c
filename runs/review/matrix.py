"""The compare page's test-by-test matrix, computed on a sandbox worker: the tests split into single
asserts, each of the three programs (A, B, reference) run against each (`compare_matrix_run`, no database:
the programs and tests come in the task's message), and the rows sent back to the control queue, which
stores them on the matrix (`compare_matrix_record`).

Runs untrusted code (through the sandbox): only the sandbox queue's task calls it, never a web request.
"""

from __future__ import annotations

import ast
import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from runs.review.models import CompareMatrix, MatrixStatus

logger = logging.getLogger(__name__)

MATRIX_ROWS_MAX = 100  # asserts a matrix shows; the rest are counted as left out
SOURCE_CAP = 300  # characters of an assert shown in its row


@dataclass(frozen=True)
class AssertCase:
    source: str  # the assert (or the statement holding asserts) as the row shows it
    tests: str  # a whole test program in the same style that runs only this assert


def _has_assert(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Assert) for n in ast.walk(node))


def _one_at_a_time(body: list[ast.stmt]) -> list[tuple[ast.stmt, list[ast.stmt]]]:
    """For each statement of body that holds an assert: the body with every other assert-holding
    statement dropped (set-up statements before it are kept, in order)."""
    out = []
    for i, stmt in enumerate(body):
        if _has_assert(stmt):
            out.append((stmt, [s for s in body[:i] if not _has_assert(s)] + [stmt]))
    return out


def split_asserts(tests: str) -> list[AssertCase]:
    """Split tests into one program per assert, in the style the sandbox runs.

    HumanEval style (a `check(candidate)` function): check is rewritten once per assert-holding
    statement of its body, keeping the rest of the module (imports, helpers) and the set-up statements
    before it; a loop of asserts is one row. MBPP style (top-level asserts): one program per top-level
    assert-holding statement, with the top-level set-up before it. Tests that do not parse give []."""
    try:
        tree = ast.parse(tests)
    except (SyntaxError, ValueError):
        return []
    checks = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    cases: list[AssertCase] = []
    if checks:
        check = checks[-1]
        for stmt, body in _one_at_a_time(check.body):
            rewritten = copy.copy(check)  # same name, arguments and decorators; one assert
            rewritten.body = body
            module = ast.Module(body=[rewritten if n is check else n for n in tree.body], type_ignores=[])
            cases.append(AssertCase(_source(tests, stmt), ast.unparse(module)))
    else:
        for stmt, body in _one_at_a_time(tree.body):
            cases.append(
                AssertCase(_source(tests, stmt), ast.unparse(ast.Module(body=body, type_ignores=[])))
            )
    return cases


def _source(tests: str, stmt: ast.stmt) -> str:
    text = ast.get_source_segment(tests, stmt) or ast.unparse(stmt)
    return text if len(text) <= SOURCE_CAP else text[: SOURCE_CAP - 1] + "…"


@dataclass(frozen=True)
class Cell:
    passed: bool | None  # None: the sandbox itself failed
    error_class: str


@dataclass(frozen=True)
class MatrixRow:
    source: str
    a: Cell
    b: Cell
    reference: Cell

    @property
    def cells(self) -> tuple[Cell, Cell, Cell]:
        return (self.a, self.b, self.reference)

    def as_dict(self) -> dict[str, object]:
        """As `CompareMatrix.rows` stores it (and the template reads it)."""
        return {
            "source": self.source,
            "cells": [{"passed": c.passed, "error_class": c.error_class} for c in self.cells],
        }


def compare_matrix_run(*, programs: Sequence[str], tests: str, entry_point: str) -> dict[str, Any]:
    """On a sandbox worker, no database: the matrix of these programs against these tests, as the
    control queue's `compare_matrix_record` takes it: `{"rows", "truncated", "error"}` (an error, the
    sandbox's refusal say, leaves no rows)."""
    try:
        rows, truncated = compare_matrix_rows(programs=programs, tests=tests, entry_point=entry_point)
    except Exception as exc:  # the sandbox refused (no isolation here) or the task ran out of time
        logger.exception("compare matrix failed")
        return {"rows": [], "truncated": 0, "error": f"The sandbox could not run the tests: {exc}"[:2000]}
    return {"rows": [row.as_dict() for row in rows], "truncated": truncated, "error": ""}


def compare_matrix_record(*, matrix_id: int, outcome: Mapping[str, Any]) -> bool:
    """On the control queue, what a sandbox worker sent back stored on the matrix: done with its rows, or
    failed with its error. Idempotent: only a pending (or running) matrix is updated, so a repeated
    delivery keeps what the first stored. True when this call stored it."""
    pending = CompareMatrix.objects.filter(
        pk=matrix_id, status__in=(MatrixStatus.PENDING, MatrixStatus.RUNNING)
    )
    if outcome.get("error"):
        fields: dict[str, Any] = {"status": MatrixStatus.FAILED, "error": str(outcome["error"])[:2000]}
    else:
        fields = {
            "status": MatrixStatus.DONE,
            "rows": list(outcome["rows"]),
            "truncated": int(outcome["truncated"]),
        }
    return pending.update(**fields, finished_at=timezone.now()) == 1


def compare_matrix_rows(
    *, programs: Sequence[str], tests: str, entry_point: str
) -> tuple[list[MatrixRow], int]:
    """Run each program (A, B, reference) against the tests split into single asserts, in the sandbox
    with its default limits (through its result cache). Returns the rows (at most MATRIX_ROWS_MAX) and
    how many asserts were left out. Runs untrusted code: call it only on a sandbox worker."""
    from workers.sandbox import Item, Limits, run_batch

    cases = split_asserts(tests)
    truncated = max(0, len(cases) - MATRIX_ROWS_MAX)
    cases = cases[:MATRIX_ROWS_MAX]
    items = [
        Item(id=f"{col}:{k}", code=code, tests=case.tests, entry_point=entry_point)
        for col, code in enumerate(programs)
        for k, case in enumerate(cases)
    ]
    results = run_batch(items, Limits()) if items else []

    def cell(col: int, k: int) -> Cell:
        r = results[col * len(cases) + k]
        return Cell(None if r.error_class == "sandbox_error" else bool(r.passed), str(r.error_class))

    rows = [MatrixRow(case.source, cell(0, k), cell(1, k), cell(2, k)) for k, case in enumerate(cases)]
    return rows, truncated
