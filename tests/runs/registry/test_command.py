"""`manage.py register_model`: registers, and with --wait prints the node's answer (docs/models.md)."""

import pytest
from django.core.management import CommandError, call_command

from runs.registry.models import ModelStatus, RegisteredModel
from workers.model_info import inspect_model


def register(*args):
    from io import StringIO

    out = StringIO()
    call_command("register_model", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_with_wait_it_prints_what_the_node_read(eager, tiny_hf_dir):
    from tests.factories import UserFactory

    UserFactory(username="root", is_superuser=True)

    out = register("tiny", str(tiny_hf_dir), "--chat", "--dtype", "fp32", "--pool", "cpu", "--wait", "10")

    params = inspect_model(str(tiny_hf_dir)).params
    assert out.startswith(f"tiny: ready: LlamaForCausalLM, 130 K parameters ({params}), vocabulary")
    model = RegisteredModel.objects.get(name="tiny")
    assert (model.status, model.chat, model.dtype) == (ModelStatus.READY, True, "fp32")
    assert model.team.name == "default"


@pytest.mark.django_db(transaction=True)
def test_a_refusal_is_an_error_with_the_nodes_reason(eager, tmp_path):
    from tests.factories import UserFactory

    UserFactory(username="root", is_superuser=True)

    refusal = rf"gone: refused: {tmp_path / 'nope'} is not a directory on this node"
    with pytest.raises(CommandError, match=refusal):
        register("gone", str(tmp_path / "nope"), "--wait", "5")


@pytest.mark.django_db
def test_clear_errors_for_an_unknown_team_user_or_a_taken_name():
    from tests.factories import RegisteredModelFactory, UserFactory

    UserFactory(username="root", is_superuser=True)
    RegisteredModelFactory(name="taken")

    with pytest.raises(CommandError, match="no team named 'nobody'"):
        register("m", "/m", "--team", "nobody")
    with pytest.raises(CommandError, match="no such user"):
        register("m", "/m", "--user", "ghost")
    with pytest.raises(CommandError, match="not registered: name: a model named 'taken' is registered"):
        register("taken", "/m")


@pytest.mark.django_db
def test_without_wait_it_says_the_model_is_pending_and_who_answers():
    from tests.factories import UserFactory

    UserFactory(username="root", is_superuser=True)

    out = register("later", "acme/coder", "--pool", "h100")

    assert out.startswith("registered later: pending; a worker on gpu.h100 inspects it")
