"""A run on program problems (stdin/stdout) hands the node their kind, cases and comparison."""

import pytest

from datasets_app.models import ProblemKind
from runs.spec import run_spec
from tests.factories import DatasetVersionFactory, ProblemFactory, RunFactory
from tests.runs.node_spec import node_spec
from workers.trainer.spec import parse_spec

pytestmark = pytest.mark.django_db

CASES = [{"input": "2 3\n", "output": "5\n"}, {"input": "1 1\n", "output": "2\n"}]


def test_program_problems_carry_kind_cases_and_compare_and_function_problems_stay_as_they_were():
    version = DatasetVersionFactory()
    ProblemFactory(version=version, task_id="f/0")
    ProblemFactory(
        version=version,
        task_id="p/0",
        kind=ProblemKind.PROGRAM,
        prompt="Print a + b.",
        entry_point="",
        solution="a, b = map(int, input().split())\nprint(a + b)\n",
        tests="",
        cases=CASES,
        compare="",
    )
    run = RunFactory(dataset_version=version)

    function, program = run_spec(run=run)["problems"]

    assert "kind" not in function and "cases" not in function
    assert (program["kind"], program["cases"], program["compare"]) == ("program", CASES, "whitespace")
    assert (program["entry_point"], program["tests"]) == ("", "")
    parsed = parse_spec(node_spec(run)).problems[1]  # and the trainer reads it as a program
    assert (parsed.kind, parsed.cases) == ("program", (("2 3\n", "5\n"), ("1 1\n", "2\n")))
