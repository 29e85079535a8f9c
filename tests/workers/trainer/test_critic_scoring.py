"""Samples the critic skipped are scored like the samples of their group that ran, and (by default) set
the group's baseline without entering the policy-gradient term (issue #19)."""

from __future__ import annotations

import random

import pytest
import torch

from workers.trainer.critic import CRITIC_SKIPPED, TrainerCritic, policy_mask, predicted_score
from workers.trainer.grpo import group_advantages
from workers.trainer.rewards import Score, complete_components, score_completions
from workers.trainer.spec import Problem, SandboxSpec, TrainSpec, parse_spec

ADD = Problem(
    task_id="T/add4",
    prompt='def add(a, b):\n    """Return a + b."""\n',
    entry_point="add",
    tests=(
        "def check(candidate):\n"
        "    assert candidate(1, 2) == 3\n"
        "    assert candidate(0, 0) == 0\n"
        "    assert candidate(2, 2) == 4\n"
        "    assert candidate(0, 5) == 5\n"
    ),
    solution="    return a + b\n",
)
RIGHT = "    return a + b\n"  # 4 of 4
# Partial credit counts the asserts passed before the first that fails.
HALF = "    return a + b if a + b < 4 else 0\n"  # (1, 2), (0, 0), then (2, 2) fails: 2 of 4
QUARTER = "    return 3\n"  # (1, 2), then (0, 0) fails: 1 of 4
BROKEN = "    return a +\n"  # syntax error: 0 of 4
CORRECTNESS = {"correctness": 1.0}


def _run(texts: list[str], *, partial_credit: bool = True) -> list[Score]:
    [group] = score_completions(
        [ADD], [texts], sandbox=SandboxSpec(timeout_s=10.0), partial_credit=partial_credit
    )
    return group


def test_a_skipped_predicted_failure_gets_the_partial_credit_of_its_groups_failures_that_parse():
    ran = _run([RIGHT, HALF, QUARTER, BROKEN])
    assert [s.reward for s in ran] == [1.0, 0.5, 0.25, 0.0]
    skipped = [predicted_score(0.02), predicted_score(0.02), predicted_score(0.98)]
    texts = [RIGHT, HALF, QUARTER, BROKEN, "    return a - b\n", "    return (\n", RIGHT]

    [done] = complete_components([ADD], [texts], [[*ran, *skipped]], weights=CORRECTNESS)

    assert done[:4] == ran  # samples that ran keep their scores
    wrong, unparsable, right = done[4:]
    # The failures that ran and parse scored 0.5 and 0.25; the syntax error is no guide to code that
    # parses: (0.5 + 0.25) / 2.
    assert wrong.reward == wrong.components["correctness"] == 0.375
    assert unparsable.reward == 0.0  # cannot parse, so cannot pass a test: exactly what running gives
    assert right.reward == 1.0
    assert all(s.skipped and s.error_class == CRITIC_SKIPPED for s in done[4:])
    assert not any(s.skipped for s in ran)


def test_without_partial_credit_a_skipped_failure_scores_zero_like_the_failures_that_ran():
    ran = _run([RIGHT, HALF], partial_credit=False)
    [done] = complete_components(
        [ADD], [[RIGHT, HALF, QUARTER]], [[*ran, predicted_score(0.01)]], weights=CORRECTNESS
    )
    assert [s.reward for s in done] == [1.0, 0.0, 0.0]


def test_a_skipped_failure_with_no_failure_that_ran_beside_it_scores_zero():
    ran = _run([RIGHT])
    [done] = complete_components([ADD], [[RIGHT, HALF]], [[*ran, predicted_score(0.01)]], weights=CORRECTNESS)
    assert done[1].reward == 0.0


def _ran_pass(efficiency: float) -> Score:
    """A passing sample as score_completions gives it, with its measured efficiency."""
    return Score(
        reward=1.0 + efficiency,
        valid=True,
        passed=True,
        error_class="passed",
        tests_passed=4,
        tests_total=4,
        duration_ms=5,
        stdout="",
        stderr="",
        cpu_ms=1.0,
        components={"correctness": 1.0, "efficiency": efficiency},
    )


@pytest.mark.parametrize(
    ("measured", "median"),
    [([0.2, 0.9, 0.5], 0.5), ([0.2, 0.6], 0.4), ([], 1.0)],  # none passed: the reference's own 1.0
)
def test_a_skipped_predicted_pass_gets_the_median_efficiency_of_its_groups_passes(measured, median):
    weights = {"correctness": 1.0, "efficiency": 2.0}
    group = [_ran_pass(e) for e in measured] + [predicted_score(0.99)]
    texts = [RIGHT] * len(group)

    [done] = complete_components([ADD], [texts], [group], weights=weights)

    assert done[-1].components == {"correctness": 1.0, "efficiency": pytest.approx(median)}
    assert done[-1].reward == pytest.approx(1.0 + 2.0 * median)


def test_policy_mask_keeps_skipped_samples_out_of_the_policy_gradient_by_default():
    ran, skipped = _ran_pass(1.0), predicted_score(0.99)
    infra = Score(0.0, False, False, "sandbox_error", 0, 0, 0, "", "")
    group = [ran, skipped, infra]

    assert policy_mask(group) == [True, False, False]
    assert policy_mask(group, "baseline") == [True, False, False]
    assert policy_mask(group, "train") == [True, True, False]  # a sandbox_error never enters
    with pytest.raises(ValueError, match="critic_skip_scoring"):
        policy_mask(group, "drop")


def test_skipped_samples_set_the_baseline_that_the_samples_that_ran_are_trained_against():
    # What the trainer does with a group: advantages over every valid sample, then only the rows
    # policy_mask keeps are trained on.
    ran = _run([RIGHT, QUARTER])  # 1.0 and 0.25
    group = [*ran, predicted_score(0.99), predicted_score(0.99)]
    [done] = complete_components([ADD], [[RIGHT, QUARTER, RIGHT, RIGHT]], [group], weights=CORRECTNESS)
    rewards = torch.tensor([[s.reward for s in done]])
    valid = torch.tensor([[s.valid for s in done]])

    adv, _ = group_advantages(rewards, valid)
    trained = [float(a) for a, keep in zip(adv[0], policy_mask(done), strict=True) if keep]

    # rewards 1, 0.25, 1, 1: mean 0.8125, population std sqrt((3 * 0.1875² + 0.5625²) / 4) = 0.32476
    assert trained == pytest.approx([0.1875 / (0.324760 + 1e-4), -0.5625 / (0.324760 + 1e-4)], rel=1e-4)


def test_a_skipping_critic_scores_its_skipped_samples_like_the_samples_that_ran():
    train = TrainSpec(
        critic=True,
        critic_skip=True,
        critic_threshold=0.9,
        critic_audit_frac=0.25,
        critic_max_skip_frac=0.5,
        critic_min_labels=48,
        partial_credit=True,
    )
    critic = TrainerCritic(train, rank=0, gather=lambda obj: [obj])
    rng = random.Random(0)
    choices = [RIGHT, HALF, QUARTER, BROKEN]

    def run_sandbox(problems, texts):
        return score_completions(problems, texts, sandbox=SandboxSpec(timeout_s=30.0), partial_credit=True)

    checked = 0
    for step in range(14):
        texts = [rng.choice(choices) for _ in range(16)]
        raw = critic.score([ADD], [texts], step=step, run_sandbox=run_sandbox)
        [done] = complete_components([ADD], [texts], raw, weights=CORRECTNESS)
        ran = [s for s in done if not s.skipped]
        credit = [s.reward for s in ran if not s.passed and s.error_class != "syntax_error"]
        for text, s in zip(texts, done, strict=True):
            if not s.skipped or s.passed:
                continue
            # HALF and QUARTER fail with partial credit: skipped, they get the mean of the ones that ran
            expected = 0.0 if text == BROKEN or not credit else sum(credit) / len(credit)
            assert s.reward == pytest.approx(expected), (step, text)
            checked += text != BROKEN and bool(credit)
    assert checked >= 3  # the critic did skip failures that parse, beside ones that ran


def test_critic_skip_scoring_defaults_to_baseline_and_is_checked_by_name():
    problem = {"task_id": "T/0", "prompt": "def f():\n", "entry_point": "f", "tests": "assert True\n"}
    raw = {"run_id": 1, "train": {"critic": True, "critic_skip": True}, "problems": [problem]}
    assert parse_spec(raw).train.critic_skip_scoring == "baseline"
    raw["train"]["critic_skip_scoring"] = "train"
    assert parse_spec(raw).train.critic_skip_scoring == "train"
    raw["train"]["critic_skip_scoring"] = "ignore"
    with pytest.raises(ValueError, match=r"train\.critic_skip_scoring"):
        parse_spec(raw)
