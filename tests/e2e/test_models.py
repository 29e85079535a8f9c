"""The model registry end to end: a model registered on a pool becomes ready when a real Celery worker of
that pool inspects it on its disk and the control queue records the answer (docs/models.md).

The `stack` fixture (tests/e2e/conftest.py) runs a worker on gpu.<pool> and on the stack's control queue.
"""

import pytest

from runs.registry.models import ModelStatus, RegisteredModel
from runs.registry.services import model_register
from tests.e2e.conftest import wait_until
from tests.factories import UserFactory
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
