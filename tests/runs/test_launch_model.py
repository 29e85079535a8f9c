"""A run's model: the launch form's choice, the checks at launch, the spec's "model" section and the run
page (docs/models.md)."""

import pytest
from django.test import Client
from django.urls import reverse

from runs.launch import RunLaunchError, run_launch
from runs.models import Run
from runs.spec import run_spec
from tests.factories import ProblemFactory, RegisteredModelFactory, RunFactory, TeamFactory, UserFactory
from tests.runs.launch_form import LAUNCH_FORM
from workers.spec import RunConfig

pytestmark = pytest.mark.django_db


def test_a_run_without_a_model_trains_the_built_in_tiny_one():
    run = RunFactory(dataset_version=ProblemFactory().version)

    assert run_spec(run=run)["model"] == {
        "kind": "tiny",
        "path": None,
        "d_model": 64,
        "n_layers": 2,
        "n_heads": 4,
        "max_len": 512,
    }


def test_a_run_of_a_registered_model_gets_its_hf_section(user):
    model = RegisteredModelFactory(
        registered_by=user,
        source="acme/coder-1b",
        tokenizer="/tok",
        chat=True,
        dtype="fp16",
        stop=["<|end|>"],
    )
    run = RunFactory(created_by=user, dataset_version=ProblemFactory().version, model=model)

    assert run_spec(run=run)["model"] == {
        "kind": "hf",
        "path": "acme/coder-1b",
        "tokenizer": "/tok",
        "chat": True,
        "dtype": "fp16",
        "stop": ["<|end|>"],
    }


def test_a_model_without_its_own_tokenizer_says_null():
    run = RunFactory(dataset_version=ProblemFactory().version, model=RegisteredModelFactory(tokenizer=""))

    assert run_spec(run=run)["model"]["tokenizer"] is None


def test_the_launch_form_stores_the_chosen_model_and_the_run_goes_to_its_pool(logged_in, user):
    model = RegisteredModelFactory(registered_by=user, name="coder", pool="a100")
    version = ProblemFactory().version

    response = logged_in.post(
        reverse("runs:launch"), {**LAUNCH_FORM, "dataset_version": version.pk, "model": model.pk}
    )

    assert response.status_code == 302
    run = Run.objects.get()
    assert (run.model, run.pool) == (model, "a100")
    page = logged_in.get(reverse("runs:detail", kwargs={"run_id": run.pk})).content.decode()
    model_url = reverse("registry:detail", args=[model.pk])  # the model's page, with its lineage
    assert f'data-testid="run-model"><a href="{model_url}">coder</a> (LlamaForCausalLM, 130 K)' in page


def test_the_launch_form_offers_the_tiny_model_and_the_teams_ready_models_only(logged_in, user):
    RegisteredModelFactory(registered_by=user, name="ready-one")
    RegisteredModelFactory(registered_by=user, name="pending-one", status="pending")
    RegisteredModelFactory(name="other-teams", team=TeamFactory(name="beta"))
    ProblemFactory()  # something to train on, or the page shows no form

    page = logged_in.get(reverse("runs:launch")).content.decode()

    assert "Built-in tiny model" in page and "ready-one" in page
    assert "pending-one" not in page and "other-teams" not in page


def test_the_default_stays_the_tiny_model(logged_in):
    version = ProblemFactory().version

    logged_in.post(reverse("runs:launch"), {**LAUNCH_FORM, "dataset_version": version.pk})

    run = Run.objects.get()
    assert run.model is None
    page = logged_in.get(reverse("runs:detail", kwargs={"run_id": run.pk})).content.decode()
    assert 'data-testid="run-model">built-in tiny' in page


@pytest.mark.parametrize(
    ("model_fields", "pool", "message"),
    [
        ({"status": "pending"}, "", "model m is pending: no node of its pool has inspected it yet"),
        ({"status": "refused", "error": "no config.json"}, "", "model m is refused: no config.json"),
        ({"team": "beta"}, "", "model m is not a model of team default"),
        ({"pool": "a100"}, "h100", "model m is registered on pool a100, not h100"),
    ],
    ids=["pending", "refused", "other-team", "other-pool"],
)
def test_a_model_that_cannot_train_here_is_refused_naming_the_field(user, model_fields, pool, message):
    if model_fields.get("team") == "beta":
        model_fields = {**model_fields, "team": TeamFactory(name="beta")}
    model = RegisteredModelFactory(name="m", registered_by=user, **model_fields)

    with pytest.raises(RunLaunchError, match=message) as refused:
        run_launch(
            user=user,
            dataset_version=ProblemFactory().version,
            name="r",
            config=RunConfig(),
            pool=pool,
            model=model,
        )

    assert refused.value.field == "model"
    assert not Run.objects.exists()


def test_a_posted_model_of_another_team_is_refused_by_the_form():
    alpha = TeamFactory(name="alpha")
    user = UserFactory(membership__team=alpha)
    other = RegisteredModelFactory(name="beta-model", team=TeamFactory(name="beta"))
    client = Client()
    client.force_login(user)

    response = client.post(
        reverse("runs:launch"),
        {
            **LAUNCH_FORM,
            "dataset_version": ProblemFactory(version__dataset__team=None).version.pk,
            "model": other.pk,
        },
    )

    assert response.status_code == 200
    assert "Model: Select a valid choice" in response.content.decode()
    assert not Run.objects.exists()


def test_a_clone_keeps_the_model(logged_in, user):
    model = RegisteredModelFactory(registered_by=user, name="coder")
    run = RunFactory(created_by=user, dataset_version=ProblemFactory().version, model=model)

    page = logged_in.get(reverse("runs:launch"), {"clone": run.pk}).content.decode()

    assert f'<option value="{model.pk}" selected>coder</option>' in page
