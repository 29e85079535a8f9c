"""The SFT warm-up's target with a reasoning trace: comments at the solution's indentation, then code."""

from __future__ import annotations

import ast

import pytest

from workers.trainer.reasoning import sft_target, trace_as_comments
from workers.trainer.spec import Problem, parse_spec

PROMPT = 'def add(a, b):\n    """Return a + b."""\n'
PROBLEM = Problem(
    task_id="T/add",
    prompt=PROMPT,
    entry_point="add",
    tests="assert add(1, 2) == 3\n",
    solution="    return a + b\n",
    reasoning="Both are numbers.\n\nSo add them.  \n",
)


def test_the_trace_comes_first_as_comments_and_the_program_still_runs():
    target = sft_target(PROBLEM, with_reasoning=True)

    assert target == "    # Both are numbers.\n    #\n    # So add them.\n    return a + b\n"
    namespace: dict = {}
    exec(compile(ast.parse(PROMPT + target), "<t>", "exec"), namespace)  # noqa: S102 - our own text
    assert namespace["add"](1, 2) == 3


def test_without_the_option_or_a_trace_the_target_is_the_solution():
    assert sft_target(PROBLEM, with_reasoning=False) == PROBLEM.solution
    bare = Problem(task_id="t", prompt="", entry_point="f", tests="", solution="x = 1\n", reasoning=" \n")
    assert sft_target(bare, with_reasoning=True) == "x = 1\n"


def test_a_top_level_solution_gets_top_level_comments():
    assert trace_as_comments("why\nhow", "\ndef f():\n    pass\n") == "# why\n# how\n"


def test_the_spec_reads_reasoning_and_names_a_bad_one():
    problem = {"task_id": "T/0", "prompt": "p", "entry_point": "f", "tests": "t", "reasoning": "r"}
    spec = parse_spec({"run_id": 1, "problems": [problem]})
    assert spec.problems[0].reasoning == "r"
    with pytest.raises(ValueError, match=r"problems\[0\]\.reasoning: must be a string"):
        parse_spec({"run_id": 1, "problems": [{**problem, "reasoning": 3}]})
