"""Launching, stopping and halving sweeps through their services (runs/sweeps/services.py)."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from runs.models import LogLine, Run, RunMetricKey, RunStatus
from runs.spend.models import TeamMonthlyBudget
from runs.spend.selectors import spend_estimate
from runs.sweeps.document import sweep_document_from
from runs.sweeps.expansion import SweepError
from runs.sweeps.models import Sweep, SweepHalt, SweepRun, SweepRung, SweepStatus
from runs.sweeps.services import halving_pick, sweep_halve, sweep_launch, sweep_stop
from runs.sweeps.tasks import sweep_halve_task
from tests.factories import MetricPointFactory, RegisteredModelFactory, TeamFactory, UserFactory
from workers.spec import RunConfig

pytestmark = pytest.mark.django_db


def document(version, **over):
    values = {
        "name": "lr-grid",
        "dataset_version": version.pk,
        "config": {"steps": 3},
        "axes": {"lr": [1e-5, 3e-5], "group_size": [4, 8]},
        **over,
    }
    return sweep_document_from(values)


def test_a_grid_sweep_queues_one_run_per_combination_named_after_it_with_its_params(member, version, team):
    sweep = sweep_launch(user=member, document=document(version)).sweep

    members = list(SweepRun.objects.filter(sweep=sweep).select_related("run"))
    assert [m.run.name for m in members] == ["lr-grid-1", "lr-grid-2", "lr-grid-3", "lr-grid-4"]
    assert [m.params for m in members] == [
        {"lr": 1e-5, "group_size": 4},
        {"lr": 1e-5, "group_size": 8},
        {"lr": 3e-5, "group_size": 4},
        {"lr": 3e-5, "group_size": 8},
    ]
    assert all(m.run.status == RunStatus.QUEUED and m.run.team == team for m in members)
    assert [(m.run.config["lr"], m.run.config["group_size"], m.run.config["steps"]) for m in members] == [
        (1e-5, 4, 3),
        (1e-5, 8, 3),
        (3e-5, 4, 3),
        (3e-5, 8, 3),
    ]


def test_a_random_sweep_launches_the_same_draws_for_the_same_seed(member, version):
    axes = {"lr": {"low": 1e-6, "high": 1e-3, "log": True}, "group_size": [2, 4, 8]}
    one = sweep_launch(
        user=member, document=document(version, name="a", method="random", count=5, seed=3, axes=axes)
    ).sweep
    two = sweep_launch(
        user=member, document=document(version, name="b", method="random", count=5, seed=3, axes=axes)
    ).sweep

    params = [list(s.sweep_runs.values_list("params", flat=True)) for s in (one, two)]
    assert params[0] == params[1] and len(params[0]) == 5


def test_a_run_the_spec_refuses_refuses_the_whole_sweep_and_nothing_is_stored(member, version):
    bad = document(version, config={"sft_warmup_steps": 4}, axes={"steps": [10, 4]})

    with pytest.raises(SweepError) as refused:
        sweep_launch(user=member, document=bad)

    assert refused.value.field == "axes.steps" and "run 2 (steps=4)" in str(refused.value)
    assert not Sweep.objects.exists() and not Run.objects.exists()


def test_a_sweep_over_the_teams_budget_is_refused_up_front_with_the_figures(member, version, team):
    defaults = RunConfig()
    one_run = spend_estimate(
        dataset_version_id=version.pk,
        pool="cpu",
        steps=1000,
        gpus=defaults.gpus_per_node,
        nodes=defaults.nodes,
    ).usd
    assert one_run > 0
    # Room for one run, not for four: each would pass the launch's own check, the sweep does not.
    TeamMonthlyBudget.objects.create(team=team, usd_per_month=one_run * Decimal("1.5"))

    with pytest.raises(SweepError) as refused:
        sweep_launch(user=member, document=document(version, config={"steps": 1000}, pool="cpu"))

    message = str(refused.value)
    assert refused.value.field == "budget"
    assert f"this sweep of 4 runs is estimated at ${one_run * 4:.2f} in all" in message
    assert f"only ${one_run * Decimal('1.5'):.2f} of team ml's" in message
    assert not Sweep.objects.exists() and not Run.objects.exists()


def test_a_viewer_launches_no_sweep(version, team):
    viewer = UserFactory(username="vic", password=None, membership__team=team, membership__role="viewer")

    with pytest.raises(PermissionDenied):
        sweep_launch(user=viewer, document=document(version))


def test_another_teams_dataset_is_refused_naming_the_dataset_version(member, version):
    version.dataset.team = UserFactory(username="otto").memberships.first().team
    version.dataset.save()

    with pytest.raises(SweepError) as refused:
        sweep_launch(user=member, document=document(version))

    assert refused.value.field == "dataset_version"


def test_stopping_a_sweep_cancels_its_active_runs_and_leaves_the_ended_ones(member, version):
    sweep = sweep_launch(user=member, document=document(version)).sweep
    runs = [m.run for m in sweep.sweep_runs.select_related("run")]
    Run.objects.filter(pk=runs[1].pk).update(status=RunStatus.RUNNING)
    Run.objects.filter(pk=runs[2].pk).update(status=RunStatus.SUCCEEDED)

    assert sweep_stop(sweep_id=sweep.pk, user=member) == 3
    assert sweep_stop(sweep_id=sweep.pk, user=member) == 0  # again: nothing left to cancel

    statuses = [Run.objects.get(pk=r.pk).status for r in runs]
    assert statuses == [RunStatus.CANCELLED, RunStatus.CANCELLING, RunStatus.SUCCEEDED, RunStatus.CANCELLED]
    sweep.refresh_from_db()
    assert sweep.status == SweepStatus.STOPPED and sweep.stopped_at is not None


def test_halving_picks_the_bottom_fraction_worst_first():
    values = {1: 0.5, 2: 0.1, 3: 0.9, 4: 0.3, 5: 0.7}

    assert halving_pick(values, fraction=0.5, goal="max") == [2, 4]  # floor(2.5)
    assert halving_pick(values, fraction=0.5, goal="min") == [3, 5]
    assert halving_pick({1: 0.2, 2: 0.2}, fraction=0.5, goal="max") == [2]  # a tie: the later run


def _log(run, key, values):
    for step, value in enumerate(values):
        MetricPointFactory(run=run, key=key, step=step, value=value)
    RunMetricKey.objects.update_or_create(run=run, key=key, defaults={"last_step": len(values) - 1})


def test_halving_waits_for_every_run_then_cancels_the_bottom_half_once_saying_why(member, version):
    halving = {"step": 2, "fraction": 0.5}
    sweep = sweep_launch(user=member, document=document(version, config={"steps": 6}, halving=halving)).sweep
    runs = [m.run for m in sweep.sweep_runs.select_related("run")]
    Run.objects.filter(pk__in=[r.pk for r in runs]).update(status=RunStatus.RUNNING)
    _log(runs[0], "pass_rate", [0.1, 0.2, 0.6])
    _log(runs[1], "pass_rate", [0.5, 0.4, 0.1, 0.9])  # at step 2: 0.1, whatever came after
    _log(runs[2], "pass_rate", [0.0, 0.3])  # not at step 2 yet

    assert sweep_halve(sweep_id=sweep.pk) == []  # two runs still on their way
    _log(runs[2], "pass_rate", [0.0, 0.3, 0.2])
    _log(runs[3], "pass_rate", [0.0, 0.3, 0.8])

    assert sorted(sweep_halve_task()) == sorted([runs[1].pk, runs[2].pk])  # the beat task
    assert sweep_halve(sweep_id=sweep.pk) == []  # judged once

    stopped = Run.objects.get(pk=runs[1].pk)
    assert stopped.status == RunStatus.CANCELLING
    assert stopped.status_message == (
        "stopped by successive halving at step 2: pass_rate 0.1 was in the bottom 50% of the 4 runs of "
        "sweep lr-grid"
    )
    assert LogLine.objects.filter(run=stopped, message__contains="successive halving").exists()
    assert Run.objects.get(pk=runs[0].pk).status == RunStatus.RUNNING
    rung = SweepRung.objects.get(sweep=sweep)
    assert (rung.step, rung.compared) == (2, 4)
    assert dict(SweepHalt.objects.values_list("run_id", "value")) == {runs[1].pk: 0.1, runs[2].pk: 0.2}


def test_halving_every_k_steps_judges_further_rungs_among_the_runs_left(member, version):
    halving = {"step": 1, "every": 2, "fraction": 0.5, "metric": "loss", "goal": "min"}
    sweep = sweep_launch(user=member, document=document(version, config={"steps": 4}, halving=halving)).sweep
    runs = [m.run for m in sweep.sweep_runs.select_related("run")]
    Run.objects.filter(pk__in=[r.pk for r in runs]).update(status=RunStatus.RUNNING)
    for run, losses in zip(runs, ([1, 1, 1, 1], [1, 3, 3, 3], [1, 2, 2, 9], [1, 0.5, 0.5, 0.5]), strict=True):
        _log(run, "loss", losses)

    first = sweep_halve(sweep_id=sweep.pk)  # step 1: losses 1, 3, 2, 0.5 → stop the two highest
    second = sweep_halve(sweep_id=sweep.pk)  # step 3, of the two left: 1 and 0.5 → stop the 1

    assert first == [runs[1].pk, runs[2].pk] and second == [runs[0].pk]
    assert list(sweep.rungs.values_list("step", "compared")) == [(1, 4), (3, 2)]
    assert sweep_halve(sweep_id=sweep.pk) == []  # step 5 is past every run's steps


def test_halving_compares_only_the_runs_that_reached_the_step_and_not_in_a_stopped_sweep(member, version):
    sweep = sweep_launch(user=member, document=document(version, halving={"step": 1})).sweep
    runs = [m.run for m in sweep.sweep_runs.select_related("run")]
    Run.objects.filter(pk__in=[r.pk for r in runs]).update(status=RunStatus.RUNNING)
    for run, value in zip((runs[0], runs[2], runs[3]), (0.4, 0.2, 0.6), strict=True):
        _log(run, "pass_rate", [value, value])

    sweep_stop(sweep_id=sweep.pk, user=member)
    assert sweep_halve(sweep_id=sweep.pk) == []

    Sweep.objects.filter(pk=sweep.pk).update(status=SweepStatus.ACTIVE)
    Run.objects.filter(pk__in=[r.pk for r in runs]).update(status=RunStatus.RUNNING)
    Run.objects.filter(pk=runs[1].pk).update(status=RunStatus.FAILED)  # ended before step 1: not waited for
    assert sweep_halve(sweep_id=sweep.pk) == [runs[2].pk]  # 3 compared: floor(1.5) stopped


def test_a_second_sweep_of_the_same_name_in_the_team_is_refused(member, version):
    sweep_launch(user=member, document=document(version))

    with pytest.raises(SweepError) as refused:
        sweep_launch(user=member, document=document(version))

    assert refused.value.field == "name" and "team ml has a sweep named lr-grid already" in str(refused.value)
    assert Run.objects.count() == 4


def test_another_teams_model_does_not_exist_for_the_sweep(member, version):
    other = RegisteredModelFactory(team=TeamFactory(name="beta"), name="secret-model", status="ready")

    with pytest.raises(SweepError) as refused:
        sweep_launch(user=member, document=document(version, model=other.pk))

    assert refused.value.field == "model" and str(refused.value) == f"model: no model #{other.pk}"
