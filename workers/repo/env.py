"""A repository episode: a workspace, the agent's turns through the tools, limits, and the grade.

    with RepoEpisode(task, limits) as episode:
        prompt = episode.first_observation()
        while True:
            text, tokens = model(...)
            step = episode.step(text, tokens=tokens)
            if step.done:
                break
        result = episode.finish()

The workspace is made on enter and removed on exit, whatever happens. ``tests_before`` (FAIL_TO_PASS
and PASS_TO_PASS on the untouched workspace) is run once, on enter. An episode ends on submit or on a
limit: max_turns turns without a submit (turn_limit; so does passing wall_s), more than max_tokens
tokens in all the model's turns (token_limit; a turn past the budget is not carried out),
max_invalid invalid actions in a row (invalid_actions). ``finish`` diffs the workspace against a
pristine extract and, after a submit, grades it (grading.py); an episode ended by a limit is not
graded (reward 0). Calling finish before either ends it as a submit would.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from workers.sandbox import SandboxUnavailable
from workers.sandbox.workspace_exec import PYTHON, run_in_workspace

from . import tools
from .grading import grade
from .patching import PatchError, diff_trees, split_test_changes
from .task import RepoTask
from .testrun import capped, run_tests
from .workspace import Workspace

TRAJECTORY_MAX = 60  # entries in the event; the first and last halves are kept
TRAJECTORY_TEXT_CAP = 4000
DIFF_CAP = 20_000
GRADE_TIMEOUT_FACTOR = 2.0  # grading runs F2P + P2P once: twice one run_tests' limit


@dataclass(frozen=True)
class EpisodeLimits:
    max_turns: int = 20
    max_tokens: int = 8192
    wall_s: float = 300.0
    test_timeout_s: float = 30.0
    max_invalid: int = 3

    def __post_init__(self) -> None:
        for name in ("max_turns", "max_tokens", "max_invalid"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if not (self.wall_s > 0 and self.test_timeout_s > 0):
            raise ValueError("wall_s and test_timeout_s must be > 0")


@dataclass(frozen=True)
class Step:
    observation: str
    done: bool
    valid: bool


@dataclass
class EpisodeResult:
    task_id: str
    outcome: str
    reward: float
    diff: str
    turns: int
    invalid_actions: int
    test_files_edited: bool
    fail_to_pass: dict[str, str]
    pass_to_pass: dict[str, str]
    tests_before: dict[str, str]
    trajectory: list[dict[str, Any]] = field(default_factory=list)  # {"action", "observation", "valid"}
    duration_ms: int = 0

    def event_fields(self) -> dict[str, Any]:
        """The generation event's "repo" object: capped and JSON-safe (docs/repository-tasks.md)."""
        entries = self.trajectory
        cut = max(len(entries) - TRAJECTORY_MAX, 0)
        if cut:
            half = TRAJECTORY_MAX // 2
            entries = entries[:half] + entries[-half:]
        return {
            "outcome": self.outcome,
            "turns": self.turns,
            "invalid_actions": self.invalid_actions,
            "test_files_edited": self.test_files_edited,
            "trajectory": [
                {
                    "action": tools.cap(str(e["action"]), TRAJECTORY_TEXT_CAP),
                    "observation": tools.cap(str(e["observation"]), TRAJECTORY_TEXT_CAP),
                    "valid": bool(e["valid"]),
                }
                for e in entries
            ],
            "trajectory_cut": cut,
            "diff": tools.cap(self.diff, DIFF_CAP),
            "fail_to_pass": dict(self.fail_to_pass),
            "pass_to_pass": dict(self.pass_to_pass),
            "tests_before": dict(self.tests_before),
            "duration_ms": self.duration_ms,
        }


class RepoEpisode:
    """One episode of one task (see the module's docstring). A context manager."""

    def __init__(self, task: RepoTask, limits: EpisodeLimits = EpisodeLimits()) -> None:
        self.task = task
        self.limits = limits
        self._ws: Workspace | None = None
        self._start = 0.0
        self._turns = 0
        self._tokens = 0
        self._invalid = 0
        self._invalid_run = 0
        self._ended = ""  # "submit" or the limit's outcome
        self._trajectory: list[dict[str, Any]] = []
        self.tests_before: dict[str, str] = {}
        self._result: EpisodeResult | None = None

    # ---------------------------------------------------------------- lifecycle

    def __enter__(self) -> RepoEpisode:
        self._start = time.monotonic()
        self._ws = Workspace.create(self.task.snapshot)
        try:
            ids = [*self.task.fail_to_pass, *self.task.pass_to_pass]
            before = run_tests(
                self._ws.root, ids, runner=self.task.runner, timeout_s=self.limits.test_timeout_s
            )
            self.tests_before = dict(before.outcomes)
        except BaseException:
            self._ws.close()
            raise
        self._tools = tools.Tools(self._ws.root, self._run_tests, self._search_regex)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ws is not None:
            self._ws.close()

    @property
    def root(self) -> Path:
        if self._ws is None:
            raise RuntimeError("the episode has not started (use it in a with statement)")
        return self._ws.root

    @property
    def done(self) -> bool:
        return bool(self._ended)

    def first_observation(self) -> str:
        """The user turn that opens the episode: the problem statement, then the tools."""
        return (
            f"Repository {self.task.repo or self.task.task_id}. The issue to fix:\n\n"
            f"{self.task.statement.strip()}\n\n"
            "Change the repository's code so that the issue is fixed and its tests pass, then submit. "
            f"{tools.tool_doc()}"
        )

    # ---------------------------------------------------------------- turns

    def step(self, action_text: str, *, tokens: int = 0) -> Step:
        """Carry out one model turn's action; `tokens` is that turn's length in tokens."""
        root = self.root
        if self._ended:
            return Step("error: the episode is over", True, False)
        self._turns += 1
        self._tokens += max(tokens, 0)
        if self._tokens > self.limits.max_tokens:
            return self._end(
                "token_limit", action_text, f"the episode passed its {self.limits.max_tokens} tokens"
            )
        if time.monotonic() - self._start > self.limits.wall_s:
            return self._end("turn_limit", action_text, f"the episode passed its {self.limits.wall_s:g} s")
        try:
            action = tools.parse_action(action_text)
        except tools.ActionError as e:
            self._invalid += 1
            self._invalid_run += 1
            observation = tools.cap(str(e))
            self._record(action_text, observation, False)
            if self._invalid_run >= self.limits.max_invalid:
                self._ended = "invalid_actions"
                return Step(observation, True, False)
            return self._after_turn(Step(observation, False, False))
        self._invalid_run = 0
        assert root is not None
        observation, submitted = self._tools.run(action)
        observation = tools.cap(observation)
        self._record(action_text, observation, True)
        if submitted:
            self._ended = "submit"
            return Step(observation, True, True)
        return self._after_turn(Step(observation, False, True))

    def _after_turn(self, step: Step) -> Step:
        if self._turns >= self.limits.max_turns:
            self._ended = "turn_limit"
            return Step(step.observation, True, step.valid)
        if self._tokens >= self.limits.max_tokens:
            self._ended = "token_limit"
            return Step(step.observation, True, step.valid)
        return step

    def _end(self, outcome: str, action_text: str, why: str) -> Step:
        self._ended = outcome
        observation = f"stopped: {why}"
        self._record(action_text, observation, False)
        return Step(observation, True, False)

    def _record(self, action: str, observation: str, valid: bool) -> None:
        self._trajectory.append({"action": action, "observation": observation, "valid": valid})

    def _run_tests(self, ids: list[str] | None, timeout_s: float | None) -> str:
        limit = self.limits.test_timeout_s
        timeout = min(timeout_s, limit) if timeout_s is not None else limit
        run = run_tests(self.root, ids, runner=self.task.runner, timeout_s=timeout)
        if run.error_class == "sandbox_error":
            return "error: the sandbox failed to run the tests (not your fault); try again"
        counts: dict[str, int] = {}
        for outcome in run.outcomes.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "no tests found"
        lines = [f"{summary}{' (timed out)' if run.timed_out else ''}"]
        lines += [f"{tid}: {outcome}" for tid, outcome in run.outcomes.items() if outcome != "passed"][:30]
        return "\n".join(lines) + "\n\n" + capped(run.output, tools.OBS_CAP // 2)

    def _search_regex(self, pattern: str, path: str) -> str:
        target = tools.confine(self.root, path)
        if not target.exists():
            raise tools.ToolError(f"error: {path}: no such file or directory")
        try:
            import re

            re.compile(pattern)  # compiling is cheap and safe; matching is what can take forever
        except re.error as e:
            raise tools.ToolError(f"error: search: not a valid regex ({e})") from None
        config = json.dumps({"pattern": pattern, "path": path, "max": tools.MAX_HITS}).encode()
        result = run_in_workspace(
            self.root, [PYTHON, "-c", tools.REGEX_SEARCH], timeout_s=5.0, stdin=config, output_cap=200_000
        )
        if result.timed_out:
            return "error: search: the regex took too long"
        try:
            hits, more = json.loads(result.stdout)
        except ValueError:
            return "error: search failed: " + result.stderr[-300:]
        if not hits:
            return f"no line matches {pattern!r} under {path}"
        return "\n".join(hits) + (f"\n[{more} more hits]" if more else "")

    # ---------------------------------------------------------------- the end

    def finish(self) -> EpisodeResult:
        """Diff the workspace against a pristine extract and grade it (after a submit)."""
        if self._result is not None:
            return self._result
        root = self.root
        if not self._ended:
            self._ended = "submit"
        with Workspace.create(self.task.snapshot) as pristine:
            diff = diff_trees(pristine.root, root)
        try:
            edited = bool(split_test_changes(diff)[1].strip())
        except PatchError:
            edited = False
        if self._ended == "submit":
            timeout = self.limits.test_timeout_s * GRADE_TIMEOUT_FACTOR
            try:
                g = grade(self.task, diff, timeout_s=timeout)
                outcome, reward, f2p, p2p = g.outcome, g.reward, g.fail_to_pass, g.pass_to_pass
                edited = g.test_files_edited
            except SandboxUnavailable:
                outcome, reward, f2p, p2p = "sandbox_error", 0.0, {}, {}
        else:
            outcome, reward, f2p, p2p = self._ended, 0.0, {}, {}
        self._result = EpisodeResult(
            task_id=self.task.task_id,
            outcome=outcome,
            reward=reward,
            diff=diff,
            turns=self._turns,
            invalid_actions=self._invalid,
            test_files_edited=edited,
            fail_to_pass=f2p,
            pass_to_pass=p2p,
            tests_before=dict(self.tests_before),
            trajectory=list(self._trajectory),
            duration_ms=int((time.monotonic() - self._start) * 1000),
        )
        return self._result
