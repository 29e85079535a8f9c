"""A worker killed mid-evaluation (as a node dying would) leaves its job running; the lost-job reaper
fails it, naming the node (docs/evals.md, "The job's path"). The stack's real Celery worker evaluates
the tiny Hugging Face model in its subprocess until it is killed."""

import time

import pytest

from runs.evals.answers import eval_job_reap_lost
from runs.evals.models import EvalJob, EvalJobStatus
from runs.evals.services import eval_job_create
from tests.e2e.conftest import wait_until
from tests.factories import ProblemFactory, RegisteredModelFactory, UserFactory

pytestmark = pytest.mark.e2e

SILENCE_S = 3.0  # the reaper's timeout here; the node's heartbeat (15 s) does not come in time


def test_a_job_whose_worker_was_killed_mid_evaluation_is_failed_by_the_reaper(stack, tiny_hf_dir):
    # given a node's worker (the GPU queue alone) and a control worker that records its answers while
    # it evaluates (the stack's one worker does both, one task at a time), and a job the node started
    stack.kill_worker(stack.workers.pop())
    node = stack.start_worker(control=False)
    stack.start_worker(gpu=False)
    user = UserFactory(username="eva")
    model = RegisteredModelFactory(registered_by=user, source=str(tiny_hf_dir), pool=stack.pool)
    problem = ProblemFactory(version__dataset__created_by=user, task_id="Add/0")
    job = eval_job_create(user=user, model=model, dataset_version=problem.version)
    try:
        wait_until(lambda: EvalJob.objects.get(pk=job.pk).status != EvalJobStatus.QUEUED, 60, "a node")
    except AssertionError as exc:
        raise AssertionError(f"no node started the evaluation\n{stack.log_tail()}") from exc
    job.refresh_from_db()
    assert job.status == EvalJobStatus.RUNNING, job.error
    assert not eval_job_reap_lost(timeout_s=SILENCE_S)  # just heard from: not lost

    # when the worker dies (SIGKILL, its evaluation subprocess with it) and stays silent past the timeout
    stack.kill_worker(node)
    time.sleep(SILENCE_S + 1)

    # then the reaper fails the job, saying why and which node
    assert eval_job_reap_lost(timeout_s=SILENCE_S) == [job.pk]
    job.refresh_from_db()
    assert job.status == EvalJobStatus.FAILED
    assert job.error.startswith(f"no word from node {job.node} for 3 s: its worker stopped while evaluating")
    assert job.node.startswith(f"{stack.pool}-0@")
