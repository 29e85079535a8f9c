"""A run on repository tasks hands the node each task as the contract's problem item and every
snapshot once, under the spec's "snapshots"."""

import base64

import pytest

from datasets_app.models import Problem, ProblemStatus
from datasets_app.services import dataset_import
from runs.spec import run_spec
from tests.datasets_app.repo_helpers import FIX, P2P, calc_snapshot, jsonl_bytes, make_snapshot, repo_record
from tests.factories import ProblemFactory, RunFactory
from workers.repo.task import RepoTask

pytestmark = pytest.mark.django_db


def test_repo_problems_carry_their_repo_section_and_each_snapshot_once(user):
    other = make_snapshot({"lib/x.py": "x = 1\n"})
    records = [
        repo_record("a", test_patch="diff --git a/t b/t\n"),
        repo_record("b"),
        repo_record("c", snapshot=base64.b64encode(other).decode(), repo="triad/other"),
    ]
    version = dataset_import(user=user, name="repo", fileobj=jsonl_bytes(*records)).version
    ProblemFactory(version=version, task_id="f/0", index=3, status=ProblemStatus.VERIFIED)
    Problem.objects.filter(version=version).update(status=ProblemStatus.VERIFIED)
    run = RunFactory(dataset_version=version)

    spec = run_spec(run=run)

    a, b, c, function = spec["problems"]
    calc_sha = RepoTask.from_record(records[0]).snapshot_sha256
    other_sha = RepoTask.from_record(records[2]).snapshot_sha256
    assert a == {
        "task_id": "a",
        "kind": "repo",
        "prompt": "add(2, 3) returns -1 instead of 5.",
        "entry_point": "",
        "tests": "",
        "solution": FIX,
        "reasoning": "",
        "stop": [],
        "verifier": "",
        "repo": {
            "FAIL_TO_PASS": ["tests.test_calc.TestCalc.test_add"],
            "PASS_TO_PASS": P2P,
            "runner": "unittest",
            "test_patch": "diff --git a/t b/t\n",
            "repo": "triad/calc",
            "snapshot_sha256": calc_sha,
        },
    }
    assert b["repo"]["snapshot_sha256"] == calc_sha
    assert (c["repo"]["snapshot_sha256"], c["repo"]["repo"]) == (other_sha, "triad/other")
    assert "repo" not in function and "kind" not in function
    assert spec["snapshots"] == {
        calc_sha: base64.b64encode(calc_snapshot()).decode(),
        other_sha: base64.b64encode(other).decode(),
    }
    # What the node rebuilds from the item and the snapshots is the task that was imported.
    rebuilt = RepoTask(
        task_id=a["task_id"],
        statement=a["prompt"],
        snapshot=base64.b64decode(spec["snapshots"][a["repo"]["snapshot_sha256"]]),
        fail_to_pass=tuple(a["repo"]["FAIL_TO_PASS"]),
        pass_to_pass=tuple(a["repo"]["PASS_TO_PASS"]),
        patch=a["solution"],
        test_patch=a["repo"]["test_patch"],
        runner=a["repo"]["runner"],
        repo=a["repo"]["repo"],
    )
    assert rebuilt == RepoTask.from_record(records[0])


def test_a_spec_without_repository_tasks_has_no_snapshots():
    problem = ProblemFactory(status=ProblemStatus.VERIFIED)

    assert "snapshots" not in run_spec(run=RunFactory(dataset_version=problem.version))


def test_the_launch_form_launches_a_run_on_a_repository_dataset(
    logged_in, user, django_capture_on_commit_callbacks
):
    from runs.models import Run

    version = dataset_import(user=user, name="repo", fileobj=jsonl_bytes(repo_record())).version
    Problem.objects.filter(version=version).update(status=ProblemStatus.VERIFIED)

    with django_capture_on_commit_callbacks(execute=False):
        response = logged_in.post(
            "/runs/new/",
            {
                "dataset_version": version.pk,
                "steps": 3,
                "group_size": 4,
                "prompts_per_step": 2,
                "lr": 0.001,
                "seed": 1,
                "max_new_tokens": 32,
                "sft_warmup_steps": 0,
                "sft_lr": 0.003,
                "eval_every": 0,
                "eval_problems": 0,
            },
        )

    run = Run.objects.get()
    assert response.status_code == 302 and response.url == f"/runs/{run.pk}/"
    (item,) = run_spec(run=run)["problems"]
    assert item["kind"] == "repo" and item["repo"]["snapshot_sha256"] in run_spec(run=run)["snapshots"]


def test_an_evaluation_of_a_repository_dataset_carries_the_same_items_and_snapshots(user):
    from runs.evals.spec import eval_message
    from tests.runs.evals.factories import eval_job

    version = dataset_import(user=user, name="repo", fileobj=jsonl_bytes(repo_record())).version
    Problem.objects.filter(version=version).update(status=ProblemStatus.VERIFIED)
    run = RunFactory(dataset_version=version)

    spec = eval_message(job=eval_job(user, dataset_version=version))["spec"]

    (item,) = spec["problems"]
    (served,) = run_spec(run=run)["problems"]
    assert item["repo"] == served["repo"] and item["kind"] == "repo"
    assert spec["snapshots"] == run_spec(run=run)["snapshots"]
