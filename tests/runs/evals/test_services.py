"""Creating an evaluation job and its refusals, and recording a node's answers (docs/evals.md)."""

import pytest
from django.core.exceptions import PermissionDenied

from controlplane.accounts.models import Role
from runs.evals.answers import eval_job_record
from runs.evals.models import EvalJob, EvalJobStatus
from runs.evals.services import EvalJobError, eval_job_create
from runs.models import RunStatus
from tests.factories import (
    DatasetVersionFactory,
    ProblemFactory,
    RegisteredModelFactory,
    RunFactory,
    TeamFactory,
    UserFactory,
)
from tests.runs.evals.factories import KEPT, eval_job, node_result

pytestmark = pytest.mark.django_db


def _version(user, verified=1):
    version = DatasetVersionFactory(dataset__created_by=user)
    for _ in range(verified):
        ProblemFactory(version=version)
    return version


def test_a_ready_model_on_a_version_is_queued_with_the_protocol_and_the_models_pool(user):
    model = RegisteredModelFactory(registered_by=user, pool="a100")
    version = _version(user)

    job = eval_job_create(
        user=user,
        model=model,
        dataset_version=version,
        protocol={"eval_protocol": "sampled", "eval_samples": 16, "eval_k": 8, "eval_temperature": 0.6},
    )

    row = EvalJob.objects.get(pk=job.pk)
    assert (row.status, row.pool, row.team, row.model, row.run) == ("queued", "a100", model.team, model, None)
    assert (row.eval_protocol, row.eval_samples, row.eval_k, row.eval_temperature) == ("sampled", 16, 8, 0.6)
    assert row.max_new_tokens == 48  # the setting's default: workers.spec
    assert (row.dataset_version, row.builtin_set) == (version, "")


def test_a_finished_run_with_a_checkpoint_is_evaluated_on_the_builtin_benchmark(user):
    run = RunFactory(created_by=user, status=RunStatus.SUCCEEDED, checkpoints=KEPT, pool="h100")

    job = eval_job_create(user=user, run=run, builtin_set="humaneval", builtin_problems=5)

    assert (job.run, job.pool, job.builtin_set, job.builtin_problems, job.dataset_version) == (
        run,
        "h100",
        "humaneval",
        5,
        None,
    )
    assert job.set_label == "humaneval (first 5)"


@pytest.mark.parametrize(
    ("case", "field", "message"),
    [
        ("pending model", "subject", "is pending: only a ready model is evaluated"),
        ("running run", "subject", "is running: only a finished, failed, cancelled or budget-stopped run"),
        ("lost run", "subject", "is lost"),
        ("no checkpoint", "subject", "reported no checkpoint: there are no weights to evaluate"),
        ("nothing", "subject", "evaluate a registered model or a run's checkpoint"),
        ("empty version", "eval_set", "has no verified problems: nothing to evaluate"),
        ("no set", "eval_set", "a dataset version or a built-in benchmark"),
        ("unknown set", "eval_set", "'mbpp' is not a built-in benchmark (humaneval)"),
        ("too many", "builtin_problems", "humaneval has 164 problems (got 165)"),
        ("k > n", "eval_k", "eval_k (8) must be at most eval_samples (4)"),
        ("bad protocol", "eval_protocol", "must be one of codex, sampled, got 'greedy'"),
        ("zero tokens", "max_new_tokens", "must be an integer ≥ 8"),
        ("overlong", "overlong_buffer", "overlong_buffer (16) must be fewer than max_new_tokens (8)"),
    ],
)
def test_a_job_is_refused_on_the_field_it_is_about_and_records_nothing(user, case, field, message):
    model = RegisteredModelFactory(
        registered_by=user, status="pending" if case == "pending model" else "ready"
    )
    status = {"running run": RunStatus.RUNNING, "lost run": RunStatus.LOST}.get(case, RunStatus.SUCCEEDED)
    run = RunFactory(
        created_by=user,
        status=status,
        checkpoints={} if case == "no checkpoint" else KEPT,
        config={"steps": 2, "overlong": "penalty", "overlong_buffer": 16},
    )
    subject = {"model": model} if case == "pending model" else {"run": run}
    if case == "nothing":
        subject = {}
    target = {"dataset_version": _version(user, verified=0 if case == "empty version" else 1)}
    if case in ("unknown set", "too many"):
        target = {"builtin_set": "mbpp" if case == "unknown set" else "humaneval", "builtin_problems": 165}
    if case == "no set":
        target = {}
    protocol = {
        "k > n": {"eval_samples": 4, "eval_k": 8},
        "bad protocol": {"eval_protocol": "greedy"},
        "zero tokens": {"max_new_tokens": 0},
        "overlong": {"max_new_tokens": 8},
    }.get(case, {})

    with pytest.raises(EvalJobError) as refused:
        eval_job_create(user=user, **subject, **target, protocol=protocol)

    assert refused.value.field == field
    assert message in str(refused.value)
    assert not EvalJob.objects.exists()


def test_another_teams_dataset_is_not_an_eval_set_of_this_teams_model(user):
    other = UserFactory(membership__team=TeamFactory(name="beta"))

    with pytest.raises(EvalJobError, match="another team's dataset"):
        eval_job_create(
            user=user, model=RegisteredModelFactory(registered_by=user), dataset_version=_version(other)
        )


def test_a_viewer_of_the_team_and_an_outsider_evaluate_nothing():
    team = TeamFactory(name="alpha")
    member = UserFactory(membership__team=team)
    viewer = UserFactory(membership__team=team, membership__role=Role.VIEWER)
    outsider = UserFactory(membership__team=TeamFactory(name="beta"))
    model = RegisteredModelFactory(registered_by=member)

    for who in (viewer, outsider):
        with pytest.raises(PermissionDenied):
            eval_job_create(user=who, model=model, builtin_set="humaneval")
    assert not EvalJob.objects.exists()


def test_the_nodes_answers_move_the_job_on_once_and_a_late_one_changes_nothing(user):
    job = eval_job(user)
    result = node_result([("HumanEval/0", 4, 1, False), ("HumanEval/1", 4, 0, True)])

    assert eval_job_record(job_id=job.pk, answer={"state": "running", "node": "gpu@a"})
    assert not eval_job_record(job_id=job.pk, answer={"state": "running", "node": "gpu@b"})  # a repeat
    assert eval_job_record(job_id=job.pk, answer={"state": "succeeded", "result": result, "node": "gpu@a"})
    assert not eval_job_record(
        job_id=job.pk, answer={"state": "succeeded", "result": result, "node": "gpu@a"}
    )
    assert not eval_job_record(job_id=job.pk, answer={"state": "failed", "error": "late", "node": "gpu@c"})

    job.refresh_from_db()
    assert (job.status, job.node, job.error) == (EvalJobStatus.SUCCEEDED, "gpu@a", "")
    assert job.started_at is not None and job.finished_at >= job.started_at
    assert job.pass_at_1 == 0.25  # 1 of 4 on the one scored problem; the unscored one left out
    assert [p["unscored"] for p in job.result["problems"]] == [False, True]


def test_a_success_without_a_running_answer_first_still_records_when_it_started(user):
    job = eval_job(user)

    eval_job_record(
        job_id=job.pk, answer={"state": "succeeded", "result": node_result([("T/0", 1, 1, False)])}
    )

    job.refresh_from_db()
    assert job.status == EvalJobStatus.SUCCEEDED
    assert job.started_at == job.finished_at


@pytest.mark.parametrize(
    ("result", "error"),
    [
        ("nope", "the result must be an object"),
        ({"k": 2, "problems": [{"n": 1}], "totals": {}}, "problems[0] needs a task_id"),
        (
            {"k": 2, "problems": [], "totals": {"eval/pass@1": "NaN"}},
            "totals.eval/pass@1 must be a number, got 'NaN'",
        ),
        (
            {"k": 2, "problems": [{"task_id": "T", "n": -1}], "totals": {}},
            "problems[0].n must be a count, got '-1'",
        ),
    ],
)
def test_a_malformed_result_fails_the_job_saying_what_is_wrong(user, result, error):
    job = eval_job(user, status=EvalJobStatus.RUNNING)

    eval_job_record(job_id=job.pk, answer={"state": "succeeded", "result": result, "node": "gpu@a"})

    job.refresh_from_db()
    assert job.status == EvalJobStatus.FAILED
    assert job.error == f"the node's result is malformed: {error}"
    assert job.result == {}
