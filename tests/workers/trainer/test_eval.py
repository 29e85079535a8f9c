"""pass@k against the exact combinatorial formula, the eval metrics and the eval spec fields."""

from __future__ import annotations

from itertools import combinations
from math import comb

import pytest

from workers.trainer.grpo import pass_at_k
from workers.trainer.loop import LocalStats, eval_metrics
from workers.trainer.spec import parse_spec


def _exact(n: int, c: int, k: int) -> float:
    """The share of k-subsets of n samples (c of them passing) that hold at least one pass."""
    outcomes = [True] * c + [False] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8, 10])
def test_pass_at_k_equals_the_exact_combinatorial_formula(n: int):
    for c in range(n + 1):
        for k in range(1, n + 1):
            expected = 1 - comb(n - c, k) / comb(n, k)
            assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)
            assert pass_at_k(n, c, k) == pytest.approx(_exact(n, c, k), abs=1e-12)


def test_pass_at_1_is_the_pass_fraction_and_hand_computed_values():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 3, 3) == 1.0  # n - c < k: every 3-subset holds a pass


@pytest.mark.parametrize(("n", "c", "k"), [(3, 4, 1), (3, -1, 1), (3, 1, 0), (3, 1, 4)])
def test_pass_at_k_rejects_impossible_counts(n: int, c: int, k: int):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_eval_metrics_average_over_problems_of_every_rank():
    a, b = LocalStats(eval_counts=[(4, 1), (4, 0)]), LocalStats(eval_counts=[(4, 4), (0, 0)])
    m = eval_metrics([a, b], k=2)
    assert m["eval/pass@1"] == pytest.approx((0.25 + 0.0 + 1.0) / 3)  # (0, 0): all sandbox_error, skipped
    assert m["eval/pass@2"] == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    assert m["eval/problems"] == 3
    assert eval_metrics([LocalStats()], k=2) == {}


def _raw(**train: object) -> dict:
    problems = [
        {
            "task_id": f"T/{i}",
            "prompt": "def f():\n",
            "entry_point": "f",
            "tests": "def check(c):\n    pass\n",
        }
        for i in range(3)
    ]
    return {"run_id": 1, "train": train, "problems": problems}


def test_eval_spec_fields_have_defaults_and_are_checked():
    t = parse_spec(_raw()).train
    assert (t.eval_every, t.eval_problems, t.eval_samples, t.eval_k) == (0, 0, 8, 4)
    assert t.reset_optimizer_after_sft is True
    with pytest.raises(ValueError, match=r"train\.eval_problems"):
        parse_spec(_raw(eval_problems=3))
    with pytest.raises(ValueError, match=r"train\.eval_k"):
        parse_spec(_raw(eval_samples=2, eval_k=3))
