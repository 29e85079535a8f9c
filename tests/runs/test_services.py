import pytest

from runs.models import LogLine, Run, RunStatus
from runs.services import RunConfig, run_cancel, run_launch
from runs.tokens import token_hash
from tests.factories import DatasetVersionFactory, RunFactory

pytestmark = pytest.mark.django_db


def test_launch_stores_only_the_token_hash_and_enqueues_on_commit(user, django_capture_on_commit_callbacks):
    version = DatasetVersionFactory()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = run_launch(user=user, dataset_version=version, name="", config=RunConfig(steps=3))

    run = Run.objects.get()
    assert run.status == RunStatus.QUEUED
    assert run.token_hash == token_hash(result.token) and result.token not in run.token_hash
    assert run.config["steps"] == 3
    assert run.name == f"{version.dataset.name}-v1"
    assert len(callbacks) == 1


def test_cancelling_a_queued_run_cancels_it_at_once():
    run = RunFactory(status=RunStatus.QUEUED)

    assert run_cancel(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and run.finished_at is not None


def test_cancelling_a_running_run_asks_the_node_to_stop():
    run = RunFactory(status=RunStatus.RUNNING)

    assert run_cancel(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLING
    assert LogLine.objects.filter(run=run, message="cancel requested").exists()


def test_cancelling_a_finished_run_changes_nothing():
    run = RunFactory(status=RunStatus.SUCCEEDED)

    assert not run_cancel(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
