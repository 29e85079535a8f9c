"""The generation gate: what a candidate problem must pass before it joins a generated version.

Plain Python, no Django: the caller brings the corpus (``datasets_app.corpus.team_corpus``) and runs the
sandbox items (on the sandbox queue). For each candidate, in this order:

1. Contamination and duplicates, from text alone (``Gate.precheck``; no sandbox needed): the same
   normalised prompt + solution as a corpus entry is ``duplicate``, an estimated Jaccard similarity of
   at least ``near_threshold`` (MinHash, ``datasets_app.dedup``) is ``near_duplicate``; either one
   against a benchmark entry (HumanEval, a shared-area dataset), or a HumanEval 10-gram overlap of at
   least 0.5 (``analysis.humaneval_overlap``), is ``contaminated``. The corpus holds the job's own
   accepted problems too: every accepted candidate is added to it.
2. The reference, run ``1 + reruns`` times (each a distinct sandbox item, so no result cache can answer
   for another): failing every time is ``reference_fails``; passing some times and not others is
   ``flaky``. A sandbox error on any of them is ``sandbox_error`` (the infrastructure, not the problem).
3. The mutants (``datasets_app.mutants``, one sandbox item for all): the share the tests kill is the
   mutation score; below ``min_mutation_score`` is ``weak_tests``, naming the survivors.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from datasets_app.analysis import humaneval_overlap
from datasets_app.dedup import NEAR_DUPLICATE_JACCARD, DedupIndex
from datasets_app.mutants import (
    Mutant,
    harness_report,
    mutant_item,
    mutants,
    mutation_score,
    reference_source,
)

REJECT_REASONS = (
    "malformed",
    "schema",
    "reference_fails",
    "flaky",
    "weak_tests",
    "duplicate",
    "near_duplicate",
    "contaminated",
    "sandbox_error",
    "timeout",
)
DEFAULT_MIN_MUTATION_SCORE = 0.5
MUTANT_LIMIT = 12
_SURVIVORS_SHOWN = 5


@dataclass(frozen=True)
class GateVerdict:
    accepted: bool
    reason: str  # "" when accepted, else one of REJECT_REASONS
    detail: str  # a sentence for people
    mutation_score: float | None = None
    cpu_ms: int | None = None  # the reference's CPU time (median of its passing runs)
    near: str = ""  # the corpus key it duplicates or is contaminated with, or ""
    survivors: tuple[str, ...] = field(default=())  # descriptions of the mutants the tests let through


def problem_text(problem: Any) -> str:
    """What duplicates are judged on: the statement and the reference."""
    return f"{problem.prompt}\n{problem.solution}"


def _is_program(problem: Any) -> bool:
    return (getattr(problem, "kind", "function") or "function") == "program"


def _reject(reason: str, detail: str, **fields: Any) -> GateVerdict:
    assert reason in REJECT_REASONS, reason
    return GateVerdict(accepted=False, reason=reason, detail=detail, **fields)


class Gate:
    """Judges candidates against ``corpus`` (which it extends with each accepted one)."""

    def __init__(
        self,
        corpus: DedupIndex,
        *,
        timeout_s: float = 10.0,
        memory_mb: int = 512,
        reruns: int = 2,
        min_mutation_score: float = DEFAULT_MIN_MUTATION_SCORE,
        near_threshold: float = NEAR_DUPLICATE_JACCARD,
        mutant_limit: int = MUTANT_LIMIT,
    ) -> None:
        if reruns < 1:
            raise ValueError("reruns must be >= 1: flakiness needs a second run")
        if not 0.0 <= min_mutation_score <= 1.0:
            raise ValueError("min_mutation_score must be within [0, 1]")
        self.corpus = corpus
        self.timeout_s = float(timeout_s)
        self.memory_mb = int(memory_mb)
        self.reruns = reruns
        self.min_mutation_score = min_mutation_score
        self.near_threshold = near_threshold
        self.mutant_limit = mutant_limit
        self._mutants: dict[str, list[Mutant]] = {}

    @property
    def limits(self) -> dict[str, Any]:
        """The batch limits the gate's items are meant to run under (CLI ``limits``)."""
        return {"timeout_s": self.timeout_s, "memory_mb": self.memory_mb}

    # --- 1. text alone -----------------------------------------------------------------------------------
    def precheck(self, problem: Any, key: str) -> GateVerdict | None:
        """A rejection found from the text alone (contaminated, duplicate, near_duplicate), or None."""
        text = problem_text(problem)
        same = self.corpus.exact(text)
        if same is not None and same != key:
            if same in self.corpus.benchmarks:
                return _reject("contaminated", f"It is benchmark problem {same}, word for word.", near=same)
            return _reject("duplicate", f"It is {same}, word for word.", near=same)
        for other, score in self.corpus.query(text, threshold=self.near_threshold):
            if other == key:
                continue
            if other in self.corpus.benchmarks:
                return _reject(
                    "contaminated",
                    f"It nearly copies benchmark problem {other} (similarity {score:.2f}).",
                    near=other,
                )
            return _reject(
                "near_duplicate", f"It nearly copies {other} (similarity {score:.2f}).", near=other
            )
        found = humaneval_overlap(problem.prompt, problem.solution)
        if found is not None:
            return _reject(
                "contaminated",
                f"{found.score:.0%} of its 10-token sequences come from {found.task_id}.",
                near=found.task_id,
            )
        return None

    # --- 2 and 3. the sandbox --------------------------------------------------------------------------
    def mutants_of(self, problem: Any) -> list[Mutant]:
        """The reference's mutants (deterministic), kept from sandbox_items until decide."""
        source = reference_source(problem)
        if source not in self._mutants:
            self._mutants[source] = mutants(source, limit=self.mutant_limit)
        return self._mutants[source]

    def sandbox_items(self, problem: Any, key: str) -> list[dict[str, Any]]:
        """The reference run, its ``reruns`` re-runs, then the one mutant item (CLI item dicts)."""
        code = reference_source(problem)
        label = "".join(ch for ch in key if ch.isprintable())  # no line break may end the comment early
        items = []
        for run in range(1 + self.reruns):
            # A comment makes each run a distinct item: the sandbox's result cache must not answer a
            # re-run with the first run's verdict.
            item: dict[str, Any] = {
                "id": f"{key}#ref{run}",
                "code": f"{code}\n# triad gate: {label} run {run}\n",
                "tests": problem.tests,
                "entry_point": problem.entry_point,
            }
            if _is_program(problem):
                item["kind"] = "program"
                item["cases"] = [
                    {"input": c[0], "output": c[1]} if not isinstance(c, dict) else c for c in problem.cases
                ]
                item["compare"] = getattr(problem, "compare", "") or "whitespace"
                item["tests"] = ""
                item["entry_point"] = ""
            items.append(item)
        budget = max(0.5, 0.8 * self.timeout_s - 0.3)  # the harness must report before the item's limit
        items.append(
            mutant_item(
                problem,
                self.mutants_of(problem),
                item_id=f"{key}#mutants",
                budget_s=budget,
                per_mutant_s=min(2.0, budget / 2),
            )
        )
        return items

    def decide(self, problem: Any, key: str, results: list[dict[str, Any]]) -> GateVerdict:
        """The verdict from the results of ``sandbox_items(problem, key)``, in the same order.

        An accepted problem is added to the corpus under ``key``.
        """
        expected = 2 + self.reruns
        if len(results) != expected:
            raise ValueError(f"decide: expected {expected} results for {key}, got {len(results)}")
        early = self.precheck(problem, key)  # the corpus may have grown since the items were made
        if early is not None:
            return early
        refs, harness = results[:-1], results[-1]
        broken = [r for r in results if r.get("error_class") == "sandbox_error"]
        if broken:
            why = str(broken[0].get("stderr", "")).strip().splitlines()[-1:] or ["no detail"]
            return _reject("sandbox_error", f"The sandbox failed on {broken[0].get('id')}: {why[0][:200]}")
        passed = [bool(r.get("passed")) for r in refs]
        if not any(passed):
            first = refs[0]
            where = f" at {first['failing_test'][:200]}" if first.get("failing_test") else ""
            return _reject(
                "reference_fails",
                f"The reference fails its tests ({first.get('error_class')}{where}; "
                f"{first.get('tests_passed', 0)}/{first.get('tests_total', 0)} passed).",
            )
        cpu = [float(r.get("cpu_ms") or 0.0) for r in refs if r.get("passed")]
        cpu_ms = round(statistics.median(cpu)) if cpu else None
        if not all(passed):
            failed = next(r for r in refs if not r.get("passed"))
            return _reject(
                "flaky",
                f"The reference passed {sum(passed)} of {len(passed)} identical runs "
                f"(another ended {failed.get('error_class')}).",
                cpu_ms=cpu_ms,
            )
        found = self.mutants_of(problem)
        self._mutants.pop(reference_source(problem), None)
        report = mutation_score(harness, found)
        if report.error:
            if (harness_report(harness) or {}).get("reference") == "killed":
                # It passed every run above and then failed its own tests here: chance or time decides.
                return _reject(
                    "flaky",
                    f"The reference passed {len(passed)} identical runs, then failed its tests in the mutant "
                    "run: the tests or the reference depend on chance or time.",
                    cpu_ms=cpu_ms,
                )
            return _reject("sandbox_error", report.error[0].upper() + report.error[1:] + ".", cpu_ms=cpu_ms)
        score: float | None = report.score if report.total else None
        if score is not None and score < self.min_mutation_score:
            shown = "; ".join(report.survivors[:_SURVIVORS_SHOWN])
            more = len(report.survivors) - _SURVIVORS_SHOWN
            return _reject(
                "weak_tests",
                f"The tests kill {report.killed} of {report.total} mutants of the reference "
                f"(score {report.score:.2f} < {self.min_mutation_score:.2f}); survivors: {shown}"
                + (f" and {more} more" if more > 0 else "")
                + ".",
                mutation_score=score,
                cpu_ms=cpu_ms,
                survivors=tuple(report.survivors),
            )
        self.corpus.add(key, problem_text(problem))
        detail = (
            f"Accepted: the reference passed {len(passed)} runs; the tests kill {report.killed} of "
            f"{report.total} mutants."
            if report.total
            else f"Accepted: the reference passed {len(passed)} runs; no mutant could be made of it."
        )
        return GateVerdict(
            accepted=True,
            reason="",
            detail=detail,
            mutation_score=score,
            cpu_ms=cpu_ms,
            survivors=tuple(report.survivors),
        )

    def check(
        self,
        problems: Sequence[Any],
        run_batch: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
        *,
        keys: Sequence[str] | None = None,
    ) -> list[GateVerdict]:
        """Verdicts for ``problems`` (keys: their task ids unless given), running their items in ONE
        ``run_batch`` call (CLI item dicts in, CLI result dicts out, in order, under ``self.limits``).
        Candidates rejected from their text alone run nothing."""
        names = list(keys) if keys is not None else [p.task_id for p in problems]
        if len(names) != len(problems):
            raise ValueError("check: one key per problem")
        early = [self.precheck(p, k) for p, k in zip(problems, names, strict=True)]
        items: list[dict[str, Any]] = []
        spans: dict[int, tuple[int, int]] = {}
        for i, (p, k) in enumerate(zip(problems, names, strict=True)):
            if early[i] is None:
                made = self.sandbox_items(p, k)
                spans[i] = (len(items), len(items) + len(made))
                items.extend(made)
        results = run_batch(items) if items else []
        if len(results) != len(items):
            raise ValueError(f"check: run_batch returned {len(results)} results for {len(items)} items")
        verdicts = []
        for i, (p, k) in enumerate(zip(problems, names, strict=True)):
            verdict = early[i]
            if verdict is None:
                lo, hi = spans[i]
                verdict = self.decide(p, k, results[lo:hi])
            verdicts.append(verdict)
        return verdicts
