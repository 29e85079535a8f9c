"""The model registry end to end: a model registered on a pool becomes ready when a real Celery worker of
that pool inspects it on its disk and the control queue records the answer; a run's checkpoint exported
by such a worker becomes a ready model naming the run (docs/models.md).

The `stack` fixture (tests/e2e/conftest.py) runs a worker on gpu.<pool> and on the stack's control queue.
"""

import pytest

from runs.models import RunStatus
from runs.registry.models import ModelStatus, RegisteredModel
from runs.registry.services import model_export, model_register
from tests.e2e.conftest import wait_until
from tests.factories import RegisteredModelFactory, RunFactory, UserFactory
from tests.workers.test_export import _checkpoint
from workers.model_info import inspect_model

pytestmark = pytest.mark.e2e


def test_a_worker_of_the_pool_makes_a_model_it_holds_ready_and_refuses_one_it_does_not(stack, tiny_hf_dir):
    # given a tiny Hugging Face directory on the worker's disk, and a hub id in no cache of it
    user = UserFactory(username="mo")

    # when both are registered on the stack's pool (each transaction commits: the questions go out)
    held = model_register(user=user, name="tiny-e2e", source=str(tiny_hf_dir), pool=stack.pool)
    absent = model_register(user=user, name="absent", source="acme/not-cached", pool=stack.pool)

    # then the worker's answers reach the database
    wait_until(
        lambda: not RegisteredModel.objects.filter(status=ModelStatus.PENDING).exists(),
        45,
        f"the node's answers\n{stack.log_tail()}",
    )
    held.refresh_from_db()
    assert held.status == ModelStatus.READY, held.error
    assert held.params == inspect_model(str(tiny_hf_dir)).params
    assert held.architecture == "LlamaForCausalLM"
    assert held.inspected_by.startswith(f"{stack.pool}-0@")
    absent.refresh_from_db()
    assert absent.status == ModelStatus.REFUSED
    assert "acme/not-cached is neither a directory on this node nor in its" in absent.error
    assert "models--acme--not-cached" in absent.error


def test_a_worker_of_the_runs_pool_exports_its_checkpoint_as_a_ready_model_with_its_lineage(
    stack, tiny_hf_dir
):
    # given a finished run of a registered model whose checkpoint a trainer's engine saved on the pool's
    # run storage (the worker's TRIAD_RUNS_DIR: the stack's var dir)
    user = UserFactory(username="mo")
    base = RegisteredModelFactory(
        name="tiny-base", registered_by=user, source=str(tiny_hf_dir), pool=stack.pool
    )
    run = RunFactory(created_by=user, model=base, pool=stack.pool, status=RunStatus.SUCCEEDED)
    _checkpoint(tiny_hf_dir, stack.var_dir / "runs" / str(run.pk), zero_stage=2, step=6)

    # when a member exports it (the transaction commits: the job goes to the pool)
    model = model_export(user=user, run=run, name="tiny-step6")

    # then the worker writes it, the control queue records it, the worker inspects it: ready
    wait_until(
        lambda: RegisteredModel.objects.get(pk=model.pk).status in (ModelStatus.READY, ModelStatus.REFUSED),
        90,
        f"the export and its inspection\n{stack.log_tail()}",
    )
    model.refresh_from_db()
    assert model.status == ModelStatus.READY, model.error
    export_dir = stack.var_dir / "runs" / str(run.pk) / "export-step6"
    assert (model.from_run, model.from_step, model.source) == (run, 6, str(export_dir))
    assert (model.architecture, model.params) == ("LlamaForCausalLM", inspect_model(str(tiny_hf_dir)).params)
    assert model.inspected_by.startswith(f"{stack.pool}-0@")
    assert list(run.exported_models.all()) == [model]
