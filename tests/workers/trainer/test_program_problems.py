"""Program problems in the trainer (docs/trainer.md, "Program problems"): the spec's fields, prompts
and stop strings, and rewards with partial credit by cases from the real sandbox, on completions
written here (no model needed)."""

from __future__ import annotations

from typing import Any

import pytest

from workers.trainer.metrics import LocalStats, merge_metrics
from workers.trainer.prompting import (
    PROGRAM_INSTRUCTION,
    PROGRAM_STOP_STRINGS,
    STOP_STRINGS,
    build_prompt,
    extract_code,
    scoring_inputs,
    stop_strings,
)
from workers.trainer.rewards import EVENT_CASES, event_cases, score_completions
from workers.trainer.rollout import Completion
from workers.trainer.spec import ModelSpec, Problem, SandboxSpec, parse_spec

STATEMENT = "Read an integer n and print n * 2.\nThe input holds one line."
SUM = Problem(
    task_id="P/double",
    prompt=STATEMENT,
    entry_point="",
    tests="",
    solution="print(int(input()) * 2)\n",
    kind="program",
    cases=(("3\n", "6\n"), ("5\n", "10\n"), ("0\n", "0\n"), ("-4\n", "-8\n")),
)
SANDBOX = SandboxSpec(timeout_s=2.0, memory_mb=512)


def spec_with(problem: dict[str, Any]) -> dict[str, Any]:
    base = {"task_id": "F/1", "prompt": "def f():\n", "entry_point": "f", "tests": "assert f() is None\n"}
    return {"run_id": 1, "problems": [base, problem]}


def test_the_spec_takes_program_problems_and_names_bad_fields() -> None:
    raw = {"task_id": "P/1", "prompt": "Print 1.", "kind": "program", "cases": [{"input": "", "output": "1"}]}
    spec = parse_spec(spec_with({**raw, "compare": "float"}))
    p = spec.problems[1]
    assert (p.kind, p.cases, p.compare, p.entry_point, p.tests) == ("program", (("", "1"),), "float", "", "")
    assert spec.problems[0].kind == "function" and spec.problems[0].cases == ()
    bad = [
        ({**raw, "kind": "script"}, "problems[1].kind: must be one of function, program"),
        ({**raw, "cases": []}, "problems[1].cases: a program problem needs at least one case"),
        ({**raw, "cases": [{"input": 1, "output": "1"}]}, "problems[1].cases[0]: must be an object"),
        ({**raw, "cases": "1"}, "problems[1].cases: must be a list"),
        ({**raw, "compare": "fuzzy"}, "problems[1].compare: must be one of exact, whitespace, float"),
        ({**raw, "kind": "function", "entry_point": "f", "tests": ""}, "only a program problem has cases"),
    ]
    for problem, message in bad:
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            parse_spec(spec_with(problem))


class Template:
    def apply_chat_template(self, conversation: Any, **kwargs: Any) -> str:
        return "<user>" + conversation[0]["content"] + "<assistant>"


def test_a_base_model_continues_the_statement_as_comments_and_stops_before_another_problem() -> None:
    prompt = build_prompt(SUM, chat=False)
    assert prompt.startswith("# Problem\n# Read an integer n and print n * 2.\n# The input holds one line.\n")
    assert prompt.endswith("writes standard output.\n")
    program = extract_code("n = int(input())\nprint(n * 2)\n", chat=False, problem=SUM)
    assert program == prompt + "n = int(input())\nprint(n * 2)\n"
    compile(program, "<program>", "exec")  # the header is valid Python
    base = ModelSpec()
    assert stop_strings(SUM, base) == PROGRAM_STOP_STRINGS
    assert "\ndef " not in PROGRAM_STOP_STRINGS and "\nif __name__" not in PROGRAM_STOP_STRINGS
    function = Problem(task_id="F", prompt="def f():\n", entry_point="f", tests="")
    assert stop_strings(function, base) == STOP_STRINGS  # functions as before


def test_a_chat_model_is_asked_for_a_whole_program_and_its_fenced_code_is_run_as_is() -> None:
    prompt = build_prompt(SUM, chat=True, tokenizer=Template())
    assert prompt == f"<user>{STATEMENT}\n\n{PROGRAM_INSTRUCTION}<assistant>"
    answer = "Here:\n```python\nimport sys\nprint(int(sys.stdin.read()) * 2)\n```\nDone."
    assert extract_code(answer, chat=True, problem=SUM) == "import sys\nprint(int(sys.stdin.read()) * 2)\n"
    assert stop_strings(SUM, ModelSpec(kind="hf", path="x", chat=True)) == ()
    scored, texts = scoring_inputs(SUM, [answer], chat=True)
    assert scored.prompt == "" and texts == ["import sys\nprint(int(sys.stdin.read()) * 2)\n"]


def test_the_reward_is_the_share_of_cases_passed_and_pass_rate_counts_only_all_passed() -> None:
    # given four samples of a program problem: right, right on half the cases, not compiling, crashing
    problem, texts = scoring_inputs(
        SUM,
        [
            "print(int(input()) * 2)\n",
            "n = int(input())\nprint(n * 2 if n > 0 else 1)\n",  # wrong on 0 and -4
            "print(\n",
            "raise SystemExit(2)\n",
        ],
        chat=False,
    )
    # when they are scored in the real sandbox, partial_credit off (a function's setting)
    [scores] = score_completions([problem], [texts], sandbox=SANDBOX, partial_credit=False)
    # then the reward is cases passed / cases, and only the first passed
    assert [s.reward for s in scores] == [1.0, 0.5, 0.0, 0.0]
    assert [s.passed for s in scores] == [True, False, False, False]
    assert [s.error_class for s in scores] == ["passed", "wrong_answer", "syntax_error", "runtime_error"]
    assert [(s.tests_passed, s.tests_total) for s in scores] == [(4, 4), (2, 4), (0, 4), (0, 4)]
    half = scores[1]
    assert [c["outcome"] for c in half.cases] == ["passed", "passed", "wrong_answer", "wrong_answer"]
    assert half.cases[2]["actual"] == "1\n" and half.cases[2]["expected"] == "0\n"
    # and the step's metrics: pass_rate of whole passes, error/<class> from each sample's class
    st = LocalStats(keep="all", keep_sample=0)
    for s, text in zip(scores, texts, strict=True):
        st.record(
            problem, Completion(text=text, token_ids=(1, 2), logprobs=(0.0, 0.0), finish_reason="eos"), s
        )
    metrics = merge_metrics([st], lr=0.0, grad_norm=0.0, step_s=1.0)
    assert metrics["pass_rate"] == 0.25
    assert metrics["tests/pass_frac"] == 0.375  # (1 + 0.5 + 0 + 0) / 4
    assert metrics["error/wrong_answer"] == 0.25 and metrics["error/syntax_error"] == 0.25
    assert metrics["error/runtime_error"] == 0.25
    assert [len(k.cases) for k in st.kept] == [4, 4, 4, 4]


def test_the_event_carries_the_first_cases_and_the_first_failing_one() -> None:
    cases = [{"index": i, "outcome": "passed"} for i in range(30)]
    assert [c["index"] for c in event_cases(cases)] == list(range(EVENT_CASES))
    cases[25] = {"index": 25, "outcome": "timeout"}
    cases[27] = {"index": 27, "outcome": "wrong_answer"}
    assert [c["index"] for c in event_cases(cases)] == [*range(EVENT_CASES), 25]
    cases[3] = {"index": 3, "outcome": "crash"}  # a failure among the first: nothing added
    assert [c["index"] for c in event_cases(cases)] == list(range(EVENT_CASES))
    assert event_cases([]) == ()


def test_the_reference_program_is_timed_for_the_efficiency_component() -> None:
    from workers.trainer.reward_components import ReferenceTimes

    problem, texts = scoring_inputs(SUM, ["print(int(input()) * 2)\n"], chat=False)
    times = ReferenceTimes()
    [[s]] = score_completions(
        [problem],
        [texts],
        sandbox=SANDBOX,
        partial_credit=False,
        weights={"correctness": 1.0, "efficiency": 1.0},
        reference_times=times,
    )
    reference_ms = times.get(SUM.task_id)
    assert reference_ms is not None and reference_ms > 0  # the reference passed every case, was timed
    assert s.passed and 0.0 <= s.components["efficiency"] <= 1.0


def test_reading_stdin_and_exiting_are_no_hack_in_a_program() -> None:
    from workers.detectors import scan
    from workers.trainer.hacks import hack_review

    text = "import sys\ndata = open(0).read()\nprint(int(data) * 2)\nsys.exit(0)\n"
    assert {f.rule for f in scan(completion=text)} == {"early_exit", "test_tampering"}  # in a function
    assert scan(completion=text, kind="program") == []
    problem, texts = scoring_inputs(SUM, [text], chat=False)
    [scores] = score_completions([problem], [texts], sandbox=SANDBOX, partial_credit=False)
    assert scores[0].passed
    review = hack_review([problem], [texts], [scores], zero_reward=True)
    assert review.flags == [[()]] and review.scores[0][0].reward == 1.0
