"""Mutants of a reference and the one sandbox item that runs them (the real sandbox)."""

import ast

from datasets_app.mutants import mutant_item, mutants, mutation_score
from tests.datasets_app.gate_helpers import CLAMP_PROMPT, CLAMP_SOLUTION, as_program, clamp, sandbox

SOURCE = (
    "def f(xs, k):\n"
    "    total = 0\n"
    "    for x in xs:\n"
    "        if x > k and x != 7:\n"
    "            total += x * 2\n"
    "        else:\n"
    "            total -= 1\n"
    "    return total == 3 or not xs\n"
)


def test_mutants_cover_each_kind_of_change_deterministically_and_distinctly():
    found = mutants(SOURCE, limit=50)

    assert found == mutants(SOURCE, limit=50)  # the same every time
    text = "\n".join(m.description for m in found)
    for change in (
        "'>' -> '>='",
        "'!=' -> '=='",
        "'+' -> '-'",
        "'-' -> '+'",
        "'and' -> 'or'",
        "'or' -> 'and'",
    ):
        assert change in text
    for change in ("0 -> 1", "7 -> 8", "if-body replaced by pass", "else removed", "return value changed"):
        assert change in text
    sources = [m.source for m in found]
    assert len(set(sources)) == len(sources) and ast.unparse(ast.parse(SOURCE)) not in sources
    for m in found:
        compile(m.source, "<mutant>", "exec")


def test_a_short_limit_samples_the_kinds_round_robin():
    found = mutants(SOURCE, limit=5)

    assert len(found) == 5
    assert [m.description.split(": ", 1)[1] for m in found] == [
        "'+' -> '-'",
        "'>' -> '>='",
        "'and' -> 'or'",
        "0 -> 1",
        "if-body replaced by pass",
    ]


def test_no_mutants_of_code_that_does_not_parse_and_docstrings_are_left_alone():
    assert mutants("def f(:\n") == []
    assert all("line 2" not in m.description for m in mutants('def f():\n    """1 < 2"""\n    return 3\n'))


def test_the_harness_kills_what_good_tests_catch_and_lists_what_weak_ones_miss():
    weak = clamp(tests="def check(c):\n    assert c(5, 0, 10) == 5\n")
    found = mutants(CLAMP_PROMPT + CLAMP_SOLUTION)
    items = [mutant_item(clamp(), found, item_id="good"), mutant_item(weak, found, item_id="weak")]

    good_result, weak_result = sandbox({"timeout_s": 10})(items)

    good, poor = mutation_score(good_result, found), mutation_score(weak_result, found)
    assert good.error == poor.error == ""
    assert good.total == poor.total == len(found) == 7
    # x <= lo and x >= hi return the same as x < lo and x > hi: equivalent mutants, no test kills them
    equivalent = ["line 4: '<' -> '<='", "line 6: '>' -> '>='"]
    assert good.killed == 5 and good.survivors == equivalent and good.score == round(5 / 7, 4)
    assert poor.killed == 1 and len(poor.survivors) == 6 and set(equivalent) < set(poor.survivors)


def test_a_mutant_that_never_ends_is_killed_by_its_own_time_limit_and_the_rest_still_run():
    problem = clamp(
        prompt="def count(n):\n",
        entry_point="count",
        solution="    i = 0\n    while i < n:\n        i += 1\n    return i\n",
        tests="def check(c):\n    assert c(3) == 3\n    assert c(0) == 0\n",
    )
    found = mutants(problem.prompt + problem.solution)
    assert any("'+' -> '-'" in m.description for m in found)  # i -= 1: never ends

    (result,) = sandbox({"timeout_s": 10})([mutant_item(problem, found, item_id="loop", per_mutant_s=0.5)])

    report = mutation_score(result, found)
    assert report.error == "" and report.total == len(found) and report.score == 1.0
    assert '"timeouts": 1' in result["stdout"] or '"timeouts": 2' in result["stdout"]


def test_program_mutants_run_on_the_cases_with_the_comparison():
    program = clamp(
        prompt="Print the sum of the two integers on the line, and their maximum.",
        entry_point="",
        tests="",
        solution="a, b = map(int, input().split())\nprint(a + b)\nprint(a if a > b else b)\n",
    )
    program = as_program(program, cases=[("2 3\n", "5\n3\n"), ("7 -1\n", "6  \n7")], compare="whitespace")
    found = mutants(program.solution)

    (result,) = sandbox({"timeout_s": 10})([mutant_item(program, found, item_id="prog")])

    report = mutation_score(result, found)
    assert report.error == "" and report.total == len(found) == 3
    assert report.survivors == ["line 3: '>' -> '>='"]  # equivalent: a == b never happens in the cases


def test_a_result_without_the_harness_line_has_no_score():
    report = mutation_score({"stdout": "hello\n", "error_class": "timeout"}, mutants(SOURCE))

    assert report.total == 0 and "did not report (timeout)" in report.error
