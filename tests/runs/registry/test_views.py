"""The Models page: the team's models with what their node read, polling while one is pending, and the
register form (docs/models.md). Who may see and post what: tests/controlplane/accounts/test_permissions."""

import pytest
from django.test import Client
from django.urls import reverse

from controlplane.accounts.models import Role
from runs.registry.models import ModelStatus, RegisteredModel
from tests.factories import RegisteredModelFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = reverse("registry:list")


def test_with_no_model_the_page_says_how_to_register_one(logged_in):
    page = logged_in.get(URL).content.decode()

    assert 'data-testid="models-empty"' in page
    assert "python manage.py register_model NAME SOURCE" in page
    assert 'name="source"' in page  # and the form


def test_a_ready_model_shows_what_its_node_read_in_words_people_use(logged_in, user):
    RegisteredModelFactory(name="qwen-coder", registered_by=user, params=1_234_567_890, vocab_size=151_936)

    page = logged_in.get(URL).content.decode()

    assert 'data-model="qwen-coder"' in page
    assert "1.2 B" in page
    assert "151936" in page and "LlamaForCausalLM" in page and ">Ready<" in page
    assert "hx-trigger" not in page.split('id="models"')[1].split(">")[0]  # nothing to wait for


def test_a_pending_model_polls_until_its_node_answers(logged_in, user):
    RegisteredModelFactory(registered_by=user, status=ModelStatus.PENDING, params=None)

    page = logged_in.get(URL).content.decode()
    partial = logged_in.get(URL, headers={"HX-Request": "true", "HX-Target": "models"}).content.decode()

    assert 'hx-trigger="every 2s"' in page
    assert partial.lstrip().startswith('<section class="card" id="models"')
    assert "<html" not in partial
    assert "waiting for a node of pool cpu" in partial


def test_a_refused_model_says_why_and_offers_to_inspect_it_again(logged_in, user):
    model = RegisteredModelFactory(
        registered_by=user, status=ModelStatus.REFUSED, error="no config.json in /m", params=None
    )

    page = logged_in.get(URL).content.decode()

    assert "no config.json in /m" in page
    assert reverse("registry:inspect", kwargs={"model_id": model.pk}) in page


def test_another_teams_model_is_not_listed():
    alpha, beta = TeamFactory(name="alpha"), TeamFactory(name="beta")
    reader = UserFactory(membership__team=alpha, membership__role=Role.VIEWER)
    RegisteredModelFactory(name="alpha-model", team=alpha)
    RegisteredModelFactory(name="beta-secret", team=beta)
    client = Client()
    client.force_login(reader)
    page = client.get(URL).content.decode()

    assert "alpha-model" in page and "beta-secret" not in page
    assert "needs the member role" in page  # a viewer reads, and is told why there is no form


def test_registering_from_the_form_records_a_pending_model_in_the_team(logged_in, user):
    response = logged_in.post(
        URL, {"name": "coder", "source": "/m/coder", "dtype": "bf16", "stop": "<|end|>\n\n", "pool": "a100"}
    )

    assert response.status_code == 302
    model = RegisteredModel.objects.get(name="coder")
    assert (model.status, model.pool, model.stop, model.registered_by) == (
        ModelStatus.PENDING,
        "a100",
        ["<|end|>"],
        user,
    )


def test_a_taken_name_is_refused_on_its_field(logged_in):
    RegisteredModelFactory(name="coder")

    response = logged_in.post(URL, {"name": "coder", "source": "/m", "dtype": "bf16"})

    assert response.status_code == 400
    assert "Name: a model named &#x27;coder&#x27; is registered already" in response.content.decode()
