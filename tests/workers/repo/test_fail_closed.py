"""Without isolation, repository tasks refuse to run code (unless the operator opted in)."""

import pytest

from tests.workers.repo.sample_repo import sample_task
from workers.repo.env import RepoEpisode
from workers.repo.grading import grade
from workers.repo.verify import verify_task
from workers.sandbox import SandboxUnavailable


def test_an_episode_refuses_to_start(bwrap_missing) -> None:
    with pytest.raises(SandboxUnavailable, match="TRIAD_SANDBOX_UNISOLATED"), RepoEpisode(sample_task()):
        pass


def test_grading_is_a_sandbox_error_never_a_verdict_on_the_patch(bwrap_missing) -> None:
    g = grade(sample_task(), sample_task().patch)
    assert (g.outcome, g.reward) == ("sandbox_error", 0.0)
    assert "refuses" in g.error


def test_the_gate_says_sandbox_error_not_failing_tests(bwrap_missing) -> None:
    verdict = verify_task(sample_task())
    assert verdict.error_class == "sandbox_error"
