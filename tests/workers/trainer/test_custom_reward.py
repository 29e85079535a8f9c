"""The custom reward component: the run's verifier (reward_custom_source) scores each sample in the real
sandbox beside its tests, and the score is weighted like the other components'."""

from __future__ import annotations

import pytest

from tests.workers.test_launcher import _spec
from tests.workers.trainer.fake_control import FakeControl
from workers.launcher import run_supervised
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


@pytest.fixture
def control():
    fake = FakeControl(token="secret-token").start()
    yield fake
    fake.stop()


@pytest.mark.e2e  # a real deepspeed run
def test_a_run_with_a_verifier_logs_its_custom_component(control, tmp_path):
    # given a problem whose prompt already holds the body, and a verifier that gives every sample
    # whose module runs 0.5 (0 to one that does not parse: it never ran)
    spec = _spec(control.url, steps=2)
    spec["problems"] = [
        {
            "task_id": "T/add",
            "prompt": "def add(a, b):\n    return a + b  # ",
            "entry_point": "add",
            "tests": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
        }
    ]
    verifier = "def reward(candidate, problem):\n    return 0.5 if candidate(2, 2) == 4 else 0.0\n"
    spec["train"].update(
        {"max_new_tokens": 8, "prompts_per_step": 1, "reward_custom": 2.0, "reward_custom_source": verifier}
    )
    control.spec = spec
    # when the real trainer runs under the deepspeed launcher
    final = run_supervised(
        run_id=4, token="secret-token", control_url=control.url, workdir=tmp_path, heartbeat_s=0.5
    )
    # then the verifier's score is the custom component: a passing sample's is 0.5, so its mean is half
    # the pass rate's (a sample passes exactly when add(2, 2) == 4 runs too), and the shares add up
    assert final == "succeeded", (tmp_path / "train.log").read_text()[-3000:]
    metrics = [m["values"] for m in control.of_type("metric", "trainer")]
    assert len(metrics) == 2
    for m in metrics:
        assert 0 < m["reward/custom/mean"] <= 0.5
        assert m["reward/custom/mean"] == pytest.approx(0.5 * m["reward/correctness/mean"])
        assert m["reward/custom/share"] == pytest.approx(2.0 * m["reward/custom/mean"])
        total = m["reward/correctness/share"] + m["reward/custom/share"]
        assert total == pytest.approx(m["reward/mean"], abs=1e-9)
