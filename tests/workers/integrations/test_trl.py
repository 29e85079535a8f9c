"""TRL → Triad (docs/external-runs.md): TRL's real GRPOTrainer on the CPU, with the tiny Hugging Face model
the tests build, streams an external run to a live server through the ingest door; the sandbox reward
scores as Triad's trainer does."""

import json

import pytest
from datasets import Dataset
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from controlplane.accounts.models import Role
from runs.external import run_create_external
from runs.lifecycle import run_cancel
from runs.models import Generation, IngestedEvent, MetricPoint, Run, RunStatus
from tests.factories import DatasetVersionFactory, ProblemFactory, TeamFactory, UserFactory
from workers.integrations.trl import SandboxReward, TriadCallback, triad_metrics

PROMPT = "def add(a, b):\n"
TESTS = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 4\n"


def problems():
    team = TeamFactory(name="ml")
    user = UserFactory(membership=None)
    user.memberships.create(team=team, role=Role.MEMBER)
    version = DatasetVersionFactory(dataset__team=team, problem_count=2)
    rows = [
        ProblemFactory(version=version, task_id=f"Add/{i}", prompt=PROMPT, entry_point="add", tests=TESTS)
        for i in range(2)
    ]
    return user, version, rows


def jsonl_rows(rows):
    return [
        {"task_id": p.task_id, "prompt": p.prompt, "entry_point": p.entry_point, "test": p.tests}
        for p in rows
    ]


def grpo(tiny_hf_dir, tmp_path, rows, reward, callback, *, steps):
    dataset = Dataset.from_list([{"prompt": p.prompt, "task_id": p.task_id} for p in rows])
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=steps,
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=8,
        learning_rate=1e-4,
        beta=0.0,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=0,
    )
    return GRPOTrainer(
        model=str(tiny_hf_dir), reward_funcs=[reward], args=args, train_dataset=dataset, callbacks=[callback]
    )


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.mark.django_db(transaction=True)
def test_a_trl_grpo_run_streams_its_metrics_and_generations_to_an_external_run(
    live_server, tiny_hf_dir, tmp_path, offline, client
):
    user, version, rows = problems()
    created = run_create_external(
        user=user, team=None, dataset_version=version, name="trl", pool="cpu", gpus=1
    )
    callback = TriadCallback(
        url=live_server.url,
        run_id=created.run.pk,
        token=created.token,
        spool_dir=tmp_path / "spool",
        heartbeat_s=0.2,
    )
    reward = SandboxReward(jsonl_rows(rows), callback=callback)

    grpo(tiny_hf_dir, tmp_path, rows, reward, callback, steps=3).train()

    run = Run.objects.get(pk=created.run.pk)
    assert run.status == RunStatus.SUCCEEDED and run.started_at and run.last_heartbeat_at
    assert run.last_step == 3
    keys = set(MetricPoint.objects.filter(run=run).values_list("key", flat=True))
    assert {"reward/mean", "reward/std", "pass_rate", "loss", "lr", "error/syntax_error"} <= keys
    assert MetricPoint.objects.filter(run=run, key="reward/mean").count() == 3
    generations = Generation.objects.filter(run=run)
    assert generations.count() == 3 * 2  # every sample of 3 steps of one group of 2
    assert set(generations.values_list("step", flat=True)) == {1, 2, 3}
    assert set(generations.values_list("problem_id", flat=True)) <= {"Add/0", "Add/1"}
    assert all(g.error_class and g.tests_total in (0, 2) for g in generations)
    events = IngestedEvent.objects.filter(run=run)
    assert set(events.values_list("source", flat=True)) == {"external"}
    assert events.filter(type="heartbeat").exists()  # one at the start, then the thread's every 0.2 s
    assert not (tmp_path / "spool" / "rejected.jsonl").exists()
    client.force_login(user)
    review = client.get(f"/review/runs/{run.pk}/").content.decode()
    assert "<td>Add/0</td>" in review or "<td>Add/1</td>" in review  # its generations, in review


class CancelAfterFirstStep(TrainerCallback):
    def __init__(self, run_id, user):
        self.run_id, self.user = run_id, user

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1:
            run_cancel(run_id=self.run_id, user=self.user)


@pytest.mark.django_db(transaction=True)
def test_cancel_reaches_the_trl_run_on_an_answer_and_it_stops_as_cancelled(
    live_server, tiny_hf_dir, tmp_path, offline
):
    user, version, rows = problems()
    created = run_create_external(
        user=user, team=None, dataset_version=version, name="trl", pool="cpu", gpus=1
    )
    callback = TriadCallback(
        url=live_server.url,
        run_id=created.run.pk,
        token=created.token,
        spool_dir=tmp_path / "spool",
        heartbeat_s=30,
    )
    trainer = grpo(tiny_hf_dir, tmp_path, rows, SandboxReward(jsonl_rows(rows)), callback, steps=20)
    trainer.add_callback(CancelAfterFirstStep(created.run.pk, user))

    trainer.train()

    run = Run.objects.get(pk=created.run.pk)
    assert run.status == RunStatus.CANCELLED
    # Cancelled at step 1's end, before its log: the answer to that log said cancelling.
    assert trainer.state.global_step == 1
    assert "cancelled" in run.status_message


@pytest.mark.django_db
def test_the_sandbox_reward_scores_as_triads_trainer_with_verdicts_and_flags():
    rows = [{"task_id": "Add/0", "prompt": PROMPT, "entry_point": "add", "test": TESTS}]
    reward = SandboxReward(rows)
    completions = [
        "    return a + b\n",
        "    return a - b\n",
        "    return (\n",
        "    import sys\n    sys.exit(0)\n",
    ]
    logged, extra = {}, {}

    rewards = reward(
        prompts=[PROMPT] * 4,
        completions=completions,
        task_id=["Add/0"] * 4,
        log_metric=logged.__setitem__,
        log_extra=extra.__setitem__,
    )

    assert rewards[:3] == [1.0, 0.0, 0.0]
    classes = [s.error_class for s in reward.last_scores]
    assert classes[:3] == ["passed", "wrong_answer", "syntax_error"]
    assert reward.last_scores[1].tests_total == 2 and "AssertionError" in reward.last_scores[1].stderr
    assert reward.last_flags[3] == ["early_exit"]  # Triad's hack detectors ran on it
    assert extra["error_class"] == classes and extra["task_id"] == ["Add/0"] * 4
    assert logged["pass_rate"] == pytest.approx(sum(c == "passed" for c in classes) / 4)
    assert logged["review/flagged_frac"] == 0.25


def test_a_chat_completion_is_scored_by_the_code_in_its_answer_and_columns_can_carry_the_tests():
    answer = [{"role": "assistant", "content": "Here:\n```python\ndef add(a, b):\n    return a + b\n```"}]

    rewards = SandboxReward()(
        prompts=[[{"role": "user", "content": "add two numbers"}]],
        completions=[answer],
        task_id=["Add/0"],
        entry_point=["add"],
        test=[TESTS],
    )

    assert rewards == [1.0]


def test_without_a_task_id_column_it_says_so():
    with pytest.raises(ValueError, match="task_id column"):
        SandboxReward()(prompts=[PROMPT], completions=["    return a + b\n"])


def test_trl_names_map_to_triads_catalog_and_the_rest_keep_theirs():
    logs = {
        "reward": 0.5,
        "kl": 0.1,
        "learning_rate": 1e-5,
        "rewards/triad_sandbox/mean": 0.5,
        "epoch": 1,
        "nan": float("nan"),
        "note": "text",
        "flag": True,
    }

    assert triad_metrics(logs) == {
        "reward/mean": 0.5,
        "kl": 0.1,
        "lr": 1e-5,
        "rewards/triad_sandbox/mean": 0.5,
        "epoch": 1.0,
    }


def doc_example() -> str:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "docs" / "external-runs.md").read_text()
    block = text.split("<!-- test: trl-example -->", 1)[1]
    return block.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.django_db(transaction=True)
def test_the_docs_example_runs_as_written(live_server, tiny_hf_dir, tmp_path, offline, monkeypatch):
    user, version, rows = problems()
    created = run_create_external(
        user=user, team=None, dataset_version=version, name="doc", pool="cpu", gpus=1
    )
    (tmp_path / "problems.jsonl").write_text("\n".join(json.dumps(row) for row in jsonl_rows(rows)))
    monkeypatch.chdir(tmp_path)
    env = {
        "TRIAD_URL": live_server.url,
        "TRIAD_RUN_ID": str(created.run.pk),
        "TRIAD_RUN_TOKEN": created.token,
        "MODEL": str(tiny_hf_dir),
        "PROBLEMS": str(tmp_path / "problems.jsonl"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    exec(compile(doc_example(), "docs/external-runs.md", "exec"), {"__name__": "__doc_example__"})  # noqa: S102

    run = Run.objects.get(pk=created.run.pk)
    assert run.status == RunStatus.SUCCEEDED and run.last_step == 2
    assert MetricPoint.objects.filter(run=run, key="reward/mean").count() == 2
    assert Generation.objects.filter(run=run).count() == 2 * 2
    assert (tmp_path / f"triad-spool-run-{run.pk}").is_dir()


@pytest.mark.django_db(transaction=True)
def test_a_wrong_token_never_stops_training_and_is_said_once(live_server, tmp_path, capsys):
    from types import SimpleNamespace

    from transformers import TrainerControl, TrainerState

    user, version, _ = problems()
    created = run_create_external(user=user, team=None, dataset_version=version, name="x", pool="cpu", gpus=1)
    wrong = "triad_run_wrong"
    callback = TriadCallback(
        url=live_server.url, run_id=created.run.pk, token=wrong, spool_dir=tmp_path, heartbeat_s=30
    )
    args, state, control = SimpleNamespace(max_steps=2, output_dir="out"), TrainerState(), TrainerControl()

    callback.on_train_begin(args, state, control)
    for step in (1, 2):
        state.global_step = step
        callback.on_log(args, state, control, logs={"loss": 0.5})
    callback.on_train_end(args, state, control)

    assert not control.should_training_stop
    assert callback.refused and "401" in callback.refused
    assert capsys.readouterr().err.count("nothing more is sent to Triad") == 1
    assert Run.objects.get(pk=created.run.pk).status == RunStatus.QUEUED
    assert (tmp_path / "spool.jsonl").read_text().count('"metric"') == 2  # kept, unsent


def wait_for(predicate, seconds=10.0):
    import time

    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.django_db(transaction=True)
def test_a_heartbeats_answer_stops_training_at_the_steps_end_and_a_budget_stop_is_left_as_it_is(
    live_server, tmp_path
):
    from types import SimpleNamespace

    from transformers import TrainerControl, TrainerState

    from runs.lifecycle import run_budget_stop

    user, version, _ = problems()
    created = run_create_external(user=user, team=None, dataset_version=version, name="x", pool="cpu", gpus=1)
    callback = TriadCallback(
        url=live_server.url, run_id=created.run.pk, token=created.token, spool_dir=tmp_path, heartbeat_s=0.05
    )
    args, state, control = SimpleNamespace(max_steps=9, output_dir="out"), TrainerState(), TrainerControl()
    callback.on_train_begin(args, state, control)
    assert Run.objects.get(pk=created.run.pk).status == RunStatus.RUNNING

    assert run_budget_stop(run_id=created.run.pk, message="run budget reached")
    wait_for(lambda: callback.stop_reason == "budget_stopped")  # a heartbeat's answer, between logs
    callback.on_step_end(args, state, control)
    assert control.should_training_stop
    callback.on_train_end(args, state, control)

    run = Run.objects.get(pk=created.run.pk)
    assert run.status == RunStatus.BUDGET_STOPPED and run.status_message == "run budget reached"
    assert IngestedEvent.objects.filter(run=run, type="heartbeat").exists()
    assert not IngestedEvent.objects.filter(run=run, type="status").exclude(seq=0).exists()  # no end report
