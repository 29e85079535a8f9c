import datetime as dt
from decimal import Decimal

import pytest

from runs.config_schema import ConfigError, config_from_yaml
from runs.launch import RunLaunchError, run_launch
from runs.lifecycle import run_reap_lost
from runs.models import MetricPoint, Run, RunStatus
from runs.nodes import NodeInfo, node_register, run_node_assign
from runs.spec import run_spec
from runs.spend.models import CostEntry, GpuPrice, MonthlyBudget, RunCost
from runs.spend.selectors import run_cost_projection
from runs.spend.services import node_price_set, run_cost_accrue
from tests.factories import MetricPointFactory, ProblemFactory, RunFactory
from workers.spec import RunConfig

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2025, 5, 10, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def a100(settings):
    settings.TRIAD_SPEND_GRACE_S = 30
    # $3.60 per GPU-hour: a tenth of a cent per GPU-second, so expected costs read off the seconds.
    return GpuPrice.objects.create(pool="a100", gpu_type="A100", usd_per_gpu_hour=Decimal("3.60"))


def running_run(**kwargs) -> Run:
    defaults = {
        "status": RunStatus.RUNNING,
        "pool": "a100",
        "config": {"steps": 100, "gpus_per_node": 2},
        "started_at": T0,
        "last_heartbeat_at": T0,
        "last_step": 3,
    }
    return RunFactory(**{**defaults, **kwargs})


def cost_of(run: Run) -> RunCost:
    return RunCost.objects.get(run=run)


def test_a_running_run_accrues_its_time_times_gpus_times_price_and_streams_it_as_metrics():
    run = running_run(last_heartbeat_at=at(60))

    result = run_cost_accrue(now=at(60))

    assert result.accrued == [run.pk]
    cost = cost_of(run)
    assert cost.usd == Decimal("0.120000")  # 60 s × 2 GPUs × $0.001
    assert cost.gpu_hours == pytest.approx(120 / 3600)
    assert cost.accrued_until == at(60)
    points = dict(MetricPoint.objects.filter(run=run, step=3).values_list("key", "value"))
    assert points == {"cost/usd": pytest.approx(0.12), "cost/gpu_hours": pytest.approx(120 / 3600)}


def test_accrual_over_a_runs_life_ends_once_at_its_finish():
    run = running_run(last_heartbeat_at=at(60))
    run_cost_accrue(now=at(60))
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.SUCCEEDED, finished_at=at(90), last_heartbeat_at=at(90)
    )

    run_cost_accrue(now=at(500))
    run_cost_accrue(now=at(900))

    cost = cost_of(run)
    assert cost.usd == Decimal("0.180000")  # 90 s in all, nothing after the finish
    assert cost.final
    assert CostEntry.objects.get(run=run).usd == cost.usd


def test_a_lost_node_is_billed_no_further_than_its_last_heartbeat_plus_grace():
    run = running_run(last_heartbeat_at=at(20))

    run_cost_accrue(now=at(300))

    assert cost_of(run).usd == Decimal("0.100000")  # (20 s + 30 s grace) × 2 GPUs
    assert cost_of(run).accrued_until == at(50)


def test_a_run_marked_lost_is_finalised_without_billing_the_silence(settings):
    run = running_run(started_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=400))
    Run.objects.filter(pk=run.pk).update(last_heartbeat_at=run.started_at + dt.timedelta(seconds=20))
    assert run_reap_lost(timeout_s=60) == [run.pk]

    run_cost_accrue()
    run_cost_accrue()

    cost = cost_of(run)
    assert cost.final
    assert cost.usd == Decimal("0.100000")


def test_accruing_twice_at_the_same_moment_adds_nothing_the_second_time():
    run = running_run(last_heartbeat_at=at(60))
    run_cost_accrue(now=at(60))

    again = run_cost_accrue(now=at(60))

    assert again.accrued == []
    assert cost_of(run).usd == Decimal("0.120000")
    assert CostEntry.objects.get(run=run).usd == Decimal("0.120000")
    assert MetricPoint.objects.filter(run=run, key="cost/usd").count() == 1


def test_a_stretch_across_midnight_is_split_between_the_two_days_in_the_ledger():
    start = dt.datetime(2025, 5, 10, 23, 59, 30, tzinfo=dt.UTC)
    run = running_run(started_at=start, last_heartbeat_at=start + dt.timedelta(seconds=60))

    run_cost_accrue(now=start + dt.timedelta(seconds=60))

    by_day = dict(CostEntry.objects.filter(run=run).values_list("day", "usd"))
    assert by_day == {dt.date(2025, 5, 10): Decimal("0.060000"), dt.date(2025, 5, 11): Decimal("0.060000")}


def test_a_cpu_pool_bills_the_trainer_processes(settings):
    settings.TRIAD_PROCS_PER_NODE = 2
    run = running_run(pool="cpu", config={"steps": 5}, last_heartbeat_at=at(3600))

    run_cost_accrue(now=at(3600))

    cost = cost_of(run)
    assert cost.gpus == 2
    assert cost.usd == Decimal("0.200000")  # the seeded price: $0.10 per process-hour × 2 processes


def test_a_resumed_run_is_billed_again_from_its_restart():
    run = running_run(last_heartbeat_at=at(60))
    Run.objects.filter(pk=run.pk).update(status=RunStatus.LOST, finished_at=at(100))
    run_cost_accrue(now=at(200))
    assert cost_of(run).final
    Run.objects.filter(pk=run.pk).update(
        status=RunStatus.RUNNING, finished_at=None, last_heartbeat_at=at(1000)
    )

    run_cost_accrue(now=at(1000))  # reopens at the restart
    run_cost_accrue(now=at(1010))

    assert cost_of(run).usd == Decimal("0.180000") + Decimal("0.020000")  # (60+30) s, then 10 s


def test_a_run_past_its_budget_is_budget_stopped_and_says_why():
    run = running_run(config={"steps": 100, "gpus_per_node": 2, "budget_usd": 0.1}, last_heartbeat_at=at(60))

    result = run_cost_accrue(now=at(60))

    assert result.budget_stopped == [run.pk]
    run.refresh_from_db()
    assert run.status == RunStatus.BUDGET_STOPPED
    assert (run.stop_cause, run.status_label) == ("budget", "Budget Stopped")
    assert "run budget reached" in run.status_message and "$0.10 cap" in run.status_message
    assert run.finished_at is not None


def test_a_run_under_its_budget_keeps_running():
    run = running_run(config={"steps": 100, "gpus_per_node": 2, "budget_usd": 1.0}, last_heartbeat_at=at(60))

    run_cost_accrue(now=at(60))

    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING


def test_a_user_past_the_monthly_budget_has_all_running_work_stopped():
    now = dt.datetime.now(dt.UTC)
    first = running_run(started_at=now - dt.timedelta(seconds=60), last_heartbeat_at=now)
    second = running_run(created_by=first.created_by, started_at=now, last_heartbeat_at=now)
    MonthlyBudget.objects.create(user=first.created_by, usd_per_month=Decimal("0.05"))

    result = run_cost_accrue(now=now)

    assert sorted(result.budget_stopped) == sorted([first.pk, second.pk])
    for run in (first, second):
        run.refresh_from_db()
        assert run.status == RunStatus.BUDGET_STOPPED
        assert "monthly budget reached: $0.12 spent" in run.status_message


def test_a_launch_whose_estimate_exceeds_the_monthly_remainder_is_refused_with_the_numbers(user, settings):
    settings.TRIAD_SPEND_DEFAULT_STEP_S = 10
    version = ProblemFactory().version
    spent = RunFactory(created_by=user, pool="a100")
    CostEntry.objects.create(run=spent, day=dt.datetime.now(dt.UTC).date(), usd=Decimal("0.90"))
    MonthlyBudget.objects.create(user=user, usd_per_month=Decimal("1.00"))
    config = RunConfig(steps=100, gpus_per_node=1)  # 100 × 10 s × 1 GPU × $3.60/h = $1.00

    with pytest.raises(RunLaunchError) as refused:
        run_launch(user=user, dataset_version=version, name="", config=config, pool="a100")

    assert refused.value.field == "budget_usd"
    message = str(refused.value)
    assert "estimated at $1.00" in message
    assert "only $0.10 of your $1.00 monthly budget is left ($0.90 spent" in message
    assert not Run.objects.exclude(pk=spent.pk).exists()


def test_a_launch_capped_within_the_monthly_remainder_is_accepted(user):
    version = ProblemFactory().version
    MonthlyBudget.objects.create(user=user, usd_per_month=Decimal("1.00"))
    config = RunConfig(steps=10_000, gpus_per_node=8, budget_usd=0.5)

    result = run_launch(user=user, dataset_version=version, name="", config=config, pool="a100")

    assert result.run.config["budget_usd"] == 0.5


def test_the_estimate_uses_the_median_step_time_of_runs_on_the_same_dataset_version():
    from runs.spend.selectors import spend_estimate

    earlier = running_run()
    for step, seconds in enumerate([2.0, 4.0, 100.0]):
        MetricPointFactory(run=earlier, key="time/step_s", step=step, value=seconds)

    estimate = spend_estimate(dataset_version_id=earlier.dataset_version_id, pool="a100", steps=1000, gpus=1)

    assert estimate.step_s == 4.0
    assert estimate.usd == Decimal("4.000000")  # 1000 × 4 s × $0.001
    assert "this dataset version" in estimate.explanation


# --- per-node prices ---


def test_a_run_on_a_node_with_its_own_price_accrues_at_that_price_until_staff_remove_it():
    node = node_register(
        info=NodeInfo(
            name="gpu@h1", hostname="h1", pool="a100", gpu_type="A100", gpu_count=8, usd_per_gpu_hour=7.2
        )
    )
    run = running_run(last_heartbeat_at=at(60))
    assert run_node_assign(run_id=run.pk, node_name=node.name)

    run_cost_accrue(now=at(60))
    assert cost_of(run).usd == Decimal("0.240000")  # 60 s × 2 GPUs × $7.20/h (the pool says $3.60)

    assert node_price_set(node_id=node.pk, usd_per_gpu_hour=None, user=None)
    Run.objects.filter(pk=run.pk).update(last_heartbeat_at=at(120))
    run_cost_accrue(now=at(120))
    assert cost_of(run).usd == Decimal("0.240000") + Decimal(
        "0.120000"
    )  # the next minute at the pool's price


def test_a_node_price_set_by_staff_overrides_the_pool_price_in_the_projection_too(settings):
    node = node_register(info=NodeInfo(name="gpu@h1", hostname="h1", pool="a100"))
    node_price_set(node_id=node.pk, usd_per_gpu_hour=Decimal("36"), user=None)
    run = running_run(config={"steps": 10, "gpus_per_node": 1}, last_step=4, node=node)
    for step in range(5):
        MetricPointFactory(run=run, key="time/step_s", step=step, value=10.0)

    projection = run_cost_projection(run=Run.objects.get(pk=run.pk))

    assert projection.projected_usd == Decimal("0.500000")  # 5 steps × 10 s × 1 GPU × $0.01/s


# --- stops on learning signals ---


def run_with_series(key: str, values: list[float], **config) -> Run:
    run = running_run(config={"steps": 1000, "gpus_per_node": 1, **config}, last_step=None)
    log_steps(run, key, values)
    return run


def log_steps(run: Run, key: str, values: list[float]) -> None:
    """The trainer logging one value of `key` per step, after what the run has logged so far."""
    run.refresh_from_db()
    first = 0 if run.last_step is None else run.last_step + 1
    for step, value in enumerate(values, start=first):
        MetricPointFactory(run=run, key=key, step=step, value=value)
    Run.objects.filter(pk=run.pk).update(last_step=first + len(values) - 1)


def test_a_pass_rate_flat_for_n_steps_stops_the_run_at_the_nth_step_and_not_before():
    # Learning, then four steps within ±0.01 (0.43 - 0.42 is a hair over 0.01 in floating point).
    run = run_with_series(
        "pass_rate",
        [0.1, 0.2, 0.3, 0.42, 0.43, 0.42, 0.43],
        stop_pass_rate_flat_steps=5,
        stop_pass_rate_tolerance=0.01,
    )

    assert run_cost_accrue(now=at(10)).learning_stopped == []
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING

    log_steps(run, "pass_rate", [0.42])  # the fifth flat step
    result = run_cost_accrue(now=at(20))

    assert result.learning_stopped == [run.pk]
    run.refresh_from_db()
    assert run.status == RunStatus.BUDGET_STOPPED  # the budget stop's door: the trainer checkpoints
    assert (run.stop_cause, run.status_label) == ("learning", "Stopped: not learning")
    assert run.status_message.startswith(
        "learning stalled: pass rate flat at 0.42 (within 0.01) for 5 steps, to step 7: "
        "spend no longer buys learning"
    )


def test_a_pass_rate_still_moving_more_than_the_tolerance_keeps_the_run_going():
    run = run_with_series(
        "pass_rate",
        [0.40, 0.42, 0.44, 0.46, 0.48, 0.50],
        stop_pass_rate_flat_steps=5,
        stop_pass_rate_tolerance=0.05,
    )

    assert run_cost_accrue(now=at(10)).learning_stopped == []
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING


def test_zero_std_groups_above_the_threshold_for_n_steps_stop_the_run_at_the_nth_step_and_not_before():
    run = run_with_series(
        "frac_reward_zero_std", [0.95, 0.5, 0.9], stop_zero_std_steps=3, stop_zero_std_frac=0.8
    )
    for value in (0.85, 0.8):  # the 0.5 still in the window, then a step at the threshold (not above)
        assert run_cost_accrue(now=at(10)).learning_stopped == []
        log_steps(run, "frac_reward_zero_std", [value])
    log_steps(run, "frac_reward_zero_std", [0.9, 1.0])
    assert run_cost_accrue(now=at(20)).learning_stopped == []  # two steps above since the 0.8

    log_steps(run, "frac_reward_zero_std", [0.95])
    result = run_cost_accrue(now=at(30))

    assert result.learning_stopped == [run.pk]
    run.refresh_from_db()
    assert run.status == RunStatus.BUDGET_STOPPED
    assert run.status_message.startswith(
        "learning stalled: frac_reward_zero_std above 0.8 for 3 steps, to step 7 (lowest 0.90)"
    )


def test_steps_before_the_metric_is_logged_do_not_count_towards_a_stop():
    # Three SFT warm-up steps log no pass_rate; then two RL steps at 0.0.
    run = running_run(config={"steps": 100, "stop_pass_rate_flat_steps": 3}, last_step=4)
    for step in (3, 4):
        MetricPointFactory(run=run, key="pass_rate", step=step, value=0.0)
    for step in range(5):
        MetricPointFactory(run=run, key="loss", step=step, value=1.0)

    assert run_cost_accrue(now=at(10)).learning_stopped == []


def test_learning_stops_are_off_by_default():
    config = RunConfig(steps=1000, gpus_per_node=1).as_dict()
    assert config["stop_pass_rate_flat_steps"] == 0 and config["stop_zero_std_steps"] == 0
    run = running_run(config=config, last_step=None)
    log_steps(run, "pass_rate", [0.0] * 300)
    log_steps(run, "frac_reward_zero_std", [1.0] * 300)

    result = run_cost_accrue(now=at(10))

    assert result.learning_stopped == [] and result.budget_stopped == []
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING


def test_the_stop_rules_come_from_the_yaml_within_range_and_stay_on_the_control_plane():
    parsed = config_from_yaml("stop_pass_rate_flat_steps: 50\nstop_pass_rate_tolerance: 0.02\n").config
    assert (parsed.stop_pass_rate_flat_steps, parsed.stop_pass_rate_tolerance) == (50, 0.02)
    with pytest.raises(ConfigError) as caught:
        config_from_yaml("stop_zero_std_frac: 1.5")
    assert str(caught.value) == "config line 1, 'stop_zero_std_frac': must be a number ≤ 1"
    run = RunFactory(config=parsed.as_dict())

    assert not any(key.startswith("stop_") for key in run_spec(run=run)["train"])
