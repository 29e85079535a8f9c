"""`manage.py export_run`: exports a run's checkpoint as a model, and with --wait prints the answer
(docs/models.md, "Export and lineage")."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from runs.models import RunStatus
from runs.registry.models import ModelStatus, RegisteredModel
from tests.factories import RegisteredModelFactory, RunFactory, UserFactory
from tests.workers.test_export import _checkpoint


def export(*args):
    out = StringIO()
    call_command("export_run", *[str(a) for a in args], stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_with_wait_it_prints_the_ready_model_and_its_lineage(eager, settings, tmp_path, tiny_hf_dir):
    settings.TRIAD_RUNS_DIR = str(tmp_path)
    root = UserFactory(username="root", is_superuser=True)
    base = RegisteredModelFactory(registered_by=root, source=str(tiny_hf_dir))
    run = RunFactory(created_by=root, model=base, status=RunStatus.CANCELLED)
    _checkpoint(tiny_hf_dir, tmp_path / str(run.pk), zero_stage=0, step=2)

    out = export(run.pk, "coder-step2", "--wait", "30")

    path = tmp_path / str(run.pk) / "export-step2"
    assert out.startswith(
        f"coder-step2: ready: exported from run #{run.pk} at step 2 to {path}; LlamaForCausalLM"
    )
    model = RegisteredModel.objects.get(name="coder-step2")
    assert (model.status, model.from_run, model.from_step) == (ModelStatus.READY, run, 2)


@pytest.mark.django_db(transaction=True)
def test_a_refused_export_is_an_error_naming_the_reason(eager, settings, tmp_path):
    settings.TRIAD_RUNS_DIR = str(tmp_path)
    root = UserFactory(username="root", is_superuser=True)
    run = RunFactory(created_by=root, model=RegisteredModelFactory(registered_by=root), status="succeeded")

    with pytest.raises(
        CommandError, match=r"refused: no .*spec.json on this node: the run never started here"
    ):
        export(run.pk, "m", "--wait", "5")


@pytest.mark.django_db
def test_an_active_run_a_missing_run_and_an_unknown_user_are_refused():
    root = UserFactory(username="root", is_superuser=True)
    run = RunFactory(
        created_by=root, model=RegisteredModelFactory(registered_by=root), status=RunStatus.RUNNING
    )

    with pytest.raises(CommandError, match=rf"not exported: run: run #{run.pk} is running"):
        export(run.pk, "m")
    with pytest.raises(CommandError, match="no run #999999"):
        export(999999, "m")
    with pytest.raises(CommandError, match="no such user"):
        export(run.pk, "m", "--user", "nobody")
    assert not RegisteredModel.objects.filter(from_run=run).exists()
