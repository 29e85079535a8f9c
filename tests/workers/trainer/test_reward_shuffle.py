"""The shuffled-reward control (bench/learning.py --shuffle-rewards): each group's rewards permuted among
its valid members."""

from __future__ import annotations

import pytest
import torch

from workers.trainer.grpo import group_advantages, shuffle_within_groups


def test_a_group_keeps_its_rewards_and_invalid_members_keep_their_place():
    rewards = [[1.0, 0.0, 0.5, 0.0, 9.0, 1.0], [0.25, 0.75]]
    valid = [[True, True, True, True, False, True], [True, True]]
    for seed in range(20):
        out = shuffle_within_groups(rewards, valid, seed)
        assert out[0][4] == 9.0  # a sandbox_error sample's reward stays where it was (and out of the update)
        assert sorted(out[0][j] for j in (0, 1, 2, 3, 5)) == [0.0, 0.0, 0.5, 1.0, 1.0]
        assert sorted(out[1]) == [0.25, 0.75]


def test_rewards_really_move_and_the_same_seed_moves_them_the_same_way():
    rewards = [[float(j) for j in range(8)]]
    valid = [[True] * 8]
    outs = [shuffle_within_groups(rewards, valid, seed)[0] for seed in range(200)]
    assert shuffle_within_groups(rewards, valid, 7) == shuffle_within_groups(rewards, valid, 7)
    assert rewards == [[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]]  # the input is left alone
    # Over 200 seeds every reward lands in every slot: a permutation, not a fixed rotation. (Each
    # (slot, value) pair is missed by all 200 with probability (7/8)^200 < 1e-11.)
    for slot in range(8):
        assert {out[slot] for out in outs} == set(rewards[0])
    assert sum(out == rewards[0] for out in outs) < 5  # the identity is 1 of 8! = 40320 orders


def test_a_group_with_one_valid_member_is_unchanged():
    assert shuffle_within_groups([[0.0, 1.0, 0.0]], [[False, True, False]], 3) == [[0.0, 1.0, 0.0]]


def test_advantages_after_the_shuffle_are_the_same_values_on_other_completions():
    # Group mean 0.5, population std 0.5: advantages ±1/(0.5 + 1e-4) whichever completion holds which reward.
    rewards = [[1.0, 0.0, 0.0, 1.0]]
    valid = [[True] * 4]
    shuffled = shuffle_within_groups(rewards, valid, 1)
    adv, _ = group_advantages(torch.tensor(shuffled, dtype=torch.float64), torch.tensor(valid), scale="group")
    expected = [(r - 0.5) / (0.5 + 1e-4) for r in shuffled[0]]
    assert adv[0].tolist() == pytest.approx(expected)


def test_a_group_whose_flags_do_not_match_its_rewards_is_refused():
    with pytest.raises(ValueError, match="3 rewards has 2 valid flags"):
        shuffle_within_groups([[0.0, 1.0, 0.0]], [[True, True]], 0)
