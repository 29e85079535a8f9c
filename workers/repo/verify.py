"""The execution gate for a repository task (datasets call it before a task is used).

`runs` times each: a fresh workspace with the reference patch and the test patch (FAIL_TO_PASS and
PASS_TO_PASS must pass), and one with the test patch only (FAIL_TO_PASS must not pass). The verdict:

- flaky: some test's outcome differs between runs of the same condition (checked first; the runs
  stop at the first disagreement);
- failing: with the fix some FAIL_TO_PASS or PASS_TO_PASS test does not pass, or a patch does not
  apply, or the snapshot does not extract;
- weak_tests: without the fix some FAIL_TO_PASS test already passes;
- verified: otherwise.

`error_class` is "sandbox_error" when the infrastructure failed (the status then says nothing
about the task: retry), else "".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workers.sandbox import SandboxUnavailable

from .patching import PatchError, apply_patch
from .task import RepoTask
from .testrun import TestRun, capped, run_tests
from .workspace import SnapshotError, Workspace

EVIDENCE_OUTPUT_CAP = 2000


@dataclass(frozen=True)
class RepoVerdict:
    status: str  # verified | failing | flaky | weak_tests
    evidence: dict[str, Any]
    error_class: str  # "sandbox_error" when the infrastructure failed, else ""


class _Broken(Exception):
    """The task itself cannot be run (a patch or the snapshot): it is failing."""


def _run(task: RepoTask, with_fix: bool, timeout_s: float) -> TestRun:
    with Workspace.create(task.snapshot) as ws:
        if with_fix:
            try:
                apply_patch(ws.root, task.patch)
            except PatchError as e:
                raise _Broken(f"the reference patch does not apply: {e}") from None
        try:
            apply_patch(ws.root, task.test_patch)
        except PatchError as e:
            raise _Broken(f"the test patch does not apply: {e}") from None
        return run_tests(
            ws.root, [*task.fail_to_pass, *task.pass_to_pass], runner=task.runner, timeout_s=timeout_s
        )


def verify_task(task: RepoTask, *, runs: int = 2, timeout_s: float = 60.0) -> RepoVerdict:
    """Run the gate on task (see the module's docstring)."""
    if runs < 1:
        raise ValueError("runs must be >= 1")
    seen: dict[str, dict[str, list[str]]] = {"with_fix": {}, "without_fix": {}}
    outputs: dict[str, str] = {}
    flaky: list[str] = []
    try:
        for _ in range(runs):
            for condition in ("with_fix", "without_fix"):
                run = _run(task, condition == "with_fix", timeout_s)
                if run.error_class == "sandbox_error":
                    infra = {"error": capped(run.output, EVIDENCE_OUTPUT_CAP), "condition": condition}
                    return RepoVerdict("failing", infra, "sandbox_error")
                outputs.setdefault(condition, capped(run.output, EVIDENCE_OUTPUT_CAP))
                for tid, outcome in run.outcomes.items():
                    seen[condition].setdefault(tid, []).append(outcome)
            flaky = sorted(
                {tid for cond in seen.values() for tid, outcomes in cond.items() if len(set(outcomes)) > 1}
            )
            if flaky:
                break
    except _Broken as e:
        return RepoVerdict("failing", {"error": str(e)}, "")
    except SnapshotError as e:
        return RepoVerdict("failing", {"error": str(e)}, "")
    except SandboxUnavailable as e:
        return RepoVerdict("failing", {"error": str(e)}, "sandbox_error")
    with_fix = {tid: outcomes[-1] for tid, outcomes in seen["with_fix"].items()}
    without_fix = {tid: outcomes[-1] for tid, outcomes in seen["without_fix"].items()}
    not_fixed = [t for t in (*task.fail_to_pass, *task.pass_to_pass) if with_fix.get(t) != "passed"]
    weak = [t for t in task.fail_to_pass if without_fix.get(t) == "passed"]
    evidence: dict[str, Any] = {
        "runs": len(next(iter(seen["with_fix"].values()), [])),
        "with_fix": seen["with_fix"],
        "without_fix": seen["without_fix"],
        "output_with_fix": outputs.get("with_fix", ""),
        "output_without_fix": outputs.get("without_fix", ""),
    }
    if flaky:
        return RepoVerdict("flaky", {**evidence, "flaky": flaky}, "")
    if not_fixed:
        return RepoVerdict("failing", {**evidence, "not_passing_with_fix": not_fixed}, "")
    if weak:
        return RepoVerdict("weak_tests", {**evidence, "passing_without_fix": weak}, "")
    return RepoVerdict("verified", evidence, "")
