"""The GRPO variants of the field, each against a hand computation of its published definition."""

from __future__ import annotations

import math
import statistics

import pytest
import torch

from workers.spec import SettingError, TrainConfig, check_rules, keeps_reference, kl_monitor_every
from workers.trainer.batches import Row, loss_rows, lr_at, micro_batches, micro_batches_per_step, mini_batches
from workers.trainer.grpo import (
    ADV_EPS,
    group_advantages,
    grpo_loss,
    moments_std,
    overlong_penalty,
    token_weights,
)


def close(actual: torch.Tensor, expected: list) -> None:
    torch.testing.assert_close(actual.double(), torch.tensor(expected, dtype=torch.float64))


REWARDS = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
ALL_VALID = torch.ones_like(REWARDS, dtype=torch.bool)


# --------------------------------------------------------------------------- advantages
def test_unbiased_group_std_divides_by_n_minus_one():
    adv, _ = group_advantages(REWARDS, ALL_VALID, unbiased=True)

    # mean 0.25; squared deviations 0.5625 + 3 × 0.0625 = 0.75; / 3 -> std 0.5
    assert adv[0, 0].item() == pytest.approx(0.75 / (0.5 + ADV_EPS))
    assert adv[0, 1].item() == pytest.approx(-0.25 / (0.5 + ADV_EPS))


def test_population_group_std_divides_by_n():
    adv, _ = group_advantages(REWARDS, ALL_VALID)

    std = math.sqrt(0.75 / 4)
    assert adv[0, 0].item() == pytest.approx(0.75 / (std + ADV_EPS))


def test_dr_grpo_leaves_the_centred_reward_unscaled():
    adv, _ = group_advantages(REWARDS, ALL_VALID, scale="none")

    close(adv, [[0.75, -0.25, -0.25, -0.25]])


def test_batch_scaling_divides_by_the_batch_std_of_the_rewards():
    rewards = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.5, 0.0]])
    values = [1.0, 0.0, 1.0, 1.0, 0.5, 0.0]
    std = moments_std(sum(values), sum(v * v for v in values), len(values), unbiased=False)
    assert std == pytest.approx(statistics.pstdev(values))

    adv, zero_std = group_advantages(
        rewards, torch.ones_like(rewards, dtype=torch.bool), scale="batch", batch_std=std
    )

    close(
        adv,
        [
            [0.5 / (std + ADV_EPS), -0.5 / (std + ADV_EPS)],
            [0, 0],
            [0.25 / (std + ADV_EPS), -0.25 / (std + ADV_EPS)],
        ],
    )
    assert zero_std.tolist() == [False, True, False]


def test_unbiased_moments_std_is_the_sample_std():
    values = [0.2, 0.9, 0.4]
    std = moments_std(sum(values), sum(v * v for v in values), 3, unbiased=True)
    assert std == pytest.approx(statistics.stdev(values))


def test_rewards_equal_but_for_float_rounding_are_a_zero_std_group():
    # 0.1 + 0.2 != 0.3 in floats: the exact test called this group informative and scaled its noise.
    rewards = torch.tensor([[0.1 + 0.2, 0.3, 0.3]], dtype=torch.float64)

    adv, zero_std = group_advantages(rewards, torch.ones_like(rewards, dtype=torch.bool))

    assert bool(zero_std[0])
    assert torch.equal(adv, torch.zeros_like(adv))


# --------------------------------------------------------------------------- loss aggregation
MASK = torch.tensor([[True, True, True, False], [True, False, False, False]])


def test_token_mean_weighs_every_token_of_the_global_batch_alike():
    w = token_weights(MASK, agg="token_mean", tokens=8, sequences=3, max_new_tokens=4)
    close(w, [[1 / 8] * 3 + [0], [1 / 8, 0, 0, 0]])


def test_seq_mean_weighs_each_completion_alike_then_its_tokens():
    w = token_weights(MASK, agg="seq_mean", tokens=8, sequences=3, max_new_tokens=4)
    close(w, [[1 / 9] * 3 + [0], [1 / 3, 0, 0, 0]])


def test_dr_grpo_constant_divides_by_completions_times_the_generation_budget():
    w = token_weights(MASK, agg="constant", tokens=8, sequences=3, max_new_tokens=4)
    close(w, [[1 / 12] * 3 + [0], [1 / 12, 0, 0, 0]])


def test_the_weighted_loss_is_the_sum_of_weighted_token_losses():
    logp = torch.zeros(2, 4, requires_grad=True)
    adv = torch.tensor([1.0, -2.0])
    w = token_weights(MASK, agg="seq_mean", tokens=4, sequences=2, max_new_tokens=4)

    out = grpo_loss(logp, torch.zeros(2, 4), adv, MASK, clip_eps=0.2, weights=w)

    # ratio 1: token losses -A; row 0: 3 × (-1) / (3 × 2); row 1: +2 / (1 × 2)
    assert out.loss.item() == pytest.approx(-0.5 + 1.0)
    out.loss.backward()
    close(logp.grad, [[-1 / 6] * 3 + [0], [1.0, 0, 0, 0]])


# --------------------------------------------------------------------------- clip-higher
def test_clip_higher_lets_a_positive_advantage_ratio_rise_further():
    old = torch.zeros(1, 2)
    logp = torch.tensor([[math.log(1.25), math.log(1.35)]], requires_grad=True)
    mask = torch.ones(1, 2, dtype=torch.bool)

    out = grpo_loss(logp, old, torch.tensor([1.0]), mask, clip_eps=0.2, clip_eps_high=0.28)

    # 1.25 < 1.28 stays (gradient flows); 1.35 is clipped to 1.28 (none)
    assert out.loss.item() == pytest.approx(-(1.25 + 1.28) / 2)
    assert (out.clip_low, out.clip_high) == (0, 1)
    out.loss.backward()
    assert logp.grad[0, 0].item() == pytest.approx(-1.25 / 2)
    assert logp.grad[0, 1].item() == 0.0


def test_the_lower_clip_stays_at_clip_eps():
    logp = torch.tensor([[math.log(0.75)]], requires_grad=True)
    out = grpo_loss(
        logp,
        torch.zeros(1, 1),
        torch.tensor([-1.0]),
        torch.ones(1, 1, dtype=torch.bool),
        clip_eps=0.2,
        clip_eps_high=0.28,
    )
    assert out.loss.item() == pytest.approx(0.8)
    assert (out.clip_low, out.clip_high) == (1, 0)


def test_log_ratio_statistics_cover_the_unmasked_tokens():
    logp = torch.tensor([[0.1, -0.3, 5.0]])
    out = grpo_loss(
        logp, torch.zeros(1, 3), torch.tensor([1.0]), torch.tensor([[True, True, False]]), clip_eps=0.2
    )
    assert out.log_ratio_sum == pytest.approx(-0.2)
    assert out.log_ratio_sq_sum == pytest.approx(0.1)
    assert out.log_ratio_max == pytest.approx(0.3)


# --------------------------------------------------------------------------- overlong
@pytest.mark.parametrize(
    ("length", "truncated", "expected"),
    [
        (12, False, 0.0),
        (13, False, -0.25),
        (15, False, -0.75),
        (16, False, -1.0),
        (16, True, -1.0),
        (3, True, -1.0),
    ],
)
def test_dapo_soft_overlong_punishment(length: int, truncated: bool, expected: float):
    # L_max 16, L_cache 4: free up to 12 tokens, then (12 - |y|) / 4
    assert overlong_penalty(length, truncated, max_new_tokens=16, buffer=4) == pytest.approx(expected)


def test_a_masked_overlong_row_adds_nothing_to_the_normalisation():
    rows = [
        Row([1], [5, 6, 7], [0.0] * 3, 1.0),
        Row([1], [5, 6], [0.0] * 2, 1.0, in_loss=False),
        Row([1], [], [], 0.0),
    ]
    assert loss_rows(rows) == (3, 1)


# --------------------------------------------------------------------------- batch structure
def _train(**kw) -> TrainConfig:
    return TrainConfig(**kw)


def test_mini_batches_hold_whole_groups_as_evenly_as_possible():
    groups = [[Row([1], [i], [0.0], 0.0)] * 2 for i in range(5)]
    parts = mini_batches(groups, _train(prompts_per_step=5, mini_batches=2))
    assert [len(p) for p in parts] == [6, 4]
    assert [r.completion[0] for r in parts[1]] == [3, 3, 4, 4]


def test_micro_batches_pad_with_empty_ones_to_the_count_every_rank_runs():
    assert micro_batches([1, 2, 3], size=2, count=3) == [[1, 2], [3], []]
    assert micro_batches([1, 2, 3], size=0, count=2) == [[1, 2, 3], []]
    with pytest.raises(ValueError, match="more than 1"):
        micro_batches([1, 2, 3], size=2, count=1)


def test_micro_batches_per_step_fit_the_largest_part_any_rank_holds():
    # 5 prompts on 2 ranks: up to 3 groups a rank; 2 mini-batches: up to 2 groups = 8 rows; 3 a micro-batch
    train = _train(prompts_per_step=5, group_size=4, mini_batches=2, micro_batch_size=3)
    assert micro_batches_per_step(train, world=2) == 3
    assert micro_batches_per_step(_train(prompts_per_step=5), world=2) == 1


def test_mini_batches_are_at_most_the_prompts():
    with pytest.raises(SettingError, match="mini_batches"):
        check_rules(_train(prompts_per_step=2, mini_batches=3))


def test_clip_eps_high_below_clip_eps_is_refused():
    with pytest.raises(SettingError, match="clip_eps_high"):
        check_rules(_train(clip_eps=0.2, clip_eps_high=0.1))


# --------------------------------------------------------------------------- learning rate
def test_lr_warms_up_linearly_then_stays_constant():
    train = _train(lr=1e-3, lr_warmup_steps=4, steps=10)
    assert [lr_at(train, u) for u in range(6)] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])


def test_cosine_falls_from_lr_to_the_floor_at_the_last_update():
    # 2 SFT steps, 8 RL steps × 2 mini-batches = 16 updates; warm-up 2, then cosine over updates 2..15
    train = _train(
        lr=1e-3,
        lr_warmup_steps=2,
        lr_schedule="cosine",
        lr_min_ratio=0.1,
        steps=10,
        sft_warmup_steps=2,
        prompts_per_step=2,
        mini_batches=2,
    )
    assert lr_at(train, 1) == pytest.approx(1e-3)
    assert lr_at(train, 2) == pytest.approx(1e-3)
    assert lr_at(train, 15) == pytest.approx(1e-4)
    half = 1e-4 + 0.9e-3 * 0.5 * (1 + math.cos(math.pi * (8 - 2) / 13))
    assert lr_at(train, 8) == pytest.approx(half)


# --------------------------------------------------------------------------- the KL monitor
def test_the_kl_monitor_is_on_for_small_models_off_for_large_ones_unless_set():
    assert kl_monitor_every(_train(), params=500_000_000) == 10
    assert kl_monitor_every(_train(), params=7_000_000_000) == 0
    assert kl_monitor_every(_train(kl_monitor_every=3), params=7_000_000_000) == 3
    assert keeps_reference(_train(), params=1_000) and not keeps_reference(
        _train(kl_monitor_every=0), params=1_000
    )
    assert keeps_reference(_train(beta=0.1, kl_monitor_every=0), params=7_000_000_000)
