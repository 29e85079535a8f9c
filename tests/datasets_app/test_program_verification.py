"""Verification of program problems (stdin/stdout) by execution in the real sandbox."""

import pytest

from datasets_app.checking import problem_verify_chunk
from datasets_app.models import ProblemKind, ProblemStatus
from datasets_app.verification import Spec, trivial_programs, verify
from tests.factories import DatasetVersionFactory, ProblemFactory
from workers.sandbox import Result

pytestmark = pytest.mark.django_db
SUM = "a, b = map(int, input().split())\nprint(a + b)\n"
SUM_CASES = [
    {"input": "1 2\n", "output": "3\n"},
    {"input": "5 7\n", "output": "12\n"},
    {"input": "0 0\n", "output": "0"},
]


def program(version, **fields):
    values = {
        "kind": ProblemKind.PROGRAM,
        "prompt": "Print a + b.",
        "entry_point": "",
        "solution": SUM,
        "tests": "",
        "cases": SUM_CASES,
        "status": ProblemStatus.PENDING,
    }
    return ProblemFactory(version=version, **{**values, **fields})


def test_program_problems_end_verified_failing_or_weak_with_the_failing_case_kept():
    # given a sound program, a wrong one, one whose expected outputs are all alike, and one that echoes
    version = DatasetVersionFactory()
    good = program(version)
    wrong = program(version, solution="a, b = map(int, input().split())\nprint(a - b)\n")
    alike = program(
        version,
        solution="input()\nprint('YES')\n",
        cases=[{"input": "1\n", "output": "YES\n"}, {"input": "2\n", "output": "YES\n"}],
    )
    echo = program(
        version,
        solution="print(input())\n",
        cases=[{"input": "ab\n", "output": "ab\n"}, {"input": "cd\n", "output": "cd\n"}],
    )

    # when the chunk is verified in the sandbox
    undecided = problem_verify_chunk(
        version_id=version.pk, problem_ids=[good.pk, wrong.pk, alike.pk, echo.pk]
    )

    # then each has its verdict; the wrong one keeps its first failing case, the weak ones say why
    for p in (good, wrong, alike, echo):
        p.refresh_from_db()
    assert undecided == 0
    assert (good.status, good.tests_passed, good.tests_total) == ("verified", 3, 3)
    assert good.cpu_ms is not None and good.traceback == ""
    assert (wrong.status, wrong.error_class, wrong.tests_passed) == ("failing", "wrong_answer", 1)  # 0 0 -> 0
    assert wrong.failing_test == "case 0: wrong_answer"
    assert "--- input ---\n1 2\n" in wrong.traceback and "--- expected output ---\n3\n" in wrong.traceback
    assert "--- actual output ---\n-1" in wrong.traceback
    assert alike.status == "weak_tests"
    assert alike.traceback == "a program printing 'YES\\n' whatever the input passes every case"
    assert (echo.status, echo.traceback) == ("weak_tests", "a program echoing its input passes every case")


def test_the_stand_ins_print_the_most_common_expected_output_or_echo():
    (constant_what, constant), (echo_what, echo) = trivial_programs(
        [
            {"input": "1", "output": "NO\n"},
            {"input": "2", "output": "YES\n"},
            {"input": "3", "output": "NO\n"},
        ]
    )

    assert constant == "import sys\nsys.stdout.write('NO\\n')\n" and "'NO\\n'" in constant_what
    assert (
        echo == "import sys\nsys.stdout.write(sys.stdin.read())\n"
        and echo_what == "a program echoing its input"
    )


def test_a_reference_passing_different_numbers_of_cases_across_runs_is_flaky():
    # given a runner whose two runs of the reference fail, on different cases
    runs = iter([1, 2])

    def runner(items, limits, workers=None):
        def one(item):
            ref = ":" not in item.id
            passed = 3 if not ref else next(runs)
            outcome = [
                {
                    "index": 0,
                    "outcome": "passed" if ref else "wrong_answer",
                    "input": "",
                    "expected": "",
                    "actual": "",
                }
            ]
            return Result(
                id=item.id,
                passed=False,
                error_class="wrong_answer",
                tests_passed=passed if ref else 0,
                tests_total=3,
                duration_ms=1,
                stdout="",
                stderr="",
                cases=outcome,
            )

        return [one(i) for i in items]

    spec = Spec(id=1, prompt="p", entry_point="", solution=SUM, tests="", kind="program", cases=SUM_CASES)

    (verdict,) = verify([spec], runner=runner)

    assert verdict is not None and verdict.status == "flaky"
