"""The job for the pool's nodes and their answers: the message on gpu.<pool>, a broker that is down,
and the node's real entry (python -m workers.trainer.evaluate in a subprocess) on the tiny Hugging Face
model (docs/evals.md)."""

import base64
import json

import pytest

from runs.evals.models import EvalJob, EvalJobStatus
from runs.evals.services import eval_job_again, eval_job_create
from runs.models import RunStatus
from tests.factories import (
    TEST_TOKEN,
    DatasetVersionFactory,
    ProblemFactory,
    RegisteredModelFactory,
    RunFactory,
)
from tests.runs.evals.factories import KEPT
from tests.workers.test_export import _checkpoint


def _version(user, **problem):
    version = DatasetVersionFactory(dataset__created_by=user)
    ProblemFactory(version=version, task_id="Add/0", **problem)
    ProblemFactory(version=version, task_id="Unverified/1", status="pending")  # not evaluated
    return version


@pytest.mark.django_db(transaction=True)
def test_the_job_goes_to_the_runs_pool_with_its_spec_and_no_secret(user, queued):
    run = RunFactory(
        created_by=user, status=RunStatus.SUCCEEDED, checkpoints=KEPT, pool="a100", config={"seed": 3}
    )

    job = eval_job_create(user=user, run=run, dataset_version=_version(user), protocol={"max_new_tokens": 64})

    [message] = queued("gpu.a100")
    assert message["headers"]["task"] == "evals.execute"
    args, _, _ = json.loads(base64.b64decode(message["body"]))
    job_id, sent = args
    assert job_id == job.pk and sent["run_id"] == run.pk and sent["builtin"] is None
    spec = sent["spec"]
    assert [p["task_id"] for p in spec["problems"]] == ["Add/0"]  # verified problems only
    assert spec["model"]["kind"] == "tiny"  # the run's model, as it trained
    assert (spec["train"]["seed"], spec["train"]["max_new_tokens"], spec["train"]["eval_problems"]) == (
        3,
        64,
        0,
    )
    assert TEST_TOKEN not in json.dumps(sent) and run.token_hash not in json.dumps(sent)
    assert "control_url" not in spec


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_the_job_fails_at_once_saying_so_and_is_sent_again(user, broker, queued):
    model = RegisteredModelFactory(registered_by=user, pool="a100")
    broker.stop()

    job = eval_job_create(user=user, model=model, builtin_set="humaneval", builtin_problems=3)

    job.refresh_from_db()
    assert job.status == EvalJobStatus.FAILED
    assert job.error.startswith(f"not sent: the task broker at 127.0.0.1:{broker.port} is unreachable")
    broker.start()
    again = eval_job_again(user=user, job=job)
    assert EvalJob.objects.get(pk=again.pk).status == EvalJobStatus.QUEUED
    [message] = queued("gpu.a100")
    assert message["headers"]["task"] == "evals.execute"
    assert json.loads(base64.b64decode(message["body"]))[0][0] == again.pk


@pytest.mark.django_db(transaction=True)  # on_commit sends the job
def test_the_node_evaluates_a_registered_model_for_real_and_the_job_holds_its_result(
    user, eager, tiny_hf_dir, settings
):
    settings.TRIAD_NODE_HEARTBEAT_S = 0.5  # the evaluation (torch's import alone) takes longer
    model = RegisteredModelFactory(registered_by=user, source=str(tiny_hf_dir))
    version = _version(user)

    job = eval_job_create(
        user=user,
        model=model,
        dataset_version=version,
        protocol={"eval_protocol": "sampled", "eval_samples": 2, "eval_k": 2, "max_new_tokens": 8},
    )

    job.refresh_from_db()
    assert job.status == EvalJobStatus.SUCCEEDED, job.error
    assert job.node and job.started_at and job.finished_at
    # while it evaluated, the node said so (what keeps the job from the lost-job reaper)
    assert job.started_at < job.last_heartbeat_at < job.finished_at
    [problem] = job.result["problems"]
    assert (problem["task_id"], problem["n"]) == ("Add/0", 2)
    # An untrained model's 8 tokens pass or not; whatever they did, the estimate is that count over n.
    assert problem["pass@1"] == problem["passed"] / 2
    assert job.result["totals"]["eval/problems"] == 1.0
    assert job.pass_at_1 == problem["pass@1"]


@pytest.mark.django_db(transaction=True)
def test_a_model_missing_on_the_node_fails_the_job_with_the_evaluations_own_words(user, eager, tmp_path):
    model = RegisteredModelFactory(registered_by=user, source=str(tmp_path / "not-here"))

    job = eval_job_create(user=user, model=model, dataset_version=_version(user))

    job.refresh_from_db()
    assert job.status == EvalJobStatus.FAILED
    assert job.error.startswith("the evaluation exited with status 2: refused:")
    assert "not-here" in job.error


@pytest.mark.django_db(transaction=True)
def test_the_node_evaluates_a_runs_newest_checkpoint_where_the_pool_keeps_it(
    user, eager, settings, tmp_path, tiny_hf_dir
):
    settings.TRIAD_RUNS_DIR = str(tmp_path)  # a run from before the shared checkpoint dir: its work dir's
    settings.TRIAD_CHECKPOINT_DIR = str(tmp_path / "shared")
    base = RegisteredModelFactory(registered_by=user, source=str(tiny_hf_dir))
    run = RunFactory(created_by=user, model=base, status=RunStatus.CANCELLED, checkpoints=KEPT)
    _checkpoint(tiny_hf_dir, tmp_path / str(run.pk), zero_stage=0, step=2)

    job = eval_job_create(user=user, run=run, dataset_version=_version(user), protocol={"max_new_tokens": 8})

    job.refresh_from_db()
    assert job.status == EvalJobStatus.SUCCEEDED, job.error
    assert job.result["checkpoint"] == str(tmp_path / str(run.pk) / "checkpoints")
    assert [p["task_id"] for p in job.result["problems"]] == ["Add/0"]
