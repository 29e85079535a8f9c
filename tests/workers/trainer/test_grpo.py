"""GRPO and reward maths on hand-computed tensors."""

from __future__ import annotations

import math

import pytest
import torch

from workers.trainer.grpo import ADV_EPS, group_advantages, grpo_loss, k3_kl
from workers.trainer.metrics import LocalStats, merge_metrics
from workers.trainer.problems import rank_share, select_problems
from workers.trainer.rewards import reward_from_result


def test_reward_is_one_for_a_pass_and_zero_otherwise():
    assert reward_from_result(True, "passed", 3, 3, partial_credit=False) == (1.0, True)
    assert reward_from_result(False, "wrong_answer", 2, 3, partial_credit=False) == (0.0, True)


def test_partial_credit_gives_the_share_of_tests_passed():
    reward, valid = reward_from_result(False, "wrong_answer", 1, 4, partial_credit=True)
    assert (reward, valid) == (0.25, True)


def test_sandbox_error_is_invalid_not_a_zero_reward():
    assert reward_from_result(False, "sandbox_error", 0, 0, partial_credit=True) == (0.0, False)


def test_group_advantages_are_normalised_within_each_group():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    valid = torch.ones_like(rewards, dtype=torch.bool)

    adv, zero_std = group_advantages(rewards, valid)

    # group 0: mean 0.5, population std 0.5
    expected = 0.5 / (0.5 + ADV_EPS)
    assert torch.allclose(adv[0], torch.tensor([expected, -expected, -expected, expected]))
    assert torch.equal(adv[1], torch.zeros(4))
    assert zero_std.tolist() == [False, True]


def test_sandbox_error_samples_are_masked_out_of_the_group_statistics():
    rewards = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    valid = torch.tensor([[True, True, False, False]])

    adv, zero_std = group_advantages(rewards, valid)

    expected = 0.5 / (0.5 + ADV_EPS)
    assert torch.allclose(adv, torch.tensor([[expected, -expected, 0.0, 0.0]]))
    assert not bool(zero_std[0])


def test_group_with_one_valid_sample_has_zero_advantage_and_counts_as_zero_std():
    adv, zero_std = group_advantages(torch.tensor([[1.0, 0.0]]), torch.tensor([[True, False]]))
    assert torch.equal(adv, torch.zeros(1, 2))
    assert bool(zero_std[0])


def test_loss_is_the_token_average_over_unmasked_tokens():
    logp = torch.zeros(2, 3, requires_grad=True)
    old = torch.zeros(2, 3)
    adv = torch.tensor([1.0, -2.0])
    mask = torch.tensor([[True, True, False], [True, False, False]])

    out = grpo_loss(logp, old, adv, mask, clip_eps=0.2)

    # ratio 1 everywhere: per-token loss -A -> tokens (-1, -1, +2) over 3 tokens
    assert out.loss.item() == pytest.approx(0.0)
    assert out.n_tokens == 3
    out.loss.backward()
    assert torch.allclose(logp.grad, torch.tensor([[-1 / 3, -1 / 3, 0.0], [2 / 3, 0.0, 0.0]]))


def test_ratio_outside_the_clip_range_has_no_gradient_and_counts_in_clip_frac():
    old = torch.zeros(1, 2)
    logp = torch.tensor([[math.log(1.5), math.log(1.1)]], requires_grad=True)
    adv = torch.tensor([1.0])
    mask = torch.ones(1, 2, dtype=torch.bool)

    out = grpo_loss(logp, old, adv, mask, clip_eps=0.2)

    # token 0: ratio 1.5 clipped to 1.2 -> -1.2 (no gradient); token 1: ratio 1.1 -> -1.1
    assert out.loss.item() == pytest.approx((-1.2 - 1.1) / 2)
    assert out.clip_frac == pytest.approx(0.5)
    out.loss.backward()
    assert logp.grad[0, 0].item() == 0.0
    assert logp.grad[0, 1].item() == pytest.approx(-1.1 / 2)


def test_negative_advantage_with_low_ratio_is_clipped():
    logp = torch.tensor([[math.log(0.5)]], requires_grad=True)
    out = grpo_loss(
        logp, torch.zeros(1, 1), torch.tensor([-1.0]), torch.ones(1, 1, dtype=torch.bool), clip_eps=0.2
    )
    assert out.loss.item() == pytest.approx(0.8)
    assert out.clip_frac == 1.0


def test_k3_kl_matches_the_formula_and_is_zero_for_equal_policies():
    new = torch.tensor([math.log(0.5), math.log(0.2)])
    ref = torch.tensor([math.log(0.25), math.log(0.2)])
    kl = k3_kl(new, ref)
    d = math.log(0.25) - math.log(0.5)
    assert kl[0].item() == pytest.approx(math.exp(d) - d - 1)
    assert kl[1].item() == 0.0


def test_kl_term_is_added_with_beta():
    logp = torch.tensor([[math.log(0.5)]], requires_grad=True)
    ref = torch.tensor([[math.log(0.25)]])
    out = grpo_loss(
        logp,
        logp.detach(),
        torch.tensor([0.0]),
        torch.ones(1, 1, dtype=torch.bool),
        clip_eps=0.2,
        beta=0.5,
        logp_ref=ref,
    )
    d = math.log(0.25) - math.log(0.5)
    assert out.kl == pytest.approx(math.exp(d) - d - 1)
    assert out.loss.item() == pytest.approx(0.5 * out.kl)


def test_an_all_masked_batch_gives_a_zero_loss_that_still_backpropagates():
    logp = torch.zeros(1, 2, requires_grad=True)
    out = grpo_loss(
        logp, torch.zeros(1, 2), torch.tensor([1.0]), torch.zeros(1, 2, dtype=torch.bool), clip_eps=0.2
    )
    out.loss.backward()
    assert out.n_tokens == 0 and out.loss.item() == 0.0
    assert torch.equal(logp.grad, torch.zeros(1, 2))


def test_problem_selection_is_deterministic_and_split_across_ranks():
    chosen = select_problems(10, 4, step=3, seed=0)
    assert chosen == select_problems(10, 4, step=3, seed=0)
    assert len(set(chosen)) == 4
    assert rank_share(chosen, 0, 2) + rank_share(chosen, 1, 2) == chosen[0::2] + chosen[1::2]
    assert sorted(rank_share(chosen, 0, 2) + rank_share(chosen, 1, 2)) == sorted(chosen)


def test_merged_metrics_count_error_classes_and_zero_std_groups():
    a = LocalStats(
        rewards=[1.0, 0.0],
        passed=1,
        pass_frac=[1.0, 0.0],
        n_samples=2,
        errors={"passed": 1, "wrong_answer": 1},
        groups=1,
        zero_std_groups=0,
        lengths=[4, 8],
    )
    b = LocalStats(
        rewards=[0.0],
        passed=0,
        pass_frac=[0.0],
        n_samples=2,
        errors={"syntax_error": 1, "sandbox_error": 1},
        groups=1,
        zero_std_groups=1,
        lengths=[2, 2],
    )

    m = merge_metrics([a, b], lr=1e-3, grad_norm=0.5, step_s=2.0)

    assert m["pass_rate"] == 0.25
    assert m["reward/mean"] == pytest.approx(1 / 3)
    assert m["frac_reward_zero_std"] == 0.5
    assert m["error/sandbox_error"] == 0.25 and m["sandbox/infra_error_frac"] == 0.25
    assert m["length/max"] == 8.0
