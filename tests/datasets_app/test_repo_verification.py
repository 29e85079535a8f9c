"""The gate for repository tasks, end to end: imported tasks verified by the real sandbox through the
verification service and task (workers.repo.verify.verify_task), on whichever database the suite runs
(PostgreSQL, or the embedded SQLite)."""

import json

import pytest

from datasets_app.checking import problem_verify_chunk, problem_verify_payload
from datasets_app.models import Problem, ProblemStatus
from datasets_app.services import dataset_import
from datasets_app.tasks import problem_verify_chunk_task, problem_verify_run_task
from tests.datasets_app.repo_helpers import jsonl_bytes
from tests.workers.repo.sample_repo import F2P, failing_task, sample_task, weak_tests_task
from workers.sandbox.batch import bwrap_available

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not bwrap_available(), reason="bwrap does not work on this machine"),
]


def imported(user, *tasks):
    records = [json.loads(json.dumps(t.to_record())) for t in tasks]
    version = dataset_import(user=user, name="repo", fileobj=jsonl_bytes(*records)).version
    return version, {p.task_id: p for p in version.problems.all()}


def test_a_chunk_of_repository_tasks_ends_verified_failing_and_weak_with_evidence(user):
    # given a sound task, one whose reference patch fixes nothing, and one whose FAIL_TO_PASS already passes
    version, problems = imported(user, sample_task(), failing_task(), weak_tests_task())

    # when their chunk is verified
    undecided = problem_verify_chunk(version_id=version.pk, problem_ids=[p.pk for p in problems.values()])

    # then each has the gate's verdict, its evidence kept, and the failing one names its test
    assert undecided == 0
    good, failing, weak = (
        Problem.objects.get(pk=problems[t].pk)
        for t in ("triad__calc-1", "triad__calc-failing", "triad__calc-weak")
    )
    assert good.status == ProblemStatus.VERIFIED
    assert good.repo_evidence["without_fix"][F2P[0]] == ["failed", "failed"]
    assert good.repo_evidence["with_fix"][F2P[1]] == ["passed", "passed"]
    assert good.verified_at is not None
    assert good.duration_ms > 0 and good.cpu_ms is None  # wall time measured, CPU time not
    assert (good.failing_test, good.traceback, good.error_class) == ("", "", "")
    assert good.tests_total == len(sample_task().fail_to_pass) + len(sample_task().pass_to_pass)
    assert failing.status == ProblemStatus.FAILING
    assert failing.error_class == "wrong_answer"
    assert failing.failing_test.startswith(f"{F2P[0]}: failed (with the reference patch)")
    assert "AssertionError: 0 != 10" in failing.traceback
    assert failing.repo_evidence["with_fix"][F2P[0]] == ["failed", "failed"]
    assert failing.tests_passed == len(sample_task().pass_to_pass)
    assert weak.status == ProblemStatus.WEAK_TESTS
    assert weak.failing_test == "tests.test_ops.TestOps.test_add: passed (without the reference patch)"
    assert weak.repo_evidence["passing_without_fix"] == ["tests.test_ops.TestOps.test_add"]


def test_a_repeated_delivery_of_a_repository_chunk_changes_nothing(user):
    version, problems = imported(user, sample_task())
    (problem,) = problems.values()
    problem_verify_chunk(version_id=version.pk, problem_ids=[problem.pk])
    Problem.objects.filter(pk=problem.pk).update(repo_evidence={"kept": True})

    assert problem_verify_chunk(version_id=version.pk, problem_ids=[problem.pk]) == 0

    problem.refresh_from_db()
    assert (problem.status, problem.repo_evidence) == (ProblemStatus.VERIFIED, {"kept": True})


def test_the_task_verifies_repository_tasks_by_ids(user, eager):
    version, problems = imported(user, sample_task())
    (problem,) = problems.values()

    problem_verify_chunk_task.apply(args=(version.pk, [problem.pk])).get()

    problem.refresh_from_db()
    assert problem.status == ProblemStatus.VERIFIED


def test_a_node_that_cannot_isolate_code_never_runs_a_repository_task(user, bwrap_missing, eager):
    version, problems = imported(user, sample_task())
    (problem,) = problems.values()

    # the sandbox queue's last attempt (earlier ones are retried: another node may be able to isolate)
    payload = problem_verify_payload(version_id=version.pk, problem_ids=[problem.pk])
    problem_verify_run_task.apply(args=(payload,), retries=3).get()

    problem.refresh_from_db()
    assert (problem.status, problem.error_class) == ("failing", "sandbox_error")
    assert problem.repo_evidence == {}


def test_a_flaky_or_broken_task_is_explained_from_the_evidence():
    from datasets_app.verification import repo_failure

    task = sample_task()
    flaky = {
        "with_fix": {F2P[1]: ["passed", "failed"]},
        "without_fix": {F2P[1]: ["failed"]},
        "flaky": [F2P[1]],
        "output_with_fix": "FAIL: test_far_above",
    }
    broken = {"error": "the reference patch does not apply: hunk 1 of calc/ops.py"}

    assert repo_failure(task, "flaky", flaky) == (
        "wrong_answer",
        f"{F2P[1]}: passed, failed, failed (outcomes differ between runs)",
        "FAIL: test_far_above",
    )
    assert repo_failure(task, "failing", broken) == ("runtime_error", "", broken["error"])
    assert repo_failure(task, "verified", {"with_fix": {}}) == ("", "", "")


def test_a_chunk_payload_carries_a_snapshot_its_tasks_share_once(user):
    # given two tasks of one repository (one snapshot) pending in a version
    version, problems = imported(user, sample_task(), failing_task())
    ids = [problems["triad__calc-1"].pk, problems["triad__calc-failing"].pk]

    # when the control queue makes their chunk a payload, and it travels as JSON
    payload = json.loads(json.dumps(problem_verify_payload(version_id=version.pk, problem_ids=ids)))

    # then the snapshot's bytes are in it once, and each task names it
    assert [entry["id"] for entry in payload["repo"]] == ids
    assert len(payload["snapshots"]) == 1
    assert {entry["snapshot"] for entry in payload["repo"]} == set(payload["snapshots"])
