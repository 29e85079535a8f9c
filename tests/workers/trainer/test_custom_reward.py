"""The custom reward component: the run's verifier (reward_custom_source) scores each sample in the real
sandbox beside its tests, and the score is weighted like the other components'."""

from __future__ import annotations

import pytest

from workers.trainer.reward_components import ReferenceTimes
from workers.trainer.rewards import Score, complete_components, score_completions
from workers.trainer.spec import Problem, SandboxSpec

PROMPT = 'def add(a, b):\n    """Return a + b."""\n'
SOLUTION = "    return a + b\n"
ADD = Problem(
    task_id="T/add",
    prompt=PROMPT,
    entry_point="add",
    tests="def check(candidate):\n    assert candidate(1, 2) == 3\n",
    solution=SOLUTION,
)
# How many of 4 sums the candidate gets right.
FOUR_SUMS = """
def reward(candidate, problem):
    assert problem["task_id"] == "T/add" and problem["entry_point"] == "add"
    cases = [((1, 2), 3), ((2, 2), 4), ((0, 5), 5), ((3, 3), 7)]
    return sum(candidate(*args) == want for args, want in cases) / len(cases)
"""
SANDBOX = SandboxSpec(timeout_s=5.0)


def test_the_verifiers_score_is_the_custom_component_of_the_weighted_reward():
    # a + b gets 3 of the 4 sums (3 + 3 is not 7); a * b only 2 * 2 == 4
    [[right, product]] = score_completions(
        [ADD],
        [[SOLUTION, "    return a * b\n"]],
        sandbox=SANDBOX,
        partial_credit=False,
        weights={"correctness": 1.0, "custom": 2.0},
        verifier=FOUR_SUMS,
    )

    assert right.components == {"correctness": 1.0, "custom": 0.75}
    assert right.reward == pytest.approx(1.0 + 2.0 * 0.75)
    assert product.components == {"correctness": 0.0, "custom": 0.25}
    assert product.reward == pytest.approx(2.0 * 0.25)
    assert product.valid and product.error_class == "wrong_answer"


def test_with_no_weight_the_verifier_does_not_run():
    [[s]] = score_completions(
        [ADD],
        [[SOLUTION]],
        sandbox=SANDBOX,
        partial_credit=False,
        weights={"correctness": 1.0, "custom": 0.0},
        verifier="def reward(candidate, problem):\n    raise ValueError('ran')\n",
    )

    assert s.components == {"correctness": 1.0}
    assert "ran" not in s.stderr


def test_a_failing_verifier_scores_0_and_the_sample_still_counts():
    [[s]] = score_completions(
        [ADD],
        [[SOLUTION]],
        sandbox=SANDBOX,
        partial_credit=False,
        weights={"correctness": 1.0, "custom": 1.0},
        verifier="def reward(candidate, problem):\n    return candidate(1, 2)\n",  # 3: out of [0, 1]
    )

    assert s.valid and s.passed
    assert s.components == {"correctness": 1.0, "custom": 0.0}
    assert s.reward == 1.0
    assert "verifier: reward() returned 3, not a number in [0, 1]" in s.stderr


def test_the_verifiers_calls_do_not_count_in_the_efficiency_time():
    # The verifier makes the candidate work far longer than the reference's tests do; the candidate
    # is the reference itself, so timed without the verifier it is as fast: efficiency 1.
    busy = (
        "def reward(candidate, problem):\n"
        "    return min(1, sum(candidate(i, 1) > 0 for i in range(3000)) / 3000)\n"
    )
    [[s]] = score_completions(
        [ADD],
        [[SOLUTION]],
        sandbox=SANDBOX,
        partial_credit=False,
        weights={"correctness": 1.0, "efficiency": 1.0, "custom": 1.0},
        verifier=busy,
        reference_times=ReferenceTimes(),
    )

    assert s.components["custom"] == 1.0
    assert s.components["efficiency"] == 1.0


def test_a_sample_the_critic_skipped_gets_its_predicted_correctness_as_custom():
    weights = {"correctness": 1.0, "custom": 1.0}
    predicted_pass = Score(1.0, True, True, "critic_skipped", 0, 0, 0, "", "")
    predicted_fail = Score(0.0, True, False, "critic_skipped", 0, 0, 0, "", "")

    [[up, down]] = complete_components(
        [ADD], [[SOLUTION, SOLUTION]], [[predicted_pass, predicted_fail]], weights=weights
    )

    assert up.components == {"correctness": 1.0, "custom": 1.0} and up.reward == 2.0
    assert down.components == {"correctness": 0.0, "custom": 0.0} and down.reward == 0.0


def test_a_problems_own_verifier_scores_its_samples_instead_of_the_runs():
    own = Problem(
        task_id="T/own",
        prompt=PROMPT,
        entry_point="add",
        tests=ADD.tests,
        verifier="def reward(candidate, problem):\n    return 0.5 if candidate(2, 2) == 4 else 0.0\n",
    )

    [[runs], [owns]] = score_completions(
        [ADD, own],
        [[SOLUTION], [SOLUTION]],
        sandbox=SANDBOX,
        partial_credit=False,
        weights={"correctness": 1.0, "custom": 1.0},
        verifier=FOUR_SUMS,
    )

    assert runs.components["custom"] == 0.75  # the run's verifier
    assert owns.components["custom"] == 0.5  # the problem's own
