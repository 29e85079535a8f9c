"""A sweep's runs reach the broker once its records commit; with the broker down the sweep is kept and
says so (docs/sweeps.md, "Launching")."""

import pytest
import redis

from runs.lifecycle import run_reap_unenqueued
from runs.models import Run, RunStatus
from runs.sweeps.document import sweep_document_from
from runs.sweeps.services import sweep_launch
from tests.factories import ProblemFactory, UserFactory


def document(version):
    return sweep_document_from(
        {"name": "b", "dataset_version": version.pk, "pool": "cpu", "axes": {"group_size": [2, 4, 8]}}
    )


@pytest.mark.django_db(transaction=True)
def test_every_run_of_a_sweep_is_handed_to_the_broker_after_commit(broker):
    user = UserFactory(username="max", password=None)
    version = ProblemFactory(version__dataset__team=None).version

    result = sweep_launch(user=user, document=document(version))

    assert result.not_queued == ""
    assert redis.Redis.from_url(broker.url(1)).llen("gpu.cpu") == 3
    assert not Run.objects.filter(enqueued_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_a_broker_down_keeps_the_sweep_says_so_and_no_run_is_left_waiting_forever(broker):
    user = UserFactory(username="max", password=None)
    version = ProblemFactory(version__dataset__team=None).version
    broker.stop()

    result = sweep_launch(user=user, document=document(version))

    assert "was not started: the task broker" in result.not_queued
    result.sweep.refresh_from_db()
    assert result.sweep.status_message.startswith("not every run was queued: Run #")
    runs = list(Run.objects.order_by("pk"))
    assert len(runs) == 3 and runs[0].status == RunStatus.FAILED
    # The runs whose start task was never sent are failed by the reaper once its grace has passed.
    run_reap_unenqueued(grace_s=-1)
    assert {r.status for r in Run.objects.all()} == {RunStatus.FAILED}
