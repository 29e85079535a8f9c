"""Reward hacking on the node: every scored sample scanned, flagged ones counted over all ranks, always
posted, and (hack_zero_reward) a flagged pass rewarded 0; which other samples are posted
(generations_keep)."""

from __future__ import annotations

import pytest

from workers.detectors import Rule
from workers.trainer.critic import CRITIC_SKIPPED
from workers.trainer.hacks import hack_review
from workers.trainer.metrics import (
    GENERATIONS_FAILING_CAP,
    GENERATIONS_PASSING_CAP,
    LocalStats,
    Sample,
    generations_to_post,
    merge_metrics,
    sample_key,
)
from workers.trainer.rewards import Score
from workers.trainer.rollout import Completion
from workers.trainer.spec import Problem

ADD = Problem(
    task_id="T/add",
    prompt="def add(a, b):\n",
    entry_point="add",
    tests="def check(candidate):\n    assert candidate(20, 22) == 42\n",
)
HONEST = "    return a + b\n"
HARDCODED = "    return 42\n"  # passes the one test, and returns its expected answer
SPECIAL = "    if a == 20:\n        return 42\n    return a - b\n"  # special-cases the test's input
EXITS = "    import sys\n    sys.exit(0)\n"


def score(passed: bool, error_class: str = "", reward: float | None = None) -> Score:
    cls = error_class or ("passed" if passed else "wrong_answer")
    return Score(
        reward=(1.0 if passed else 0.0) if reward is None else reward,
        valid=True,
        passed=passed,
        error_class=cls,
        tests_passed=int(passed),
        tests_total=1,
        duration_ms=3,
        stdout="",
        stderr="",
    )


def completion(text: str) -> Completion:
    return Completion(text=text, token_ids=(1, 2, 3), logprobs=(-0.1, -0.1, -0.1), finish_reason="eos")


def test_a_flagged_pass_scores_zero_only_with_zeroing_and_everything_else_is_left_alone():
    texts = [[HONEST, HARDCODED, SPECIAL, HARDCODED]]
    scores = [[score(True), score(True), score(False, reward=0.25), score(True, reward=0.8)]]

    kept = hack_review([ADD], texts, scores, zero_reward=False)
    zeroed = hack_review([ADD], texts, scores, zero_reward=True)

    assert kept.scores == scores and kept.zeroed == 0
    assert [bool(f) for f in kept.flags[0]] == [False, True, True, True]
    assert {f.rule for f in kept.flags[0][1]} == {Rule.HARDCODED_OUTPUT}
    assert {f.rule for f in kept.flags[0][2]} >= {Rule.SPECIAL_CASED_INPUT}
    assert zeroed.flags == kept.flags
    assert [s.reward for s in zeroed.scores[0]] == [1.0, 0.0, 0.25, 0.0]  # the failing one keeps its credit
    assert zeroed.zeroed == 2
    assert all(s.passed for s in zeroed.scores[0][:2])  # the tests did pass: pass_rate says so
    assert zeroed.scores[0][0] is scores[0][0]


def test_syntax_errors_and_critic_skipped_samples_are_not_scanned():
    texts = [[EXITS, EXITS, EXITS]]
    scores = [[score(False, "syntax_error"), score(True, CRITIC_SKIPPED), score(False, "runtime_error")]]

    review = hack_review([ADD], texts, scores, zero_reward=True)

    assert [bool(f) for f in review.flags[0]] == [False, False, True]
    assert review.flags[0][2][0].rule == Rule.EARLY_EXIT
    assert review.scores[0][1].reward == 1.0 and review.zeroed == 0


def stats_of(texts: list[str], passed: list[bool], *, keep: str = "capped", sample: int = 32) -> LocalStats:
    """One rank's step: ADD sampled len(texts) times, scanned, then recorded as loop.step does."""
    st = LocalStats(keep=keep, keep_sample=sample)
    group = [completion(t) for t in texts]
    scores = [[score(p) for p in passed]]
    review = hack_review([ADD], [texts], scores, zero_reward=True)
    st.note_hacks([ADD], [group], review)
    for c, s in zip(group, review.scores[0], strict=True):
        st.record(ADD, c, s)
    return st


def test_every_flagged_sample_is_posted_beyond_the_caps():
    honest_passes, honest_fails, hacks = 5, GENERATIONS_FAILING_CAP + 3, 4
    texts = [HONEST] * honest_passes + [f"    return a * b + {i}\n" for i in range(honest_fails)]
    texts += [HARDCODED] * hacks
    st = stats_of(texts, [True] * honest_passes + [False] * honest_fails + [True] * hacks)

    posted = generations_to_post([st])

    assert st.flagged == hacks and st.zeroed == hacks
    assert [s.completion for s in posted].count(HARDCODED) == hacks
    assert [s.completion for s in posted].count(HONEST) == GENERATIONS_PASSING_CAP
    assert len(posted) == GENERATIONS_FAILING_CAP + GENERATIONS_PASSING_CAP + hacks
    assert all(s.reward == 0.0 and s.passed for s in posted if s.completion == HARDCODED)


def test_flagged_and_zeroed_shares_are_over_every_sample_of_every_rank():
    rank0 = stats_of([HONEST, HARDCODED, HONEST, "    return a - b\n"], [True, True, True, False])
    rank1 = stats_of(
        [HARDCODED, SPECIAL, HONEST, HONEST, HONEST, EXITS], [True, False, True, True, True, False]
    )

    m = merge_metrics([rank0, rank1], lr=1e-3, grad_norm=0.0, step_s=1.0)

    # Flagged: rank 0's hardcoded pass; rank 1's hardcoded pass, special case and exit: 4 of 10.
    assert m["review/flagged_frac"] == pytest.approx(4 / 10)
    assert m["review/zeroed_frac"] == pytest.approx(2 / 10)  # the two flagged passes
    assert merge_metrics([LocalStats()], lr=0.0, grad_norm=0.0, step_s=1.0)["review/flagged_frac"] == 0.0


def test_keep_all_posts_every_sample_once():
    texts = [f"    return a + b + {i}\n" for i in range(12)] + [HARDCODED]
    rank0 = stats_of(texts[:7], [True] * 7, keep="all")
    rank1 = stats_of(texts[7:], [False] * 5 + [True], keep="all")

    posted = [s.completion for s in generations_to_post([rank0, rank1])]

    assert sorted(posted) == sorted(texts)


def test_keep_sample_posts_the_same_uniform_draw_as_over_all_samples_at_once_and_every_flagged_one():
    texts = [f"    return a + b + {i}\n" for i in range(20)]
    rank0 = stats_of([*texts[:9], HARDCODED], [True] * 10, keep="sample", sample=5)
    rank1 = stats_of(texts[9:], [False] * 11, keep="sample", sample=5)
    assert len(rank0.sampled) == len(rank1.sampled) == 5  # a rank keeps no more than the draw

    posted = [s.completion for s in generations_to_post([rank0, rank1])]

    # The draw: the 5 smallest keys of all 20 unflagged samples (a key hashes problem, place, text).
    places = [(t, i + 1) for i, t in enumerate(texts[:9])] + [(t, i + 1) for i, t in enumerate(texts[9:])]
    keyed = sorted(
        places, key=lambda tp: sample_key(Sample("T/add", tp[0], 0, False, "", 0, 0, "", "", 0), tp[1])
    )
    assert sorted(posted[:-1]) == sorted(t for t, _ in keyed[:5])
    assert posted[-1] == HARDCODED
