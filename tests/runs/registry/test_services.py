"""Registering a model, the node's answer, and a broker that is down (docs/models.md)."""

import pytest
from django.core.exceptions import PermissionDenied

from controlplane.accounts.models import Role
from controlplane.celery import app
from runs.registry.inspection import ModelAnswer, model_record
from runs.registry.models import ModelStatus, RegisteredModel
from runs.registry.services import ModelRegisterError, model_inspect_again, model_register
from runs.registry.tasks import model_inspect_task, model_record_task
from tests.factories import RegisteredModelFactory, TeamFactory, UserFactory
from workers.model_info import inspect_model


@pytest.mark.django_db(transaction=True)
def test_registering_records_a_pending_model_and_asks_a_node_of_its_pool(user, queued):
    model = model_register(user=user, name="coder", source="/models/coder", pool="a100", chat=True)

    row = RegisteredModel.objects.get(pk=model.pk)
    assert (row.status, row.team.name, row.registered_by) == (ModelStatus.PENDING, "default", user)
    assert row.chat
    [message] = queued("gpu.a100")
    assert message["headers"]["task"] == "models.inspect"
    assert message["headers"]["argsrepr"] == f"[{model.pk}, '/models/coder', None]"


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_the_model_says_so_and_can_be_inspected_again(user, broker, queued):
    broker.stop()

    model = model_register(user=user, name="coder", source="/models/coder", pool="a100")

    row = RegisteredModel.objects.get(pk=model.pk)
    assert row.status == ModelStatus.REFUSED
    assert row.error.startswith(f"not inspected: the task broker at 127.0.0.1:{broker.port} is unreachable")
    broker.start()
    assert model_inspect_again(user=user, model=row)
    assert RegisteredModel.objects.get(pk=model.pk).status == ModelStatus.PENDING
    assert [m["headers"]["task"] for m in queued("gpu.a100")] == ["models.inspect"]


@pytest.mark.django_db
def test_the_inspection_on_the_node_makes_the_model_ready_with_what_it_read(user, eager, tiny_hf_dir):
    model = RegisteredModelFactory(registered_by=user, status=ModelStatus.PENDING, source=str(tiny_hf_dir))

    model_inspect_task.apply_async(args=[model.pk, str(tiny_hf_dir), None], queue="gpu.cpu")

    model.refresh_from_db()
    info = inspect_model(str(tiny_hf_dir))
    assert model.status == ModelStatus.READY
    assert (model.architecture, model.params, model.vocab_size, model.context_length) == (
        "LlamaForCausalLM",
        info.params,
        info.vocab_size,
        1024,
    )
    assert model.resolved_path == info.path
    assert model.inspected_at is not None
    assert model.error == ""


@pytest.mark.django_db
def test_a_model_the_node_cannot_read_is_refused_with_its_reason(user, eager, tmp_path):
    model = RegisteredModelFactory(registered_by=user, status=ModelStatus.PENDING)

    model_inspect_task.apply_async(args=[model.pk, str(tmp_path), None], queue="gpu.cpu")

    model.refresh_from_db()
    assert model.status == ModelStatus.REFUSED
    assert model.error == f"no config.json in {tmp_path}: not a Hugging Face model directory"
    assert model.params is None


@pytest.mark.django_db
def test_a_repeated_answer_changes_nothing(user):
    model = RegisteredModelFactory(registered_by=user, status=ModelStatus.PENDING)
    ready = ModelAnswer(info={"architecture": "A", "params": 5, "path": "/x"}, node="gpu@a")

    assert model_record(model_id=model.pk, answer=ready)
    assert not model_record(model_id=model.pk, answer=ModelAnswer(error="late refusal", node="gpu@b"))
    model_record_task(model.pk, ready.as_dict())

    model.refresh_from_db()
    assert (model.status, model.params, model.inspected_by) == (ModelStatus.READY, 5, "gpu@a")


def test_the_answer_goes_to_the_control_queue_and_the_question_to_the_pool():
    from django.conf import settings

    assert app.amqp.router.route({}, "models.record")["queue"].name == settings.TRIAD_CONTROL_QUEUE
    assert app.amqp.router.route({"queue": "gpu.a100"}, "models.inspect")["queue"].name == "gpu.a100"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"name": " "}, "name", "a model needs a name"),
        ({"source": ""}, "source", "a directory on the pool's nodes"),
        ({"pool": "gpu pool"}, "pool", "'gpu pool' is not a pool name"),
        ({"dtype": "int4"}, "dtype", "one of bf16, fp16, fp32, not 'int4'"),
        ({"name": "taken"}, "name", "a model named 'taken' is registered already"),
    ],
)
def test_a_registration_is_refused_on_the_field_it_is_about(user, fields, field, message):
    RegisteredModelFactory(name="taken")

    with pytest.raises(ModelRegisterError, match=message) as refused:
        model_register(user=user, **{"name": "m", "source": "/m", **fields})

    assert refused.value.field == field
    assert RegisteredModel.objects.count() == 1


@pytest.mark.django_db
def test_a_viewer_registers_nothing_in_their_team_nor_anyone_in_a_team_they_are_not_in():
    team = TeamFactory(name="alpha")
    viewer = UserFactory(membership__team=team, membership__role=Role.VIEWER)
    outsider = UserFactory(membership__team=TeamFactory(name="beta"))

    with pytest.raises(PermissionDenied):
        model_register(user=viewer, name="m", source="/m", team=team)
    with pytest.raises(PermissionDenied):
        model_register(user=outsider, name="m", source="/m", team=team)
    with pytest.raises(PermissionDenied):
        model_register(user=viewer, name="m", source="/m")
    assert not RegisteredModel.objects.exists()
