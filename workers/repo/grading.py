"""Grading a repository episode, as SWE-bench does it.

A fresh workspace from the snapshot; the episode's diff minus its changes to test files (edits to
tests do not count, and an episode that made any is flagged: ``test_files_edited``, a reward-hacking
attempt); then the task's test patch; then FAIL_TO_PASS and PASS_TO_PASS run. The reward is 1.0 if
every one of them passes, else 0.0 (``partial_credit=True``: the share of FAIL_TO_PASS that pass,
when every PASS_TO_PASS passes). Outcomes:

- resolved: everything passes;
- tests_fail: some FAIL_TO_PASS test does not pass (or the diff does not apply);
- broke_passing_tests: FAIL_TO_PASS pass but some PASS_TO_PASS does not;
- no_patch: nothing is left once test edits are dropped;
- sandbox_error: the infrastructure failed (never scored; retry).
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.sandbox import SandboxUnavailable

from .patching import PatchError, apply_patch, split_test_changes
from .task import RepoTask
from .testrun import capped, run_tests
from .workspace import SnapshotError, Workspace


@dataclass(frozen=True)
class Grade:
    outcome: str  # resolved | tests_fail | broke_passing_tests | no_patch | sandbox_error
    reward: float
    fail_to_pass: dict[str, str]  # test id -> passed | failed | error | skipped | missing
    pass_to_pass: dict[str, str]
    test_files_edited: bool
    error: str  # why, where it is not the tests' verdict ("" otherwise)


def grade(task: RepoTask, diff: str, *, timeout_s: float = 60.0, partial_credit: bool = False) -> Grade:
    """Grade an episode's diff against task (see the module's docstring)."""
    try:
        code, tests = split_test_changes(diff)
    except PatchError as e:
        return Grade("tests_fail", 0.0, {}, {}, False, f"the diff does not parse: {e}")
    edited = bool(tests.strip())
    if not code.strip():
        return Grade("no_patch", 0.0, {}, {}, edited, "")
    try:
        with Workspace.create(task.snapshot) as ws:
            try:
                apply_patch(ws.root, code)
            except PatchError as e:
                return Grade("tests_fail", 0.0, {}, {}, edited, f"the diff does not apply: {e}")
            try:
                apply_patch(ws.root, task.test_patch)
            except PatchError as e:
                return Grade(
                    "tests_fail", 0.0, {}, {}, edited, f"the test patch does not apply on the diff: {e}"
                )
            run = run_tests(
                ws.root, [*task.fail_to_pass, *task.pass_to_pass], runner=task.runner, timeout_s=timeout_s
            )
    except (SandboxUnavailable, SnapshotError) as e:
        return Grade("sandbox_error", 0.0, {}, {}, edited, str(e))
    f2p = {t: run.outcomes.get(t, "error") for t in task.fail_to_pass}
    p2p = {t: run.outcomes.get(t, "error") for t in task.pass_to_pass}
    if run.error_class == "sandbox_error":
        return Grade("sandbox_error", 0.0, f2p, p2p, edited, capped(run.output, 2000))
    f2p_ok = sum(o == "passed" for o in f2p.values())
    p2p_ok = all(o == "passed" for o in p2p.values())
    if f2p_ok < len(f2p):
        outcome = "tests_fail"
    elif not p2p_ok:
        outcome = "broke_passing_tests"
    else:
        outcome = "resolved"
    reward = 1.0 if outcome == "resolved" else 0.0
    if partial_credit and p2p_ok:
        reward = f2p_ok / len(f2p)
    error = "the tests timed out" if run.timed_out else ""
    return Grade(outcome, reward, f2p, p2p, edited, error)
