"""Exporting a run's checkpoint as a new model: the row, the job for the run's pool, the node's answer
and the inspection that follows, and the refusals (docs/models.md, "Export and lineage")."""

import json
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied

from controlplane.accounts.models import Role
from controlplane.celery import app
from runs.models import RunStatus
from runs.registry.exporting import ExportAnswer, model_exported
from runs.registry.models import ModelStatus, RegisteredModel
from runs.registry.services import TINY_REFUSAL, ModelRegisterError, model_export, model_inspect_again
from runs.registry.tasks import model_exported_task
from tests.factories import RegisteredModelFactory, RunFactory, TeamFactory, UserFactory
from tests.workers.test_export import _checkpoint


def _run(user, status=RunStatus.SUCCEEDED, **model_fields):
    base = RegisteredModelFactory(registered_by=user, pool="a100", **model_fields)
    return RunFactory(created_by=user, model=base, pool="a100", status=status, name="coder-rl")


@pytest.mark.django_db(transaction=True)
def test_exporting_records_an_exporting_model_with_its_lineage_and_asks_a_node_of_the_runs_pool(user, queued):
    run = _run(user, chat=True, stop=["###"], dtype="fp16", tokenizer="/tok")

    model = model_export(user=user, run=run, name=" coder-rl-final ")

    row = RegisteredModel.objects.get(pk=model.pk)
    assert (row.name, row.status, row.from_run, row.from_step) == (
        "coder-rl-final",
        ModelStatus.EXPORTING,
        run,
        None,
    )
    assert (row.pool, row.team, row.registered_by) == ("a100", run.team, user)
    assert (row.chat, row.stop, row.dtype) == (True, ["###"], "fp16")
    assert (row.source, row.tokenizer) == ("", "")  # the node names the directory, tokenizer inside it
    [message] = queued("gpu.a100")
    assert message["headers"]["task"] == "models.export"
    assert message["headers"]["argsrepr"] == f"[{model.pk}, {run.pk}, 'fp16']"


@pytest.mark.django_db(transaction=True)
def test_the_nodes_export_makes_the_model_pending_and_asks_for_its_inspection_once(user, queued):
    run = _run(user)
    model = model_export(user=user, run=run, name="m")
    answer = ExportAnswer(path=f"/runs/{run.pk}/export-step40", step=40, node="gpu@a")

    model_exported_task(model.pk, answer.as_dict())
    model_exported_task(model.pk, answer.as_dict())  # a redelivery
    model_exported_task(model.pk, ExportAnswer(error="late", node="gpu@b").as_dict())

    row = RegisteredModel.objects.get(pk=model.pk)
    assert (row.status, row.source, row.from_step, row.error) == (
        ModelStatus.PENDING,
        f"/runs/{run.pk}/export-step40",
        40,
        "",
    )
    inspect, export = queued("gpu.a100")  # LPUSH: the newest first
    assert (inspect["headers"]["task"], export["headers"]["task"]) == ("models.inspect", "models.export")
    assert inspect["headers"]["argsrepr"] == f"[{model.pk}, '/runs/{run.pk}/export-step40', None]"


@pytest.mark.django_db
def test_a_refused_export_says_why_and_a_later_answer_changes_nothing(user):
    model = RegisteredModelFactory(registered_by=user, status=ModelStatus.EXPORTING, source="", params=None)
    refusal = ExportAnswer(error="the run saved no checkpoint (no /runs/9/checkpoints/…)", node="gpu@a")

    assert model_exported(model_id=model.pk, answer=refusal)
    assert not model_exported(model_id=model.pk, answer=ExportAnswer(path="/x", step=3, node="gpu@b"))

    model.refresh_from_db()
    assert (model.status, model.error, model.inspected_by, model.source) == (
        ModelStatus.REFUSED,
        refusal.error,
        "gpu@a",
        "",
    )


@pytest.mark.django_db
def test_an_answer_without_a_step_is_a_refusal_not_a_model_with_no_lineage(user):
    model = RegisteredModelFactory(registered_by=user, status=ModelStatus.EXPORTING, source="")

    model_exported(model_id=model.pk, answer=ExportAnswer.from_dict({"path": "/x", "step": "3"}))

    model.refresh_from_db()
    assert model.status == ModelStatus.REFUSED
    assert model.error == "the node answered without a directory and step"


@pytest.mark.django_db
def test_a_path_too_long_to_store_is_refused_rather_than_cut_short(user):
    model = RegisteredModelFactory(registered_by=user, status=ModelStatus.EXPORTING, source="")
    path = "/runs/" + "d" * 600 + "/export-step3"

    model_exported(model_id=model.pk, answer=ExportAnswer(path=path, step=3))

    model.refresh_from_db()
    assert (model.status, model.source) == (ModelStatus.REFUSED, "")
    assert model.error.startswith("the export's path is longer than 500 characters: /runs/ddd")


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_the_export_says_so_and_is_exported_again(user, broker, queued):
    run = _run(user)
    broker.stop()

    model = model_export(user=user, run=run, name="m")

    row = RegisteredModel.objects.get(pk=model.pk)
    assert row.status == ModelStatus.REFUSED
    assert row.error.startswith(f"not exported: the task broker at 127.0.0.1:{broker.port} is unreachable")
    broker.start()
    assert model_inspect_again(user=user, model=row)
    assert RegisteredModel.objects.get(pk=model.pk).status == ModelStatus.EXPORTING
    assert [m["headers"]["task"] for m in queued("gpu.a100")] == ["models.export"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("status", "tiny", "name", "field", "message"),
    [
        (RunStatus.RUNNING, False, "m", "run", "is running: only a finished, failed, cancelled or budget"),
        (RunStatus.QUEUED, False, "m", "run", "is queued"),
        (RunStatus.LOST, False, "m", "run", "is lost"),
        (RunStatus.SUCCEEDED, True, "m", "run", TINY_REFUSAL),
        (RunStatus.SUCCEEDED, False, "  ", "name", "a model needs a name"),
        (RunStatus.SUCCEEDED, False, "taken", "name", "a model named 'taken' is registered already"),
    ],
)
def test_an_export_is_refused_on_the_field_it_is_about_and_records_nothing(
    user, status, tiny, name, field, message
):
    RegisteredModelFactory(name="taken")
    run = RunFactory(created_by=user, status=status) if tiny else _run(user, status=status)
    before = RegisteredModel.objects.count()

    with pytest.raises(ModelRegisterError) as refused:
        model_export(user=user, run=run, name=name)

    assert refused.value.field == field
    assert message in str(refused.value)
    assert RegisteredModel.objects.count() == before


@pytest.mark.django_db(transaction=True)  # on_commit sends the job
@pytest.mark.parametrize("status", [RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.BUDGET_STOPPED])
def test_a_failed_cancelled_or_budget_stopped_run_is_exported_too(user, status, eager, settings, tmp_path):
    settings.TRIAD_RUNS_DIR = str(tmp_path)  # no checkpoint there: the node refuses, saying so
    run = _run(user, status=status)

    model = model_export(user=user, run=run, name="m")

    model.refresh_from_db()
    assert model.status == ModelStatus.REFUSED
    assert model.error.startswith(f"no {tmp_path / str(run.pk) / 'spec.json'} on this node")


@pytest.mark.django_db
def test_a_viewer_of_the_team_and_an_outsider_export_nothing():
    team = TeamFactory(name="alpha")
    member = UserFactory(membership__team=team)
    viewer = UserFactory(membership__team=team, membership__role=Role.VIEWER)
    outsider = UserFactory(membership__team=TeamFactory(name="beta"))
    run = _run(member)

    for who in (viewer, outsider):
        with pytest.raises(PermissionDenied):
            model_export(user=who, run=run, name="m")
    assert list(RegisteredModel.objects.filter(from_run=run)) == []


def test_the_answer_goes_to_the_control_queue_and_the_job_to_the_pool():
    from django.conf import settings

    assert app.amqp.router.route({}, "models.exported")["queue"].name == settings.TRIAD_CONTROL_QUEUE
    assert app.amqp.router.route({"queue": "gpu.a100"}, "models.export")["queue"].name == "gpu.a100"


@pytest.mark.django_db(transaction=True)
def test_a_real_checkpoint_becomes_a_ready_model_that_names_the_run_and_step(
    user, eager, settings, tmp_path, tiny_hf_dir
):
    settings.TRIAD_RUNS_DIR = str(tmp_path)
    run = _run(user, source=str(tiny_hf_dir))
    _checkpoint(tiny_hf_dir, tmp_path / str(run.pk), zero_stage=2, step=5)

    model = model_export(user=user, run=run, name="coder-rl-step5")

    model.refresh_from_db()
    export_dir = tmp_path / str(run.pk) / "export-step5"
    assert (model.status, model.error) == (ModelStatus.READY, "")
    assert (model.from_run, model.from_step, Path(model.source)) == (run, 5, export_dir)
    assert (model.architecture, model.params) == ("LlamaForCausalLM", 130_496)
    assert json.loads((export_dir / "config.json").read_text())["dtype"] == "bfloat16"


@pytest.mark.django_db(transaction=True)
def test_a_checkpoint_in_the_shared_root_is_exported_there_by_a_node_that_never_ran_the_run(
    user, eager, settings, tmp_path, tiny_hf_dir
):
    settings.TRIAD_RUNS_DIR = str(tmp_path / "node-runs")  # this node's work dirs: none of this run's
    settings.TRIAD_CHECKPOINT_DIR = str(tmp_path / "shared")
    run = _run(user, source=str(tiny_hf_dir))
    written = _checkpoint(tiny_hf_dir, tmp_path / "elsewhere", zero_stage=2, step=5)
    root = tmp_path / "shared" / f"run-{run.pk}"
    root.parent.mkdir()
    (written / "checkpoints").rename(root)  # as the trainer writes under TRIAD_CHECKPOINT_DIR
    (written / "spec.json").rename(root / "spec.json")  # the copy the trainer leaves beside them

    model = model_export(user=user, run=run, name="coder-rl-step5")

    model.refresh_from_db()
    assert (model.status, model.error) == (ModelStatus.READY, "")
    assert (model.from_step, Path(model.source)) == (5, root / "export-step5")
    assert not (tmp_path / "node-runs").exists()
