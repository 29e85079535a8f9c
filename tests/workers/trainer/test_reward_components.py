"""Reward components on hand-made cases: format and style (static, never executed), efficiency
(real sandbox times against the reference's), their weighted sum and the metrics they feed."""

from __future__ import annotations

import os

import pytest

from tests.workers.test_launcher import _spec
from tests.workers.trainer.fake_control import FakeControl
from workers.launcher import run_supervised
from workers.trainer.metrics import LocalStats, merge_metrics
from workers.trainer.reward_components import (
    EFFICIENCY_SLACK_MS,
    ReferenceTimes,
    cyclomatic_complexity,
    efficiency_score,
    format_score,
    gate_factor,
    parse_program,
    style_report,
    weighted_reward,
)
from workers.trainer.rewards import (
    Score,
    complete_components,
    gated_components,
    reward_from_result,
    sandbox_workers,
    score_completions,
)
from workers.trainer.spec import Problem, SandboxSpec, parse_spec, reward_weights

PROMPT = 'def add(a, b):\n    """Return a + b."""\n'
SOLUTION = "    return a + b\n"
ADD = Problem(
    task_id="T/add",
    prompt=PROMPT,
    entry_point="add",
    tests="def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(0, 0) == 0\n",
    solution=SOLUTION,
)


# --------------------------------------------------------------------------- format
def test_format_is_one_when_the_program_parses_and_implements_the_entry_point():
    assert format_score(PROMPT, SOLUTION, "add") == 1.0
    assert format_score(PROMPT, "    return 7\n", "add") == 1.0  # wrong, but well formed


@pytest.mark.parametrize(
    "completion",
    [
        "    return a +\n",  # does not parse
        "",  # only the prompt's docstring
        "    pass\n",  # a placeholder
        "    ...\n",
        "    return a\x00 + b\n",  # NUL: ast refuses it
    ],
)
def test_format_is_zero_when_the_program_does_not_parse_or_has_no_body(completion: str):
    assert format_score(PROMPT, completion, "add") == 0.0


def test_format_needs_the_entry_point_itself_defined():
    assert format_score("", "def plus(a, b):\n    return a + b\n", "add") == 0.0
    assert format_score("", "def add(a, b):\n    return a + b\n", "add") == 1.0
    assert format_score("", "x = 1\n", "") == 1.0  # no entry point named: parsing is enough


def test_format_and_style_never_run_the_code(tmp_path):
    marker = tmp_path / "ran"
    code = f"    open({str(marker)!r}, 'w').write('x')\n    return a + b\n"
    assert format_score(PROMPT, code, "add") == 1.0
    style_report(PROMPT, code, "add", SOLUTION)
    assert not marker.exists()


# --------------------------------------------------------------------------- style
def test_clean_code_has_no_style_findings():
    report = style_report(PROMPT, "    total = a + b\n    return total\n", "add", SOLUTION)
    assert (report.score, report.findings) == (1.0, ())


def test_each_style_finding_costs_a_quarter():
    completion = (
        "    import os\n"  # unused import
        "    unused = 3\n"  # unused variable
        "    try:\n"
        "        return a + b\n"
        "    except:\n"  # bare except
        "        return 0\n"
    )
    report = style_report(PROMPT, completion, "add", SOLUTION)
    assert sorted(f.split()[0] for f in report.findings) == [
        "bare-except",
        "unused-import",
        "unused-variable",
    ]
    assert report.score == pytest.approx(0.25)


def test_style_counts_only_the_completions_lines_not_the_prompts():
    prompt = "import math\nfrom typing import List\n\ndef add(a, b):\n"
    report = style_report(prompt, "    return a + b\n", "add", SOLUTION)
    assert report.findings == () and report.score == 1.0


def test_names_read_later_in_a_closure_or_underscored_or_global_are_not_unused():
    completion = (
        "    base = a\n"
        "    _ignored = 1\n"
        "    global COUNT\n"
        "    COUNT = 1\n"
        "    def inner():\n"
        "        return base + b\n"
        "    return inner()\n"
    )
    assert style_report(PROMPT, completion, "add", SOLUTION).findings == ()


def test_a_completion_that_does_not_parse_has_style_zero():
    report = style_report(PROMPT, "    return (\n", "add", SOLUTION)
    assert (report.score, report.findings) == (0.0, ("syntax-error",))


def test_cyclomatic_complexity_counts_every_decision_point():
    code = (
        "def f(x):\n"
        "    if x > 0 and x < 10:\n"  # if +1, and +1
        "        return 1\n"
        "    for i in range(x):\n"  # +1
        "        if i % 2:\n"  # +1
        "            continue\n"
        "    try:\n"
        "        pass\n"
        "    except ValueError:\n"  # +1
        "        pass\n"
        "    return [y for y in range(x) if y]\n"  # comprehension +1, its if +1
    )
    tree = parse_program(code)
    assert tree is not None
    assert cyclomatic_complexity(tree.body[0]) == 1 + 2 + 1 + 1 + 1 + 2


def test_far_more_complex_or_longer_than_the_reference_is_a_finding():
    branches = "".join(f"    if a == {i}:\n        return {i} + b\n" for i in range(12))
    report = style_report(PROMPT, branches + "    return a + b\n", "add", SOLUTION)
    kinds = {f.split()[0] for f in report.findings}
    assert kinds == {"too-complex", "too-long"}  # 13 > max(10, 2 * 1); 25 lines > max(10, 2 * 1)
    # the same code against a reference as involved as it is: no finding
    assert style_report(PROMPT, branches + "    return a + b\n", "add", branches + SOLUTION).findings == ()


# --------------------------------------------------------------------------- efficiency
def test_efficiency_is_the_bounded_time_ratio_and_zero_for_a_failure():
    slack = EFFICIENCY_SLACK_MS
    assert efficiency_score(True, 0.5, 2.0) == 1.0  # faster than the reference: capped at 1
    assert efficiency_score(True, 11.0, 2.0) == pytest.approx((2.0 + slack) / (11.0 + slack))
    assert efficiency_score(False, 0.1, 2.0) == 0.0  # failing code is never efficient
    assert efficiency_score(True, 50.0, None) == 1.0  # nothing to compare with: passing counts


def test_efficiency_counts_time_past_the_reference_in_whole_slacks():
    # (ref + 1) / (ref + excess rounded down to whole ms + 1), with ref = 2 ms
    assert efficiency_score(True, 2.9, 2.0) == 1.0  # 0.9 ms past it: within the slack, noise
    assert efficiency_score(True, 3.5, 2.0) == pytest.approx(3 / 4)  # 1.5 ms past: counted as 1
    assert efficiency_score(True, 4.0, 2.0) == pytest.approx(3 / 5)  # 2 ms past
    assert efficiency_score(True, 2.0 + 0.99 * EFFICIENCY_SLACK_MS, 2.0) == efficiency_score(True, 1.0, 2.0)


def test_equally_fast_passing_programs_get_the_same_efficiency_whatever_the_timing_noise():
    # given a group of programs that all do the reference's work: the reference itself four times,
    # and seven copies told apart only by a comment (each a program of its own for the sandbox)
    copies = [SOLUTION] * 4 + [f"    return a + b  # copy {i}\n" for i in range(7)]
    times = ReferenceTimes()
    # when the group is scored with efficiency weighted, in the real sandbox
    [group] = score_completions(
        [ADD],
        [copies],
        sandbox=SandboxSpec(timeout_s=5.0),
        partial_credit=False,
        weights={"correctness": 1.0, "efficiency": 1.0},
        reference_times=times,
    )
    # then every one passes and scores the same: sub-millisecond noise cannot split them
    assert all(s.passed for s in group)
    assert {s.components["efficiency"] for s in group} == {1.0}
    assert {s.reward for s in group} == {2.0}
    # and the identical texts were timed once, sharing one (median) time
    assert len({s.cpu_ms for s in group[:4]}) == 1


def test_a_slow_correct_candidate_scores_low_efficiency_against_the_timed_reference():
    # given the reference (fast) and two correct candidates, one doing needless work on every call
    slow = "    for _ in range(2_000_000):\n        pass\n    return a + b\n"
    times = ReferenceTimes()
    weights = {"correctness": 1.0, "efficiency": 1.0}
    # when they are scored in the real sandbox
    [[fast_score, slow_score, wrong_score]] = score_completions(
        [ADD],
        [[SOLUTION, slow, "    return a - b\n"]],
        sandbox=SandboxSpec(timeout_s=5.0),
        partial_credit=False,
        weights=weights,
        reference_times=times,
    )
    # then the reference was timed, and the slow one (tens of ms) scores far below the fast one
    assert times.get("T/add") is not None
    assert slow_score.passed and slow_score.cpu_ms > 10 * max(fast_score.cpu_ms, 1.0)
    assert slow_score.components["efficiency"] < 0.25
    assert fast_score.components["efficiency"] > 4 * slow_score.components["efficiency"]
    assert wrong_score.components == {"correctness": 0.0, "efficiency": 0.0}
    for s in (fast_score, slow_score, wrong_score):
        assert s.reward == pytest.approx(s.components["correctness"] + s.components["efficiency"])


def test_a_problem_whose_reference_fails_has_no_reference_time():
    broken = Problem("T/broken", PROMPT, "add", ADD.tests, solution="    return a - b\n")
    times = ReferenceTimes()
    [[score]] = score_completions(
        [broken],
        [[SOLUTION]],
        sandbox=SandboxSpec(timeout_s=5.0),
        partial_credit=False,
        weights={"correctness": 1.0, "efficiency": 1.0},
        reference_times=times,
    )
    assert times.get("T/broken") is None
    assert score.components["efficiency"] == 1.0


# --------------------------------------------------------------------------- weights
def test_default_weights_keep_the_reward_of_the_verdict_alone():
    [[good, bad]] = score_completions(
        [ADD],
        [[SOLUTION, "    return a + b if a else 7\n"]],
        sandbox=SandboxSpec(timeout_s=5.0),
        partial_credit=True,
    )
    assert good.reward == reward_from_result(True, "passed", 2, 2, partial_credit=True)[0] == 1.0
    assert bad.reward == reward_from_result(False, "wrong_answer", 1, 2, partial_credit=True)[0] == 0.5
    assert good.components == {"correctness": 1.0} and bad.components == {"correctness": 0.5}


def test_the_reward_is_the_weighted_sum_of_the_components():
    weights = {"correctness": 1.0, "efficiency": 0.0, "style": 0.5, "format": 0.25}
    assert weighted_reward(weights, {"correctness": 0.0, "style": 1.0, "format": 1.0}) == 0.75
    [[s]] = score_completions(
        [ADD],
        [["    import os\n    return a - b\n"]],  # wrong, parses, one finding
        sandbox=SandboxSpec(timeout_s=5.0),
        partial_credit=False,
        weights=weights,
        aux_gate="none",  # style and format count for every sample
    )
    assert s.components == {"correctness": 0.0, "style": 0.75, "format": 1.0}
    assert s.reward == pytest.approx(0.5 * 0.75 + 0.25 * 1.0)


# --------------------------------------------------------------------------- the style and format gate
STYLE_AND_FORMAT = {"correctness": 1.0, "efficiency": 0.0, "style": 0.5, "format": 0.25}
HALF_RIGHT = {"correctness": 0.5, "style": 0.75, "format": 1.0}  # partial credit, one style finding


def test_the_pass_gate_counts_style_and_format_only_for_passing_samples():
    parts, ungated = gated_components(HALF_RIGHT, "pass", passed=False, correctness=0.5)
    assert parts == {"correctness": 0.5, "style": 0.0, "format": 0.0}
    assert ungated == {"style": 0.75, "format": 1.0}  # what the code earned, kept for inspection
    assert weighted_reward(STYLE_AND_FORMAT, parts) == 0.5
    passing = {"correctness": 1.0, "style": 0.75, "format": 1.0}
    parts, _ = gated_components(passing, "pass", passed=True, correctness=1.0)
    assert weighted_reward(STYLE_AND_FORMAT, parts) == pytest.approx(1.0 + 0.5 * 0.75 + 0.25 * 1.0)


def test_the_correctness_gate_scales_style_and_format_by_the_correctness_score():
    parts, _ = gated_components(HALF_RIGHT, "correctness", passed=False, correctness=0.5)
    assert parts == {"correctness": 0.5, "style": 0.375, "format": 0.5}
    assert weighted_reward(STYLE_AND_FORMAT, parts) == pytest.approx(0.5 + 0.5 * 0.375 + 0.25 * 0.5)


def test_no_gate_counts_style_and_format_for_every_sample():
    parts, _ = gated_components(HALF_RIGHT, "none", passed=False, correctness=0.5)
    assert parts == HALF_RIGHT
    assert weighted_reward(STYLE_AND_FORMAT, parts) == pytest.approx(0.5 + 0.5 * 0.75 + 0.25 * 1.0)


def test_an_unknown_gate_is_refused_naming_the_setting():
    with pytest.raises(ValueError, match=r"reward_aux_gate: must be one of pass, correctness, none"):
        gate_factor("always", passed=True, correctness=1.0)


def test_a_stub_cannot_outrank_a_real_attempt_by_style_and_format_alone():
    # given a stub that returns a constant, a real attempt that fails its tests with one style
    # finding, and the reference (style and format weighted; the gate left at its default)
    stub, attempt = "    return 0\n", "    import os\n    return a - b\n"
    # when they are scored in the real sandbox
    [[s_stub, s_attempt, s_ref]] = score_completions(
        [ADD],
        [[stub, attempt, SOLUTION]],
        sandbox=SandboxSpec(timeout_s=5.0),
        partial_credit=False,
        weights=STYLE_AND_FORMAT,
    )
    # then neither failing sample earns anything, and only the passing one earns style and format
    assert (s_stub.passed, s_attempt.passed, s_ref.passed) == (False, False, True)
    assert s_stub.reward == s_attempt.reward == 0.0
    assert s_stub.ungated == {"style": 1.0, "format": 1.0}  # what the stub would have been paid
    assert s_ref.reward == pytest.approx(1.0 + 0.5 + 0.25)


def test_a_sample_the_critic_skipped_gets_its_static_components_and_weighted_reward():
    skipped = Score(1.0, True, True, "critic_skipped", 0, 0, 0, "", "")
    weights = {"correctness": 1.0, "efficiency": 1.0, "style": 1.0, "format": 1.0}
    [[done]] = complete_components([ADD], [[SOLUTION]], [[skipped]], weights=weights)
    assert done.components == {"correctness": 1.0, "efficiency": 1.0, "style": 1.0, "format": 1.0}
    assert done.reward == 4.0
    # a sample predicted to fail is gated like one that ran and failed
    predicted_fail = Score(0.0, True, False, "critic_skipped", 0, 0, 0, "", "")
    [[done]] = complete_components([ADD], [[SOLUTION]], [[predicted_fail]], weights=weights)
    assert done.components == {"correctness": 0.0, "efficiency": 0.0, "style": 0.0, "format": 0.0}
    assert done.ungated == {"style": 1.0, "format": 1.0}
    assert done.reward == 0.0


def test_component_shares_add_up_to_the_mean_reward():
    a = LocalStats(
        rewards=[1.5, 0.5],
        pass_frac=[1.0, 0.0],
        components={"correctness": [1.0, 0.0], "format": [1.0, 1.0]},
    )
    b = LocalStats(rewards=[0.5], pass_frac=[0.0], components={"correctness": [0.0], "format": [1.0]})
    m = merge_metrics([a, b], lr=0.1, grad_norm=0.0, step_s=1.0, weights={"correctness": 1.0, "format": 0.5})
    assert m["reward/correctness/mean"] == pytest.approx(1 / 3)
    assert m["reward/format/mean"] == 1.0
    assert m["reward/format/share"] == 0.5
    assert m["reward/correctness/share"] + m["reward/format/share"] == pytest.approx(m["reward/mean"])
    assert "reward/style/mean" not in m  # weight 0: not a component of this run


def test_gated_components_log_their_mean_before_the_gate_and_their_shares_still_add_up():
    # a passing sample (format 1) and a failing stub whose format 1 the pass gate zeroed
    a = LocalStats(
        rewards=[1.5, 0.0],
        pass_frac=[1.0, 0.0],
        components={"correctness": [1.0, 0.0], "format": [1.0, 0.0]},
        ungated={"format": [1.0, 1.0]},
    )
    m = merge_metrics([a], lr=0.1, grad_norm=0.0, step_s=1.0, weights={"correctness": 1.0, "format": 0.5})
    assert m["reward/format/mean"] == 0.5  # what the reward counted
    assert m["reward/format/ungated_mean"] == 1.0  # what the code earned before the gate
    assert m["reward/correctness/share"] + m["reward/format/share"] == m["reward/mean"] == 0.75
    assert "reward/correctness/ungated_mean" not in m


def test_reward_weights_come_from_the_spec_and_are_checked():
    raw = {
        "run_id": 1,
        "problems": [{"task_id": "T", "prompt": "", "entry_point": "f", "tests": "assert 1"}],
        "train": {},
    }
    assert reward_weights(parse_spec(raw).train) == {
        "correctness": 1.0,
        "efficiency": 0.0,
        "style": 0.0,
        "format": 0.0,
        "custom": 0.0,
    }
    raw["train"] = {"reward_style": 0.5, "reward_format": 0.25}
    assert reward_weights(parse_spec(raw).train)["style"] == 0.5
    raw["train"] = {"reward_style": -1}
    with pytest.raises(ValueError, match=r"train\.reward_style"):
        parse_spec(raw)
    raw["train"] = {"reward_correctness": 0}
    with pytest.raises(ValueError, match=r"train\.reward_correctness: at least one reward weight"):
        parse_spec(raw)
    raw["train"] = {"eval_set": "mbpp"}
    with pytest.raises(ValueError, match=r"train\.eval_set: must be one of none, humaneval"):
        parse_spec(raw)
    raw["train"] = {"eval_set": "humaneval", "eval_set_problems": 165}
    with pytest.raises(ValueError, match=r"train\.eval_set_problems: must be an integer ≤ 164"):
        parse_spec(raw)


# --------------------------------------------------------------------------- the sandbox pool
@pytest.mark.parametrize(
    ("environ", "cpus", "expected"),
    [
        ({}, 16, 16),  # one rank (no launcher): the whole machine
        ({"LOCAL_SIZE": "4"}, 16, 4),  # deepspeed's launcher, 4 ranks on the node
        ({"LOCAL_WORLD_SIZE": "3", "LOCAL_SIZE": "8"}, 16, 5),  # torchrun's name first; 16 // 3
        ({"LOCAL_SIZE": "8"}, 2, 1),  # more ranks than CPUs: still one worker each
        ({"LOCAL_SIZE": " "}, 6, 6),  # blank: as if unset
    ],
)
def test_each_rank_sizes_its_sandbox_pool_to_its_share_of_the_cpus(environ, cpus, expected):
    assert sandbox_workers(environ, cpus=cpus) == expected


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_local_world_size_is_refused_naming_the_variable(value):
    with pytest.raises(ValueError, match=r"^LOCAL_SIZE: expected the number of ranks on this node"):
        sandbox_workers({"LOCAL_SIZE": value}, cpus=8)


def test_the_pool_defaults_to_the_cpus_this_process_may_use(monkeypatch):
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.setenv("LOCAL_SIZE", "2")
    assert sandbox_workers() == max(1, len(os.sched_getaffinity(0)) // 2)


# --------------------------------------------------------------------------- the real trainer
@pytest.fixture
def control():
    fake = FakeControl(token="secret-token").start()
    yield fake
    fake.stop()


@pytest.mark.e2e  # a real deepspeed run
def test_a_run_logs_each_components_mean_and_shares_that_add_up_to_the_reward(control, tmp_path):
    # given two problems whose prompts already hold the body and end in a comment, so that most of
    # the untrained model's short completions parse: one passes its test, one never can
    problems = [
        {
            "task_id": "T/add",
            "prompt": "def add(a, b):\n    return a + b  # ",
            "entry_point": "add",
            "tests": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
        },
        {
            "task_id": "T/off",
            "prompt": "def ident(x):\n    return x + 1  # ",
            "entry_point": "ident",
            "tests": "def check(candidate):\n    assert candidate(5) == 5\n",
        },
    ]
    spec = _spec(control.url, steps=2)
    spec["problems"] = problems
    spec["train"].update({"max_new_tokens": 8, "prompts_per_step": 2, "reward_format": 0.5})
    control.spec = spec
    # when the real trainer runs under the deepspeed launcher
    final = run_supervised(
        run_id=3, token="secret-token", control_url=control.url, workdir=tmp_path, heartbeat_s=0.5
    )
    # then every step logs both components and their shares add up to the logged mean reward
    assert final == "succeeded", (tmp_path / "train.log").read_text()[-3000:]
    metrics = [m["values"] for m in control.of_type("metric", "trainer")]
    assert len(metrics) == 2
    for m in metrics:
        assert 0 < m["reward/correctness/mean"] < 1 and 0 < m["reward/format/mean"] <= 1
        assert m["reward/format/share"] == pytest.approx(0.5 * m["reward/format/mean"])
        # the pass gate: format counts only where the sample passed, so never above its ungated mean
        assert m["reward/format/mean"] <= m["reward/correctness/mean"]
        assert m["reward/format/mean"] <= m["reward/format/ungated_mean"] <= 1
        total = m["reward/correctness/share"] + m["reward/format/share"]
        assert total == pytest.approx(m["reward/mean"], abs=1e-9)
        assert "reward/style/mean" not in m and "reward/efficiency/mean" not in m
