"""Scripted policies through RepoEpisode, with the real sandbox."""

import json
import tempfile
from pathlib import Path

import pytest

from tests.workers.repo.sample_repo import F2P, P2P, pytest_task, sample_task
from tests.workers.slot_processes import slot_processes
from workers.repo.env import EpisodeLimits, EpisodeResult, RepoEpisode
from workers.repo.reference import reference_actions
from workers.repo.task import RepoTask
from workers.sandbox.batch import bwrap_available

pytestmark = pytest.mark.skipif(not bwrap_available(), reason="bwrap does not work on this machine")


def act(tool: str, **args: object) -> str:
    return json.dumps({"tool": tool, "args": args})


@pytest.fixture(autouse=True)
def own_tempdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Workspaces go under this test's own directory, so that what is left behind can be seen."""
    top = tmp_path / "tmp"
    top.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(top))
    return top


def play(task: RepoTask, actions: list[str], limits: EpisodeLimits | None = None) -> EpisodeResult:
    with RepoEpisode(task, limits or EpisodeLimits()) as episode:
        for text in actions:
            if episode.step(text, tokens=10).done:
                break
        return episode.finish()


@pytest.mark.parametrize("task", [sample_task(), pytest_task()], ids=["unittest", "pytest"])
def test_replaying_the_reference_trajectory_resolves_the_task(task: RepoTask, own_tempdir: Path) -> None:
    result = play(task, reference_actions(task))

    assert result.outcome == "resolved" and result.reward == 1.0
    assert set(result.fail_to_pass.values()) == {"passed"} and set(result.pass_to_pass.values()) == {"passed"}
    assert result.tests_before[task.fail_to_pass[0]] == "failed"
    assert result.tests_before[task.fail_to_pass[1]] == "missing"
    assert "-        return low\n+        return high\n" in result.diff
    assert not result.test_files_edited
    assert [e["valid"] for e in result.trajectory] == [True, True, True]
    assert list(own_tempdir.iterdir()) == []


def test_submitting_at_once_is_no_patch() -> None:
    result = play(sample_task(), [act("submit")])
    assert (result.outcome, result.reward, result.diff, result.turns) == ("no_patch", 0.0, "", 1)


def test_editing_the_tests_to_pass_is_flagged_and_not_rewarded() -> None:
    hack = act(
        "replace", path="tests/test_ops.py", old="ops.clamp(15, 0, 10), 10", new="ops.clamp(15, 0, 10), 0"
    )
    result = play(sample_task(), [hack, act("run_tests", tests=[F2P[0]]), act("submit")])

    assert "1 passed" in result.trajectory[1]["observation"]  # the edited test passes in the workspace
    assert result.test_files_edited
    assert result.outcome == "no_patch" and result.reward == 0.0


def test_a_fix_that_breaks_another_test_is_broke_passing_tests() -> None:
    ops = "calc/ops.py"
    fix = act(
        "replace",
        path=ops,
        old="    if x > high:\n        return low",
        new="    if x > high:\n        return high",
    )
    breaks = act("replace", path=ops, old="return a + b", new="return a + b + 1")
    result = play(sample_task(), [fix, breaks, act("submit")])

    assert result.outcome == "broke_passing_tests" and result.reward == 0.0
    assert result.pass_to_pass["tests.test_ops.TestOps.test_add"] == "failed"


def test_a_wrong_fix_is_tests_fail() -> None:
    wrong = act(
        "replace",
        path="calc/ops.py",
        old="    if x > high:\n        return low",
        new="    if x > high:\n        return x",
    )
    result = play(sample_task(), [wrong, act("submit")])
    assert result.outcome == "tests_fail" and result.fail_to_pass[F2P[0]] == "failed"


def test_looping_on_view_hits_the_turn_limit() -> None:
    result = play(sample_task(), [act("view", path="README.md")] * 10, EpisodeLimits(max_turns=4))
    assert (result.outcome, result.turns, result.reward) == ("turn_limit", 4, 0.0)


def test_the_token_budget_ends_the_episode() -> None:
    result = play(sample_task(), [act("view", path="README.md")] * 10, EpisodeLimits(max_tokens=25))
    assert result.outcome == "token_limit" and result.turns == 3
    assert result.trajectory[-1]["observation"].startswith("stopped:")


def test_malformed_and_unknown_actions_get_error_observations_then_end_the_episode() -> None:
    with RepoEpisode(sample_task(), EpisodeLimits(max_invalid=3)) as episode:
        first = episode.step("let me look at the code")
        second = episode.step(act("rm", path="."))
        ok = episode.step(act("view", path="README.md"))  # a valid action resets the run of invalid ones
        steps = [episode.step(text) for text in ("{", act("view"), '{"tool": "view", "args": {"path": 1}}')]
        result = episode.finish()

    assert not first.valid and first.observation.startswith("error: not a JSON object")
    assert "unknown tool 'rm'" in second.observation and not second.done
    assert ok.valid and not ok.done
    assert [s.done for s in steps] == [False, False, True]
    assert result.outcome == "invalid_actions" and result.invalid_actions == 5


def test_path_escapes_are_refused_as_observations() -> None:
    with RepoEpisode(sample_task()) as episode:
        steps = [
            episode.step(act("view", path="../../../etc/passwd")),
            episode.step(act("view", path="/etc/passwd")),
            episode.step(act("create", path="../outside.txt", content="x")),
        ]
        assert all(s.valid and not s.done and s.observation.startswith("error:") for s in steps)
        assert "root:" not in "".join(s.observation for s in steps)


def test_a_fork_bomb_in_run_tests_is_contained_and_leaves_nothing(own_tempdir: Path) -> None:
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    test = "import unittest\nimport calc.bomb\n\nclass TestBomb(unittest.TestCase):\n"
    test += "    def test_it(self):\n        pass\n"
    actions = [
        act("create", path="calc/bomb.py", content=bomb),
        act("create", path="tests/test_bomb.py", content=test),
        act("run_tests", tests=["tests.test_bomb.TestBomb.test_it"], timeout_s=3),
        act("submit"),
    ]
    limits = EpisodeLimits(test_timeout_s=3)
    with RepoEpisode(sample_task(), limits) as episode:
        steps = [episode.step(a) for a in actions]
        result = episode.finish()

    assert "(timed out)" in steps[2].observation
    assert (
        result.outcome == "tests_fail"
    )  # the bomb module is imported by nothing the task runs... but grading
    assert list(own_tempdir.iterdir()) == []
    assert slot_processes() == []  # warm zygotes of earlier tests are theirs, on purpose


def test_there_is_no_network_in_run_tests() -> None:
    probe = (
        "import socket, unittest\n\nclass TestNet(unittest.TestCase):\n    def test_net(self):\n"
        "        socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
    )
    with RepoEpisode(sample_task()) as episode:
        episode.step(act("create", path="tests/test_net.py", content=probe))
        step = episode.step(act("run_tests", tests=["tests.test_net.TestNet.test_net"]))
    assert "1 error" in step.observation and "Network is unreachable" in step.observation


def test_event_fields_are_capped_and_json_safe() -> None:
    result = play(sample_task(), [act("view", path="calc/ops.py")] * 70, EpisodeLimits(max_turns=70))
    fields = result.event_fields()

    assert len(fields["trajectory"]) == 60 and fields["trajectory_cut"] == 10
    assert all(len(e["observation"]) <= 4000 and len(e["action"]) <= 4000 for e in fields["trajectory"])
    assert fields["outcome"] == "turn_limit" and set(fields["tests_before"]) == {*F2P, *P2P}
    json.dumps(fields)


def test_a_regex_search_runs_in_the_sandbox_and_a_runaway_pattern_is_stopped() -> None:
    with RepoEpisode(sample_task()) as episode:
        ok = episode.step(act("search", pattern=r"def \w+\(a, b\)", regex=True))
        episode.step(act("create", path="calc/long.txt", content="a" * 40 + "!\n"))
        runaway = episode.step(act("search", pattern=r"(a+)+$", path="calc/long.txt", regex=True))
        bad = episode.step(act("search", pattern="(", regex=True))

    assert ok.observation.splitlines() == ["calc/ops.py:4: def add(a, b):", "calc/ops.py:8: def sub(a, b):"]
    assert runaway.observation == "error: search: the regex took too long"
    assert bad.observation.startswith("error: search: not a valid regex")
