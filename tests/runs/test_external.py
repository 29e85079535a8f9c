"""External runs (docs/external-runs.md): created with a token shown once, never queued to a node, running
on their trainer's first event, billed for their declared GPUs at their pool's price, reaped by their own
heartbeat timeout, cancelled through the ingest answers."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from controlplane.accounts.models import AuditAction, AuditEntry, Role
from runs.external import run_create_external
from runs.gang import gang_claim
from runs.launch import RunLaunchError, run_resume
from runs.lifecycle import run_cancel, run_reap_lost, run_reap_unenqueued
from runs.models import Run, RunStatus
from runs.queue import pool_queue_list, run_queue_place
from runs.spend.models import GpuPrice, MonthlyBudget, RunCost
from runs.spend.services import run_cost_accrue
from tests.factories import ProblemFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def member(team=None, role=Role.MEMBER):
    user = UserFactory(membership=None)
    user.memberships.create(team=team or TeamFactory(name="ml"), role=role)
    return user


def version_of(user):
    return ProblemFactory(version__dataset__team=user.memberships.get().team).version


def create(user, **overrides):
    fields = {"team": None, "dataset_version": version_of(user), "name": "trl", "pool": "cpu", "gpus": 2}
    return run_create_external(user=user, **{**fields, **overrides})


def post(client, run_id, token, events, source="external"):
    return client.post(
        f"/api/v1/runs/{run_id}/events",
        data=json.dumps({"source": source, "events": events}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_an_external_run_is_recorded_queued_with_its_token_and_audited_as_a_launch():
    user = member()

    result = create(user, heartbeat_timeout_s=120, config={"steps": 30, "lr": 1e-5})

    run = Run.objects.get(pk=result.run.pk)
    assert result.token.startswith("triad_run_")
    assert run.external and run.status == RunStatus.QUEUED and run.heartbeat_timeout_s == 120
    assert (run.config["gpus_per_node"], run.config["nodes"], run.config["steps"]) == (2, 1, 30)
    assert run.enqueued_at is None  # never handed to the broker
    entry = AuditEntry.objects.get(action=AuditAction.RUN_LAUNCH, target_id=str(run.pk))
    assert entry.actor == user and entry.after["external"] is True and entry.after["gpus"] == 2


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"gpus": 0}, "gpus"),
        ({"gpus": True}, "gpus"),
        ({"config": {"nope": 1}}, "config.nope"),
        ({"config": {"lr": "fast"}}, "config.lr"),
        ({"config": {"gpus_per_node": 8}}, "config.gpus_per_node"),
        ({"pool": "h100-typo"}, "pool"),
        ({"heartbeat_timeout_s": 1}, "heartbeat_timeout_s"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(overrides, field):
    user = member()

    with pytest.raises(RunLaunchError) as caught:
        create(user, **overrides)

    assert caught.value.field == field
    assert field.split(".")[-1] in str(caught.value)
    assert not Run.objects.exists()


def test_the_team_and_dataset_rules_of_a_launch_apply():
    ml = TeamFactory(name="ml")
    viewer, outsider = member(ml, Role.VIEWER), member(TeamFactory(name="infra"))
    ours = ProblemFactory(version__dataset__team=ml).version

    with pytest.raises(PermissionDenied):
        create(viewer, dataset_version=ours)
    with pytest.raises(RunLaunchError) as caught:
        create(outsider, dataset_version=ours)

    assert caught.value.field == "dataset_version"
    assert not Run.objects.exists()


def test_past_the_monthly_budget_it_is_refused_as_a_launch_is():
    user = member()
    GpuPrice.objects.create(pool="a100", gpu_type="A100", usd_per_gpu_hour=Decimal(100))
    MonthlyBudget.objects.create(user=user, usd_per_month=Decimal("0.01"))

    with pytest.raises(RunLaunchError) as caught:
        create(user, pool="a100", gpus=8, config={"steps": 1000})

    assert caught.value.field == "budget_usd" and "monthly budget" in str(caught.value)
    assert not Run.objects.exists()


def test_it_never_waits_in_a_pools_queue_is_never_failed_for_the_broker_and_no_node_claims_it(settings):
    settings.TRIAD_ENQUEUE_GRACE_S = 0
    run = create(member()).run
    Run.objects.filter(pk=run.pk).update(created_at=timezone.now() - dt.timedelta(hours=1))

    assert run_reap_unenqueued() == []
    assert run_queue_place(run=Run.objects.get(pk=run.pk)) is None
    assert all(summary.length == 0 for summary in pool_queue_list())
    claim = gang_claim(run_id=run.pk, attempt=1, claim="node-a:1")
    assert not claim.claimed and "external" in claim.error
    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED


def test_its_first_event_of_any_kind_makes_it_running(client):
    result = create(member())

    response = post(client, result.run.pk, result.token, [{"seq": 0, "type": "heartbeat"}])

    assert response.status_code == 200 and response.json()["desired_state"] == "running"
    run = Run.objects.get(pk=result.run.pk)
    assert run.status == RunStatus.RUNNING and run.started_at is not None and run.last_heartbeat_at


def test_a_queued_run_of_triads_own_is_not_started_by_an_event(client):
    from tests.factories import TEST_TOKEN, RunFactory

    run = RunFactory(status=RunStatus.QUEUED)

    post(client, run.pk, TEST_TOKEN, [{"seq": 0, "type": "heartbeat"}], source="trainer")

    assert Run.objects.get(pk=run.pk).status == RunStatus.QUEUED  # its launcher's claim starts it


def test_it_is_billed_for_its_declared_gpus_at_its_pools_price_while_it_runs(client):
    GpuPrice.objects.create(pool="a100", gpu_type="A100", usd_per_gpu_hour=Decimal(3))
    result = create(member(), pool="a100", gpus=4)
    post(client, result.run.pk, result.token, [{"seq": 0, "type": "heartbeat"}])
    start = timezone.now() - dt.timedelta(seconds=600)
    Run.objects.filter(pk=result.run.pk).update(
        started_at=start, last_heartbeat_at=start + dt.timedelta(seconds=300)
    )

    run_cost_accrue(now=start + dt.timedelta(seconds=300))

    cost = RunCost.objects.get(run_id=result.run.pk)
    assert cost.gpus == 4
    assert cost.usd == Decimal("1.000000")  # 300 s × 4 GPUs × $3/GPU-hour


def test_it_is_reaped_lost_by_its_own_heartbeat_timeout(client, settings):
    settings.TRIAD_LOST_AFTER_S = 600
    quick = create(member(), heartbeat_timeout_s=30)
    patient = create(member(), name="patient")  # the default timeout, 600 s
    for result in (quick, patient):
        post(client, result.run.pk, result.token, [{"seq": 0, "type": "heartbeat"}])
    Run.objects.update(last_heartbeat_at=timezone.now() - dt.timedelta(seconds=45))

    assert run_reap_lost() == [quick.run.pk]

    run = Run.objects.get(pk=quick.run.pk)
    assert run.status == RunStatus.LOST and "30s" in run.status_message
    assert Run.objects.get(pk=patient.run.pk).status == RunStatus.RUNNING
    Run.objects.filter(pk=quick.run.pk).update(status=RunStatus.RUNNING, last_heartbeat_at=timezone.now())
    assert run_reap_lost(timeout_s=0) == [patient.run.pk]  # timeout_s is the default's, not its own


def test_cancel_rides_on_the_ingest_answer_and_the_trainer_confirms_it(client):
    user = member()
    result = create(user)
    post(client, result.run.pk, result.token, [{"seq": 0, "type": "heartbeat"}])

    assert run_cancel(run_id=result.run.pk, user=user)
    answer = post(client, result.run.pk, result.token, [{"seq": 1, "type": "heartbeat"}]).json()
    assert answer["desired_state"] == "cancelling"
    final = {"seq": 2, "type": "status", "status": "cancelled", "message": "stopped on request"}
    assert post(client, result.run.pk, result.token, [final]).json()["desired_state"] == "cancelled"

    assert Run.objects.get(pk=result.run.pk).status == RunStatus.CANCELLED


def test_a_queued_external_run_is_cancelled_at_once_and_none_is_resumed(client):
    user = member()
    result = create(user)

    assert run_cancel(run_id=result.run.pk, user=user)

    assert Run.objects.get(pk=result.run.pk).status == RunStatus.CANCELLED
    assert run_resume(run_id=result.run.pk, user=user) is None  # its trainer is not Triad's to start
    assert Run.objects.get(pk=result.run.pk).status == RunStatus.CANCELLED


def test_its_page_shows_it_as_external_without_the_launchers_cards(client):
    user = member()
    result = create(user, heartbeat_timeout_s=45, config={"lr": 2e-5})
    client.force_login(user)

    page = client.get(f"/runs/{result.run.pk}/").content.decode()

    assert 'data-testid="external-badge"' in page and 'data-testid="external"' in page
    assert "Waiting for its trainer's first event" in page
    assert "2 GPUs at pool cpu" in page and "45 s" in page
    for card in (
        'id="attempts"',
        'id="provenance"',
        'id="checkpoints"',
        'id="exported-models"',
        'data-testid="clone"',
    ):
        assert card not in page, card
    config = page[page.index('id="config"') :]
    config = config[: config.index("</table>")]
    assert 'title="lr"' in config and 'title="gpus_per_node"' in config
    assert 'title="group_size"' not in config  # a setting of Triad's trainer it did not declare


def test_a_lost_external_runs_page_offers_cancel_but_no_resume(client):
    user = member()
    result = create(user)
    Run.objects.filter(pk=result.run.pk).update(status=RunStatus.LOST)
    client.force_login(user)

    page = client.get(f"/runs/{result.run.pk}/").content.decode()

    assert 'data-testid="cancel"' in page and 'data-testid="resume"' not in page
