"""Program problems (stdin/stdout) in each layout Triad imports, and each kind of bad record."""

import base64
import json
import pickle
import zlib

from datasets_app.parsing import (
    APPS,
    CODECONTESTS,
    LIVECODEBENCH,
    PROGRAM,
    TACO,
    TRIAD,
    ParsedProblem,
    parse_jsonl,
    problem_hash,
)
from workers.sandbox import Item, run_batch

SUM = "a, b = map(int, input().split())\nprint(a + b)\n"


def lines(*records) -> list[bytes]:
    return [json.dumps(r).encode() + b"\n" for r in records]


def codecontests(**changes):
    record = {
        "name": "1000_A. Sum of Two",
        "description": "Given two integers a and b, print a + b.\n\nInput\n\nOne line: a and b.",
        "public_tests": {"input": ["1 2\n"], "output": ["3\n"]},
        "private_tests": {"input": ["5 7\n", "-1 1\n"], "output": ["12\n", "0\n"]},
        "generated_tests": {"input": ["100 200\n"], "output": ["300\n"]},
        "source": 2,
        "difficulty": 7,
        "solutions": {
            "language": [2, 1, 3],
            "solution": [
                '#include <cstdio>\nint main(){int a,b;scanf("%d %d",&a,&b);printf("%d",a+b);}',
                "a, b = map(int, raw_input().split())\nprint a + b\n",
                SUM,
            ],
        },
        "incorrect_solutions": {"language": [3], "solution": ["print(0)\n"]},
        "cf_contest_id": 1000,
        "cf_index": "A",
        "cf_points": 500.0,
        "cf_rating": 800,
        "cf_tags": ["math", "implementation"],
        "is_description_translated": False,
        "untranslated_description": "",
        "time_limit": {"seconds": 1, "nanos": 0},
        "memory_limit_bytes": 256000000,
        "input_file": "",
        "output_file": "",
    }
    record.update(changes)
    return record


def test_codecontests_records_become_program_problems_with_a_python3_reference_and_every_case():
    result = parse_jsonl(lines(codecontests()))

    assert result.errors == [] and result.format == CODECONTESTS
    (p,) = result.problems
    assert (p.kind, p.task_id, p.entry_point, p.tests) == (PROGRAM, "1000_A. Sum of Two", "", "")
    assert p.solution == SUM  # language 3 (Python 3), not the C++ or Python 2 one
    assert p.cases == (("1 2\n", "3\n"), ("5 7\n", "12\n"), ("-1 1\n", "0\n"), ("100 200\n", "300\n"))
    assert (p.difficulty, p.source, p.tags) == ("a", "codeforces", ("math", "implementation"))
    assert p.prompt.startswith("Given two integers")


def test_codecontests_without_a_python3_solution_or_with_unpaired_tests_names_line_and_field():
    no_python = codecontests(name="B", solutions={"language": [2], "solution": ["int main(){}"]})
    unpaired = codecontests(name="C", private_tests={"input": ["1\n", "2\n"], "output": ["1\n"]})

    result = parse_jsonl(lines(codecontests(), no_python, unpaired))

    assert result.problems == []
    assert [str(e) for e in result.errors] == [
        "line 2, field 'solutions': no Python 3 solution (language 3) that parses, among 1",
        "line 3, field 'private_tests': 2 inputs but 1 outputs",
    ]


def apps(**changes):
    record = {
        "problem_id": 4012,
        "question": "Polycarp has $n$ coins. Print the number of distinct values.\n\n-----Input-----\n...",
        "solutions": json.dumps(["n = int(input())\nprint(len(set(input().split())))\n"]),
        "input_output": json.dumps({"inputs": ["3\n1 2 2\n", "1\n5\n"], "outputs": ["2\n", "1\n"]}),
        "difficulty": "introductory",
        "url": "https://codeforces.com/problemset/problem/1003/A",
        "starter_code": "",
    }
    record.update(changes)
    return record


def test_apps_stdin_records_become_program_problems():
    result = parse_jsonl(lines(apps()))

    assert result.errors == [] and result.format == APPS
    (p,) = result.problems
    assert (p.kind, p.task_id, p.difficulty, p.source) == (PROGRAM, "4012", "introductory", "apps")
    assert p.cases == (("3\n1 2 2\n", "2\n"), ("1\n5\n", "1\n"))


def test_apps_call_based_records_become_function_problems_when_the_reference_is_a_plain_def():
    call = apps(
        problem_id=2400,
        question="Return the sum of a list.",
        solutions=json.dumps(["def total(xs):\n    return sum(xs)\n"]),
        input_output=json.dumps({"fn_name": "total", "inputs": [[[1, 2]], [[]]], "outputs": [[3], [0]]}),
        starter_code="def total(xs):\n\t",
    )
    leetcode = apps(
        problem_id=2401,
        solutions=json.dumps(["class Solution:\n    def total(self, xs):\n        return sum(xs)\n"]),
        input_output=json.dumps({"fn_name": "total", "inputs": [[[1]]], "outputs": [1]}),
    )

    good = parse_jsonl(lines(call))
    bad = parse_jsonl(lines(call, leetcode))

    (p,) = good.problems
    assert (p.kind, p.entry_point, p.cases) == ("function", "total", ())
    item = Item(id="0", code=p.prompt + p.solution, tests=p.tests, entry_point=p.entry_point)
    (ran,) = run_batch([item], cache=False)
    assert (ran.passed, ran.tests_total) == (True, 2), ran.stderr  # the reference passes the mapped tests
    assert [str(e) for e in bad.errors] == [
        "line 2, field 'solutions': a call-based problem ('total') is imported only when its reference "
        "defines total() at top level (a method of a class, LeetCode style, is not)"
    ]


def test_taco_records_are_told_from_apps_by_their_own_fields_and_keep_tags():
    record = apps(
        name="Distinct Coins",
        source="codeforces",
        difficulty="EASY",
        tags="['Sorting', 'Greedy algorithms']",
        skill_types="['Sorting']",
        raw_tags="['sortings']",
        time_limit="1 seconds",
    )
    del record["problem_id"]

    result = parse_jsonl(lines(record))

    assert result.errors == [] and result.format == TACO
    (p,) = result.problems
    assert (p.task_id, p.difficulty, p.source, p.tags) == (
        "Distinct Coins",
        "easy",
        "codeforces",
        ("sorting", "greedy algorithms"),
    )


def test_apps_with_bad_json_or_no_reference_is_refused_by_line_and_field():
    result = parse_jsonl(
        lines(
            apps(),
            apps(problem_id=2, input_output="{not json"),
            apps(problem_id=3, solutions="[]"),
            apps(problem_id=4, solutions=""),
        )
    )

    assert [str(e) for e in result.errors] == [
        "line 2, field 'input_output': is not valid JSON: Expecting property name enclosed in double quotes",
        "line 3, field 'solutions': no reference solution that parses as Python 3, among 0",
        "line 4, field 'solutions': is empty",
    ]


def livecodebench(**changes):
    record = {
        "question_title": "Sum",
        "question_content": "You are given A and B. Print A+B.",
        "platform": "atcoder",
        "question_id": "abc300_a",
        "contest_id": "abc300",
        "contest_date": "2023-04-29T00:00:00",
        "starter_code": "",
        "difficulty": "easy",
        "public_test_cases": json.dumps([{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]),
        "private_test_cases": json.dumps([{"input": "4 4\n", "output": "8\n", "testtype": "stdin"}]),
        "metadata": "{}",
        "solution": SUM,
    }
    record.update(changes)
    return record


def test_livecodebench_records_with_a_reference_become_program_problems_its_compressed_cases_too():
    private = [{"input": "4 4\n", "output": "8\n", "testtype": "stdin"}]
    packed = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(private)))).decode()

    result = parse_jsonl(
        lines(livecodebench(), livecodebench(question_id="abc300_b", private_test_cases=packed))
    )

    assert result.errors == [] and result.format == LIVECODEBENCH
    first, second = result.problems
    assert (first.task_id, first.source, first.difficulty) == ("abc300_a", "atcoder", "easy")
    assert first.prompt == "Sum\n\nYou are given A and B. Print A+B."
    assert first.cases == second.cases == (("1 2\n", "3\n"), ("4 4\n", "8\n"))


def test_livecodebench_refuses_functional_cases_a_missing_reference_and_pickles_that_load_code():
    class Boom:
        def __reduce__(self):
            return (print, ("ran",))

    evil = base64.b64encode(zlib.compress(pickle.dumps(Boom()))).decode()
    functional = json.dumps([{"input": "[1]", "output": "1", "testtype": "functional"}])
    no_solution = livecodebench(question_id="c")
    del no_solution["solution"]

    result = parse_jsonl(
        lines(
            livecodebench(question_id="a", private_test_cases=evil),
            livecodebench(question_id="b", public_test_cases=functional),
            no_solution,
        )
    )

    assert [(e.line, e.field) for e in result.errors] == [
        (1, "private_test_cases"),
        (2, "public_test_cases"),
        (3, "solution"),
    ]
    assert "UnpicklingError" in result.errors[0].message
    assert "only stdin cases are imported" in result.errors[1].message


TRIAD_PROGRAM = {
    "task_id": "p/0",
    "prompt": "Read n and print n squared.",
    "kind": "program",
    "solution": "n = int(input())\nprint(n * n)\n",
    "cases": [{"input": "3\n", "output": "9\n"}, {"input": "0\n", "output": "0\n"}],
    "compare": "exact",
    "difficulty": "Easy",
    "tags": ["math"],
}


def test_triad_program_records_parse_and_bad_ones_name_the_field():
    bad_cases = {**TRIAD_PROGRAM, "task_id": "p/1", "cases": [{"input": 3, "output": "9"}]}
    bad_compare = {**TRIAD_PROGRAM, "task_id": "p/2", "compare": "fuzzy"}
    no_kind = {k: v for k, v in TRIAD_PROGRAM.items() if k != "kind"} | {"task_id": "p/3", "tests": "x"}
    with_tests = {**TRIAD_PROGRAM, "task_id": "p/4", "tests": "assert True\n"}

    good = parse_jsonl(lines(TRIAD_PROGRAM))
    bad = parse_jsonl(lines(TRIAD_PROGRAM, bad_cases, bad_compare, no_kind, with_tests))

    assert good.errors == [] and good.format == TRIAD
    (p,) = good.problems
    assert (p.kind, p.compare, p.difficulty, p.cases) == (
        PROGRAM,
        "exact",
        "easy",
        (("3\n", "9\n"), ("0\n", "0\n")),
    )
    assert [str(e) for e in bad.errors] == [
        'line 2, field \'cases\': case 0: must be {"input": string, "output": string}',
        "line 3, field 'compare': must be one of exact, whitespace, float",
        'line 4, field \'kind\': a problem with cases is a program: say "kind": "program"',
        "line 5, field 'tests': a program problem has no entry point or tests: its cases are the tests",
    ]


def test_a_program_problems_cases_and_compare_are_part_of_its_identity_but_function_hashes_stay():
    function = ParsedProblem(
        task_id="t", prompt="def f():\n", entry_point="f", solution="  return 1\n", tests=""
    )
    program = ParsedProblem(
        task_id="t", prompt="p", entry_point="", solution="print(1)\n", tests="", kind=PROGRAM
    )

    # This function problem's hash from before kinds existed (pinned: versions keep their identity).
    assert problem_hash(function) == "4f391fdd5232354158ae006681e15223582f3fba5a7b696a3eca77aa6dec7bae"
    assert problem_hash(program) != problem_hash(ParsedProblem(**{**program.__dict__, "kind": "function"}))
    assert problem_hash(program) != problem_hash(
        ParsedProblem(**{**program.__dict__, "cases": (("", "1\n"),)})
    )
    assert problem_hash(program) != problem_hash(ParsedProblem(**{**program.__dict__, "compare": "exact"}))
