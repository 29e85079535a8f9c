import datetime as dt

import pytest

from runs.launch import run_launch, run_resume
from runs.lifecycle import run_cancel, run_reap_lost
from runs.models import LogLine, Run, RunStatus
from runs.tokens import token_hash
from tests.factories import DatasetVersionFactory, ProblemFactory, RunFactory
from workers.spec import RunConfig

pytestmark = pytest.mark.django_db


def test_launch_stores_only_the_token_hash_and_enqueues_on_commit(user, django_capture_on_commit_callbacks):
    version = ProblemFactory().version

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
    assert LogLine.objects.filter(run=run, message="status → cancelling: cancel requested").exists()


def test_cancelling_a_running_run_says_so_in_its_status_message():
    run = RunFactory(status=RunStatus.RUNNING)

    run_cancel(run_id=run.pk)

    run.refresh_from_db()
    assert run.status_message == "cancel requested"


def test_cancelling_a_finished_run_changes_nothing():
    run = RunFactory(status=RunStatus.SUCCEEDED)

    assert not run_cancel(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED


def test_a_silent_running_run_is_marked_lost():
    from django.utils import timezone

    silent = RunFactory(
        status=RunStatus.RUNNING, last_heartbeat_at=timezone.now() - dt.timedelta(seconds=120)
    )
    alive = RunFactory(status=RunStatus.RUNNING, last_heartbeat_at=timezone.now())
    queued = RunFactory(status=RunStatus.QUEUED)

    assert run_reap_lost(timeout_s=60) == [silent.pk]

    for run, status in ((silent, RunStatus.LOST), (alive, RunStatus.RUNNING), (queued, RunStatus.QUEUED)):
        run.refresh_from_db()
        assert run.status == status
    assert "no heartbeat for 60s" in Run.objects.get(pk=silent.pk).status_message


def test_reaping_twice_changes_nothing_more():
    from django.utils import timezone

    RunFactory(status=RunStatus.RUNNING, last_heartbeat_at=timezone.now() - dt.timedelta(seconds=120))

    assert len(run_reap_lost(timeout_s=60)) == 1
    assert run_reap_lost(timeout_s=60) == []


def test_a_lost_run_that_speaks_again_stays_lost():
    """Fenced (docs/runs.md): only Resume starts it again; tests/runs/test_lost_fencing.py has the rest."""
    from runs.events import Batch, Event
    from runs.ingest import run_ingest

    run = RunFactory(status=RunStatus.LOST)

    result = run_ingest(
        run_id=run.pk,
        batch=Batch(
            source="trainer",
            received=1,
            events=[Event(seq=1, type="status", data={"status": "running", "message": ""})],
        ),
    )

    run.refresh_from_db()
    assert run.status == RunStatus.LOST
    assert (result.fenced, result.accepted, result.desired_state) == (True, 0, "lost")


def test_resume_queues_a_lost_run_under_a_new_token(django_capture_on_commit_callbacks):
    run = RunFactory(status=RunStatus.LOST)
    old_hash = run.token_hash

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = run_resume(run_id=run.pk)

    assert result is not None
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    assert run.token_hash == token_hash(result.token) != old_hash
    assert [cb.__name__ for cb in callbacks if cb.__name__ == "enqueue"] == ["enqueue"]


def test_a_fleet_run_is_not_resumed_where_there_is_no_fleet_any_more(settings):
    from runs.launch import RunLaunchError

    run = RunFactory(status=RunStatus.LOST, config={"steps": 2, "sandbox_mode": "fleet"})
    settings.CELERY_BROKER_URL, settings.CELERY_RESULT_BACKEND = "filesystem://", None  # the embedded default
    before = (run.status, run.attempt, run.token_hash)

    with pytest.raises(RunLaunchError, match="no sandbox fleet") as refused:
        run_resume(run_id=run.pk)

    assert refused.value.field == "sandbox_mode"
    run.refresh_from_db()
    assert (run.status, run.attempt, run.token_hash) == before  # nothing changed


@pytest.mark.parametrize("status", [RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.QUEUED])
def test_only_lost_failed_or_cancelled_runs_resume(status):
    run = RunFactory(status=status)

    assert run_resume(run_id=run.pk) is None

    run.refresh_from_db()
    assert run.status == status


def test_launching_on_a_version_without_verified_problems_says_why(user):
    from datasets_app.models import ProblemStatus
    from runs.launch import RunLaunchError

    version = DatasetVersionFactory()
    ProblemFactory(version=version, status=ProblemStatus.PENDING)
    ProblemFactory(version=version, status=ProblemStatus.FAILING)

    with pytest.raises(RunLaunchError, match=r"no verified problems \(1 pending, 1 failing\)") as caught:
        run_launch(user=user, dataset_version=version, name="", config=RunConfig())

    assert caught.value.field == "dataset_version"
    assert Run.objects.count() == 0


def test_opting_in_trains_on_unverified_problems_too(user, django_capture_on_commit_callbacks):
    from datasets_app.models import ProblemStatus
    from runs.spec import run_spec

    version = DatasetVersionFactory()
    ProblemFactory(version=version, task_id="ok", status=ProblemStatus.VERIFIED)
    ProblemFactory(version=version, task_id="broken", status=ProblemStatus.FAILING)

    with django_capture_on_commit_callbacks(execute=False):
        strict = run_launch(user=user, dataset_version=version, name="", config=RunConfig()).run
        loose = run_launch(
            user=user, dataset_version=version, name="", config=RunConfig(include_unverified=True)
        ).run

    assert [p["task_id"] for p in run_spec(run=strict)["problems"]] == ["ok"]
    assert [p["task_id"] for p in run_spec(run=loose)["problems"]] == ["ok", "broken"]
    assert "include_unverified" not in run_spec(run=loose)["train"]


def test_problems_reviewers_flagged_are_left_out_of_new_runs(user, django_capture_on_commit_callbacks):
    from runs.spec import run_spec

    version = DatasetVersionFactory()
    ProblemFactory(version=version, task_id="good")
    ProblemFactory(version=version, task_id="bad", review_flags={"bad_test": 1})

    with django_capture_on_commit_callbacks(execute=False):
        run = run_launch(user=user, dataset_version=version, name="", config=RunConfig()).run

    assert [p["task_id"] for p in run_spec(run=run)["problems"]] == ["good"]


def test_the_spec_carries_reasoning_traces_and_critic_settings_the_trainer_accepts(
    user, django_capture_on_commit_callbacks
):
    from tests.runs.node_spec import node_spec
    from workers.trainer.spec import parse_spec

    version = DatasetVersionFactory()
    ProblemFactory(version=version, task_id="traced", reasoning="Add the two numbers.", stop=["\n#"])
    ProblemFactory(version=version, task_id="plain")
    config = RunConfig(critic=True, critic_skip=True, critic_audit_frac=0.2, sft_with_reasoning=True)

    with django_capture_on_commit_callbacks(execute=False):
        run = run_launch(user=user, dataset_version=version, name="", config=config).run
    spec = parse_spec(node_spec(run))

    assert [(p.task_id, p.reasoning, p.stop) for p in spec.problems] == [
        ("traced", "Add the two numbers.", ("\n#",)),
        ("plain", "", ()),
    ]
    assert (spec.train.critic, spec.train.critic_skip, spec.train.critic_audit_frac) == (True, True, 0.2)
    assert spec.train.sft_with_reasoning is True


def test_the_spec_carries_reward_weights_and_the_evaluation_set_the_trainer_accepts(
    user, django_capture_on_commit_callbacks
):
    from tests.runs.node_spec import node_spec
    from workers.trainer.spec import parse_spec, reward_weights

    version = DatasetVersionFactory()
    ProblemFactory(version=version)
    config = RunConfig(reward_style=0.2, reward_format=0.1, eval_set="humaneval", eval_every=5, eval_k=2)

    with django_capture_on_commit_callbacks(execute=False):
        run = run_launch(user=user, dataset_version=version, name="", config=config).run
    train = parse_spec(node_spec(run)).train

    assert reward_weights(train) == {
        "correctness": 1.0,
        "efficiency": 0.0,
        "style": 0.2,
        "format": 0.1,
        "custom": 0.0,
    }
    assert (train.eval_set, train.eval_set_problems) == ("humaneval", 20)
    assert (train.eval_every, train.eval_k) == (5, 2)


def test_a_run_launched_before_reward_weights_existed_trains_on_correctness_alone(db):
    from tests.runs.node_spec import node_spec
    from workers.trainer.spec import parse_spec, reward_weights

    # a config stored before the reward and eval-set settings existed
    run = RunFactory(config={"steps": 3})
    ProblemFactory(version=run.dataset_version)
    train = parse_spec(node_spec(run)).train

    assert reward_weights(train) == {
        "correctness": 1.0,
        "efficiency": 0.0,
        "style": 0.0,
        "format": 0.0,
        "custom": 0.0,
    }
    assert train.eval_set == "none"


@pytest.mark.django_db(transaction=True)
def test_the_same_batch_delivered_concurrently_is_stored_once():
    import threading

    from django.db import connection

    from runs.events import parse_batch
    from runs.ingest import run_ingest
    from runs.models import IngestedEvent, MetricPoint

    run = RunFactory(status=RunStatus.RUNNING)
    body = {"events": [{"seq": s, "type": "metric", "step": s, "values": {"loss": 1.0}} for s in range(50)]}
    barrier = threading.Barrier(4)
    accepted: list[int] = []

    def deliver() -> None:
        barrier.wait()
        try:
            accepted.append(run_ingest(run_id=run.pk, batch=parse_batch(body, max_events=100)).accepted)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(accepted) == [0, 0, 0, 50]  # one delivery wins, the others are repeats
    assert IngestedEvent.objects.filter(run=run).count() == 50
    assert MetricPoint.objects.filter(run=run).count() == 50
    assert Run.objects.get(pk=run.pk).last_step == 49
