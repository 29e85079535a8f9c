"""pass@k against the exact combinatorial formula, the eval metrics, the eval spec fields and HumanEval."""

from __future__ import annotations

from itertools import combinations
from math import comb

import pytest

from tests.workers.test_launcher import _spec
from tests.workers.trainer.fake_control import FakeControl
from workers.launcher import run_supervised
from workers.trainer.eval_protocol import ProblemCounts, eval_plan, unscored_message
from workers.trainer.eval_sets import load_eval_set
from workers.trainer.grpo import pass_at_k
from workers.trainer.metrics import LocalStats, eval_metrics
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


def _counts(*rows: tuple[int, int]) -> list[ProblemCounts]:
    """Sampled-protocol counts (valid, passed) for problems P/0, P/1, ..."""
    return [ProblemCounts(f"P/{i}", n, c) for i, (n, c) in enumerate(rows)]


def test_eval_metrics_average_over_problems_of_every_rank():
    a, b = LocalStats(eval_counts=_counts((4, 1), (4, 0))), LocalStats(eval_counts=_counts((4, 4), (0, 0)))
    m = eval_metrics([a, b], k=2)
    assert m["eval/pass@1"] == pytest.approx((0.25 + 0.0 + 1.0) / 3)  # (0, 0): all sandbox_error, left out
    assert m["eval/pass@2"] == pytest.approx((0.5 + 0.0 + 1.0) / 3)
    assert m["eval/problems"] == 3
    assert eval_metrics([LocalStats()], k=2) == {}


def test_a_problem_whose_every_sample_hit_sandbox_error_is_counted_as_unscored_not_dropped():
    # given 3 problems, one of whose 4 samples all failed in the sandbox (the infrastructure's fault)
    stats = LocalStats(
        eval_counts=[
            ProblemCounts("P/0", 4, 1),
            ProblemCounts("P/1", 0, 0, errors=4),
            ProblemCounts("P/2", 4, 2),
        ]
    )
    # when rank 0 makes the metrics
    m = eval_metrics([stats], k=2)
    # then it is left out of the averages, and shown: 1 unscored beside 2 scored, n_min = 4
    assert m["eval/problems_unscored"] == 1 and m["eval/problems"] == 2
    assert m["eval/n_min"] == 4
    assert m["eval/pass@1"] == pytest.approx((0.25 + 0.5) / 2)
    assert m["eval/pass@2"] == pytest.approx((0.5 + (1 - 1 / 6)) / 2)  # 1 - C(2,2)/C(4,2) = 5/6
    # and the trainer's warning names it
    message = unscored_message(stats.eval_counts, "eval")
    assert message is not None and "P/1" in message and "1 of 3" in message and "P/0" not in message
    assert unscored_message(_counts((4, 1)), "eval") is None


def test_every_problem_unscored_still_reports_how_many_and_no_pass_rate():
    m = eval_metrics([LocalStats(eval_counts=_counts((0, 0), (0, 0)))], k=2)
    assert m["eval/problems_unscored"] == 2 and m["eval/problems"] == 0
    assert "eval/pass@1" not in m and "eval/n_min" not in m


def test_n_min_reports_the_fewest_valid_samples_and_pass_at_k_needs_k_of_them():
    # P/1 lost 3 of its 4 samples to sandbox_error: one valid sample cannot estimate pass@2
    m = eval_metrics([LocalStats(eval_counts=_counts((4, 2), (1, 1)))], k=2)
    assert m["eval/n_min"] == 1 and m["eval/problems_unscored"] == 0
    assert m["eval/pass@1"] == pytest.approx((0.5 + 1.0) / 2)
    assert "eval/pass@2" not in m


def test_codex_counts_take_pass_at_1_from_the_greedy_completion_and_pass_at_k_from_the_samples():
    # given P/0: greedy passed, 1 of 4 samples passed; P/1: greedy failed, 2 of 4 passed;
    # P/2: its greedy completion hit sandbox_error (unscored, though its samples are valid)
    counts = [
        ProblemCounts("P/0", 4, 1, greedy=(1, 1)),
        ProblemCounts("P/1", 4, 2, greedy=(1, 0)),
        ProblemCounts("P/2", 4, 4, greedy=(0, 0), errors=1),
    ]
    m = eval_metrics([LocalStats(eval_counts=counts)], k=2)
    assert m["eval/pass@1"] == pytest.approx((1.0 + 0.0) / 2)  # the greedy verdicts, not 0.25 and 0.5
    assert m["eval/pass@2"] == pytest.approx((0.5 + 5 / 6) / 2)
    assert (m["eval/problems"], m["eval/problems_unscored"], m["eval/n_min"]) == (2, 1, 4)
    assert [c.pass_at(1) for c in counts] == [1.0, 0.0, None]


def test_eval_plan_follows_the_protocol_and_eval_temperature_overrides_the_sampled_one():
    codex = eval_plan(parse_spec(_raw()).train)
    assert (codex.greedy, codex.samples, codex.temperature) == (True, 8, 0.8)
    assert eval_plan(parse_spec(_raw(eval_temperature=0.2)).train).temperature == 0.2
    only_greedy = eval_plan(parse_spec(_raw(eval_k=1)).train)  # pass@1 alone: nothing sampled
    assert (only_greedy.greedy, only_greedy.samples) == (True, 0)
    sampled = eval_plan(parse_spec(_raw(eval_protocol="sampled", temperature=0.7)).train)
    assert (sampled.greedy, sampled.samples, sampled.temperature) == (False, 8, 0.7)
    sampled_at = eval_plan(parse_spec(_raw(eval_protocol="sampled", eval_temperature=0.3)).train)
    assert sampled_at.temperature == 0.3
    with pytest.raises(ValueError, match=r"train\.eval_protocol"):
        parse_spec(_raw(eval_protocol="greedy"))


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


def test_eval_metrics_name_the_evaluation_set_besides_the_held_out_ones():
    a = LocalStats(eval_counts=_counts((4, 2)), eval_set_counts=_counts((4, 0), (4, 4)), eval_s=2.0)
    b = LocalStats(eval_set_counts=_counts((4, 1)), eval_s=3.0)
    m = eval_metrics([a, b], k=2, eval_set="humaneval")
    assert m["eval/pass@1"] == 0.5 and m["eval/problems"] == 1
    assert m["eval/humaneval/pass@1"] == pytest.approx((0.0 + 1.0 + 0.25) / 3)
    assert m["eval/humaneval/pass@2"] == pytest.approx((0.0 + 1.0 + 0.5) / 3)
    assert m["eval/humaneval/problems"] == 3
    assert m["eval/humaneval/problems_unscored"] == 0 and m["eval/humaneval/n_min"] == 4
    assert m["time/eval_s"] == 3.0
    assert "eval/humaneval/pass@1" not in eval_metrics([a, b], k=2)  # no set named: not reported


def test_the_humaneval_set_loads_from_the_installed_wheel_in_its_published_order():
    problems = load_eval_set("humaneval")
    assert len(problems) == 164
    assert [p.task_id for p in problems[:3]] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]
    first = problems[0]
    assert first.entry_point == "has_close_elements" and "def check(candidate)" in first.tests
    assert first.solution.strip() and first.prompt.startswith("from typing import List")
    assert [p.task_id for p in load_eval_set("humaneval", 5)] == [f"HumanEval/{i}" for i in range(5)]


@pytest.fixture
def control():
    fake = FakeControl(token="secret-token").start()
    yield fake
    fake.stop()


@pytest.mark.e2e  # a real deepspeed run
def test_a_run_with_eval_set_humaneval_charts_pass_at_1_and_pass_at_k_on_it(control, tmp_path):
    # given a short run on the demo problems that evaluates the first 3 HumanEval problems every step
    spec = _spec(control.url, steps=2)
    spec["train"].update(
        {
            "max_new_tokens": 8,
            "eval_set": "humaneval",
            "eval_set_problems": 3,
            "eval_every": 1,
            "eval_samples": 2,
            "eval_k": 2,
        }
    )
    control.spec = spec
    # when the real trainer runs under the deepspeed launcher (2 CPU ranks share the 3 problems)
    final = run_supervised(
        run_id=3, token="secret-token", control_url=control.url, workdir=tmp_path, heartbeat_s=0.5
    )
    # then every step's metrics carry pass@1 (greedy, the codex protocol) and pass@2 (sampled) on those
    # 3 problems, with each problem's 2 samples counted, and nothing held out
    assert final == "succeeded", (tmp_path / "train.log").read_text()[-3000:]
    metrics = [m["values"] for m in control.of_type("metric", "trainer")]
    assert len(metrics) == 2
    for m in metrics:
        assert m["eval/humaneval/problems"] + m["eval/humaneval/problems_unscored"] == 3
        assert m["eval/humaneval/n_min"] == 2
        assert 0.0 <= m["eval/humaneval/pass@1"] <= 1.0 and 0.0 <= m["eval/humaneval/pass@2"] <= 1.0
        assert m["time/eval_s"] > 0
        assert "eval/pass@1" not in m
