"""The names the control plane and the GPU side both use come from workers.spec, so they agree."""

from runs.events import REPORTED_STATUSES
from runs.models import RunStatus
from runs.selectors import COMPARE_KEYS
from workers.sandbox import ERROR_CLASSES as SANDBOX_ERROR_CLASSES
from workers.spec import (
    ERROR_CLASSES,
    REWARD_COMPONENTS,
    REWARD_WEIGHTS,
    SETTINGS,
    STOP_STATES,
    Metric,
    RunState,
    TrainConfig,
)
from workers.trainer.eval_protocol import ProblemCounts
from workers.trainer.metrics import LocalStats, merge_metrics, pass_metrics
from workers.trainer.reward_components import COMPONENTS
from workers.trainer.spec import reward_weights


def test_run_statuses_are_the_run_states_the_launcher_reports_and_obeys():
    assert RunStatus.values == [state.value for state in RunState]
    assert set(REPORTED_STATUSES) <= set(RunStatus.values)
    assert set(RunStatus.values) >= STOP_STATES
    assert RunStatus.BUDGET_STOPPED.label == "Budget Stopped"


def test_error_classes_and_reward_components_are_named_once():
    assert SANDBOX_ERROR_CLASSES is ERROR_CLASSES
    assert COMPONENTS is REWARD_COMPONENTS
    assert set(reward_weights(TrainConfig())) == set(REWARD_COMPONENTS)
    assert all(weight in SETTINGS for weight in REWARD_WEIGHTS)


def test_the_trainer_emits_every_metric_the_control_plane_reads_by_name():
    stats = LocalStats(rewards=[1.0], passed=1, pass_frac=[1.0], n_samples=1, groups=1, lengths=[3], tokens=3)
    # a rank that ran repository episodes (the repo/* names appear only where there were some)
    episodes = LocalStats(repo_outcomes={"resolved": 1}, repo_turns=[3], repo_episode_s=[1.5])

    emitted = merge_metrics([stats, episodes], lr=1e-3, grad_norm=1.0, step_s=1.0, weights={"style": 0.5})
    evaluated = pass_metrics([ProblemCounts("HumanEval/0", 4, 2, greedy=(1, 1))], 2, "eval/humaneval")

    assert {value for name, value in vars(Metric).items() if name.isupper()} <= set(emitted)
    assert Metric.reward_share("style") in emitted
    assert {Metric.pass_at(1, "humaneval"), Metric.pass_at(2, "humaneval")} <= set(evaluated)
    assert set(COMPARE_KEYS) <= set(emitted) | set(evaluated)
