"""Verification by execution: the service runs the real sandbox; the verdict rules also with a stub."""

import json

import pytest

from datasets_app.checking import (
    problem_verdicts_record,
    problem_verify_chunk,
    problem_verify_give_up,
    problem_verify_payload,
)
from datasets_app.models import ProblemStatus
from datasets_app.tasks import problem_verify_chunk_task, problem_verify_run_task
from datasets_app.verification import (
    Spec,
    chunk_ids,
    chunk_narrowed,
    trivial_program,
    verdict_from_json,
    verdict_to_json,
    verify,
    verify_chunk_payload,
)
from tests.factories import DatasetVersionFactory, ProblemFactory
from workers.sandbox import Result

pytestmark = pytest.mark.django_db
PENDING = ProblemStatus.PENDING


def pending(version, **fields):
    return ProblemFactory(version=version, status=PENDING, **fields)


def test_a_chunk_ends_verified_failing_and_weak_with_the_failure_explained():
    # given a sound problem, one whose solution is wrong and one whose tests a trivial solution passes
    version = DatasetVersionFactory()
    good = pending(version)
    wrong = pending(version, solution="    return a - b\n")
    weak = pending(version, tests="def check(candidate):\n    assert candidate(1, 2) is None or True\n")

    # when the chunk is verified
    undecided = problem_verify_chunk(version_id=version.pk, problem_ids=[good.pk, wrong.pk, weak.pk])

    # then each has its verdict, and the failing one says why
    assert undecided == 0
    for p in (good, wrong, weak):
        p.refresh_from_db()
    assert good.status == ProblemStatus.VERIFIED and good.tests_passed == good.tests_total == 1
    assert weak.status == ProblemStatus.WEAK_TESTS
    assert wrong.status == ProblemStatus.FAILING
    assert wrong.error_class == "wrong_answer"
    assert wrong.failing_test == "assert candidate(1, 2) == 3"
    assert "AssertionError" in wrong.traceback
    assert wrong.verified_at is not None


def test_mbpp_style_asserts_and_runtime_errors_verify():
    version = DatasetVersionFactory()
    ok = pending(
        version,
        prompt="# add\n",
        solution="def add(a, b):\n    return a + b\n",
        tests="assert add(1, 2) == 3\n",
    )
    crash = pending(version, solution="    return undefined_name\n")

    problem_verify_chunk(version_id=version.pk, problem_ids=[ok.pk, crash.pk])

    ok.refresh_from_db()
    crash.refresh_from_db()
    assert ok.status == ProblemStatus.VERIFIED
    assert (crash.status, crash.error_class, crash.exception_type) == (
        "failing",
        "runtime_error",
        "NameError",
    )
    assert "NameError" in crash.traceback


def test_a_repeated_delivery_changes_nothing():
    version = DatasetVersionFactory()
    problem = pending(version)
    problem_verify_chunk(version_id=version.pk, problem_ids=[problem.pk])
    problem.refresh_from_db()
    first = problem.verified_at

    assert problem_verify_chunk(version_id=version.pk, problem_ids=[problem.pk]) == 0

    problem.refresh_from_db()
    assert problem.verified_at == first


def test_the_task_verifies_by_ids(eager):
    version = DatasetVersionFactory()
    problem = pending(version)

    problem_verify_chunk_task.apply(args=(version.pk, [problem.pk])).get()

    problem.refresh_from_db()
    assert problem.status == ProblemStatus.VERIFIED


def test_problems_the_sandbox_never_ran_end_failing_with_sandbox_error():
    version = DatasetVersionFactory()
    problem = pending(version)

    problem_verify_give_up(version_id=version.pk, problem_ids=[problem.pk], reason="sandbox down")

    problem.refresh_from_db()
    assert (problem.status, problem.error_class, problem.traceback) == (
        "failing",
        "sandbox_error",
        "sandbox down",
    )


def result(item, passed, error_class=None):
    return Result(
        id=item.id,
        passed=passed,
        error_class=error_class or ("passed" if passed else "wrong_answer"),
        tests_passed=int(passed),
        tests_total=1,
        duration_ms=1,
        stdout="",
        stderr="" if passed else "boom",
    )


def test_differing_verdicts_across_runs_are_flaky_and_sandbox_errors_undecided():
    # given a runner whose first run fails problem 1 and errors on problem 2, then passes both
    calls = []

    def runner(items, limits, workers=None):
        calls.append([i.id for i in items])
        first = len(calls) == 1
        return [
            result(
                i,
                passed=not (first and i.id in ("1", "2")),
                error_class="sandbox_error" if i.id == "2" and first else None,
            )
            if not i.id.endswith(":trivial")
            else result(i, passed=False)
            for i in items
        ]

    specs = [
        Spec(id=n, prompt="def f():\n", entry_point="f", solution="    return 1\n", tests="assert f() == 1\n")
        for n in (0, 1, 2)
    ]

    verdicts = verify(specs, runner=runner)

    assert calls[1] == ["1", "2"]  # only the references that did not pass run again
    assert [v.status if v else None for v in verdicts] == ["verified", "flaky", "verified"]


def test_the_trivial_program_keeps_the_prompts_helpers():
    prompt = 'def helper():\n    return 1\n\ndef f(x):\n    """Doc."""\n'

    program = trivial_program(prompt, "f")

    assert program.startswith(prompt) and program.endswith("def f(*args, **kwargs):\n    return None\n")
    assert trivial_program("def f(x):\n", "f").startswith("def f(x):\n    pass\n")
    assert trivial_program("def broken(:\n", "f") == "def f(*args, **kwargs):\n    return None\n"


def test_a_node_that_cannot_isolate_code_fails_its_problems_saying_why_instead_of_running_them(
    bwrap_missing, eager
):
    version = DatasetVersionFactory()
    problem = pending(version)

    # the sandbox queue's last attempt (earlier ones are retried: another node may be able to isolate)
    payload = problem_verify_payload(version_id=version.pk, problem_ids=[problem.pk])
    problem_verify_run_task.apply(args=(payload,), retries=3).get()

    problem.refresh_from_db()
    assert (problem.status, problem.error_class) == ("failing", "sandbox_error")
    assert "refused to run code" in problem.traceback
    assert "apt-get install bubblewrap" in problem.traceback


def test_a_repeated_verdict_delivery_and_a_late_give_up_are_ignored():
    # given a chunk's verdicts, computed by the sandbox from its payload and recorded once
    version = DatasetVersionFactory()
    problem = pending(version)
    payload = problem_verify_payload(version_id=version.pk, problem_ids=[problem.pk])
    verdicts = [verdict_to_json(v) for v in verify_chunk_payload(payload)]
    assert problem_verdicts_record(version_id=version.pk, verdicts=verdicts) == 1
    problem.refresh_from_db()
    first = (problem.status, problem.verified_at)

    # when the same verdicts arrive again, and then a give-up for the same problem
    again = problem_verdicts_record(version_id=version.pk, verdicts=verdicts)
    late = problem_verdicts_record(version_id=version.pk, verdicts=[], gave_up=[problem.pk], reason="late")

    # then neither changes anything, and nothing is pending to build a payload from
    problem.refresh_from_db()
    assert (again, late) == (0, 0)
    assert (problem.status, problem.verified_at) == first == (ProblemStatus.VERIFIED, first[1])
    assert problem_verify_payload(version_id=version.pk, problem_ids=[problem.pk]) is None


def test_verdicts_are_only_recorded_for_the_version_they_came_from():
    version, other = DatasetVersionFactory(), DatasetVersionFactory()
    problem = pending(version)
    payload = problem_verify_payload(version_id=version.pk, problem_ids=[problem.pk])
    verdicts = [verdict_to_json(v) for v in verify_chunk_payload(payload)]

    assert problem_verdicts_record(version_id=other.pk, verdicts=verdicts) == 0

    problem.refresh_from_db()
    assert problem.status == PENDING


@pytest.mark.django_db(False)  # any query raises here: the sandbox's half must not make one
def test_the_sandbox_half_runs_a_payload_without_a_database():
    # given a payload as the control queue builds it (JSON, as it travels)
    spec = {
        "prompt": "def add(a, b):\n",
        "entry_point": "add",
        "tests": "def check(candidate):\n    assert candidate(1, 2) == 3\n",
        "kind": "function",
        "cases": [],
        "compare": "",
    }
    payload = {
        "version_id": 1,
        "timeout_s": 10.0,
        "mode": "warm",
        "repo_timeout_s": 60.0,
        "specs": [
            {"id": 7, **spec, "solution": "    return a + b\n"},
            {"id": 8, **spec, "solution": "    return a - b\n"},
        ],
        "repo": [],
    }

    verdicts = verify_chunk_payload(json.loads(json.dumps(payload)))

    assert [(v.id, v.status) for v in verdicts if v] == [(7, "verified"), (8, "failing")]
    assert verdict_from_json(json.loads(json.dumps(verdict_to_json(verdicts[1])))) == verdicts[1]
    assert chunk_ids(chunk_narrowed(payload, [8])) == [8]
