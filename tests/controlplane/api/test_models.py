"""The model registry through the API (controlplane/api/models.py): registering is the registry
page's form and service (its inspection asked of a node of the pool on commit); another team's model
does not exist. Who may do what per role: test_roles.py."""

import pytest
import redis

from controlplane.accounts.models import Role
from runs.registry.models import ModelStatus, RegisteredModel
from tests.controlplane.api.conftest import api_client_for
from tests.datasets_app.test_broker_down import broker  # noqa: F401 (a private broker the test reads)
from tests.factories import RegisteredModelFactory, TeamFactory, UserFactory


@pytest.fixture
def member(db):
    return UserFactory(username="mia", password=None, membership__team=TeamFactory(name="gamma"))


@pytest.mark.django_db(transaction=True)
def test_registering_records_a_pending_model_and_asks_a_node_of_its_pool(member, broker):  # noqa: F811
    body = {
        "name": "coder-1b",
        "source": "/models/coder-1b",
        "chat": True,
        "dtype": "fp16",
        "stop": ["\nclass ", "\ndef "],
        "pool": "a100",
    }

    response = api_client_for(member).post("/models", body)

    assert response.status_code == 201, response.content
    model = RegisteredModel.objects.get()
    answer = response.json()
    assert answer["id"] == model.pk and answer["status"] == ModelStatus.PENDING
    assert answer["team"]["name"] == "gamma" and answer["registered_by"] == "mia"
    assert (model.chat, model.dtype, model.pool) == (True, "fp16", "a100")
    assert model.stop == ["\nclass ", "\ndef "]  # as sent: a list keeps the newline a textarea would split
    assert answer["url"].endswith(f"/models/{model.pk}/")
    assert redis.Redis.from_url(broker.url(1)).llen("gpu.a100") == 1  # the inspection, as from the page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"source": "/m"}, "name", "name: required"),
        ({"name": "m", "source": "/m", "colour": "red"}, "colour", "colour: unknown field"),
        ({"name": "m", "source": "/m", "chat": "yes"}, "chat", "chat: Input should be a valid boolean"),
        ({"name": 5, "source": "/m"}, "name", "name: Input should be a valid string"),
        ({"name": "m", "source": "/m", "stop": "\n"}, "stop", "stop: Input should be a valid list"),
        (
            {"name": "m", "source": "/m", "dtype": "int3"},
            "dtype",
            "dtype: Select a valid choice. int3 is not",
        ),
        ({"name": "m" * 201, "source": "/m"}, "name", "name: Ensure this value has at most 200 characters"),
        ({"name": "m", "source": "   "}, "source", "source: This field is required."),
        ({"name": "m", "source": "/m", "pool": "a b"}, "pool", "pool: 'a b' is not a pool name"),
        ({"name": "m", "source": "/m", "team": "1"}, "team", "team: Input should be a valid integer"),
    ],
)
def test_bad_input_is_named_and_registers_nothing(member, body, field, words):
    response = api_client_for(member).post("/models", body)

    assert response.status_code == 400, response.content
    assert response.json()["field"] == field and response.json()["error"].startswith(words)
    assert not RegisteredModel.objects.exists()


@pytest.mark.django_db
def test_a_taken_name_is_refused_naming_it(member):
    RegisteredModelFactory(name="coder", registered_by=member)

    response = api_client_for(member).post("/models", {"name": "coder", "source": "/m"})

    assert response.status_code == 400 and response.json() == {
        "error": "name: a model named 'coder' is registered already",
        "field": "name",
    }
    assert RegisteredModel.objects.count() == 1


@pytest.mark.django_db
def test_another_teams_team_does_not_exist_and_its_viewer_may_not_register_into_it(member):
    other = TeamFactory(name="delta")
    viewer = UserFactory(username="val", password=None, membership__team=other, membership__role=Role.VIEWER)

    into_other = api_client_for(member).post("/models", {"name": "m", "source": "/m", "team": other.pk})
    as_viewer = api_client_for(viewer).post("/models", {"name": "m", "source": "/m", "team": other.pk})

    assert into_other.status_code == 404 and into_other.json()["field"] == "team"
    assert as_viewer.status_code == 403 and "member role" in as_viewer.json()["error"]
    assert not RegisteredModel.objects.exists()


@pytest.mark.django_db
def test_the_list_is_the_teams_models_by_name_and_another_teams_model_does_not_exist(member):
    RegisteredModelFactory(name="zeta", registered_by=member)
    RegisteredModelFactory(
        name="alpha", registered_by=member, status=ModelStatus.REFUSED, error="no config.json"
    )
    outsider = UserFactory(username="otto", password=None, membership__team=TeamFactory(name="delta"))
    theirs = RegisteredModelFactory(name="secret", registered_by=outsider)
    api = api_client_for(member)

    listed = api.get("/models").json()
    hidden = api.get(f"/models/{theirs.pk}")

    assert [m["name"] for m in listed["items"]] == ["alpha", "zeta"] and listed["count"] == 2
    assert listed["items"][0]["status"] == "refused" and listed["items"][0]["error"] == "no config.json"
    assert (
        listed["items"][1]["architecture"] == "LlamaForCausalLM" and listed["items"][1]["params"] == 130_496
    )
    assert hidden.status_code == 404 and set(hidden.json()) == {"error", "field"}


@pytest.mark.django_db
def test_a_model_answers_what_its_node_read(member):
    model = RegisteredModelFactory(name="coder", registered_by=member, context_length=2048)

    body = api_client_for(member).get(f"/models/{model.pk}").json()

    assert body["name"] == "coder" and body["status"] == "ready" and body["context_length"] == 2048
    assert body["pool"] == "cpu" and body["from_run"] is None
