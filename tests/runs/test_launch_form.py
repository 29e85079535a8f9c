"""The launch form's fields: derived from workers.spec's basic settings; one left out of a post takes its
default, as a key left out of the YAML does (docs/runs.md)."""

import pytest
from django.urls import reverse

from runs.models import Run
from tests.factories import ProblemFactory
from tests.runs.launch_form import LAUNCH_FORM

pytestmark = pytest.mark.django_db

# What a page from before the engine settings became basic posted: none of precision, zero_stage, beta,
# clip_eps, gradient_checkpointing, lora_rank.
OLDER_POST = LAUNCH_FORM


def test_a_post_without_the_engine_settings_launches_with_their_defaults(logged_in):
    version = ProblemFactory().version

    response = logged_in.post(reverse("runs:launch"), {**OLDER_POST, "dataset_version": version.pk})

    assert response.status_code == 302
    config = Run.objects.get().config
    assert (config["precision"], config["zero_stage"], config["beta"], config["clip_eps"]) == (
        "fp32",
        0,
        0.0,
        0.2,
    )
    assert (config["gradient_checkpointing"], config["lora_rank"]) == (False, 0)


def test_an_empty_engine_field_takes_its_default_and_a_given_one_is_kept(logged_in):
    version = ProblemFactory().version

    response = logged_in.post(
        reverse("runs:launch"),
        {**OLDER_POST, "dataset_version": version.pk, "precision": "", "zero_stage": "", "beta": "0.05"},
    )

    assert response.status_code == 302
    config = Run.objects.get().config
    assert (config["precision"], config["zero_stage"], config["beta"]) == ("fp32", 0, 0.05)


def test_a_wrong_engine_value_is_refused_on_its_field(logged_in):
    version = ProblemFactory().version

    response = logged_in.post(
        reverse("runs:launch"), {**OLDER_POST, "dataset_version": version.pk, "precision": "int3"}
    )

    assert response.status_code == 200
    assert "Select a valid choice. int3 is not one of the available choices." in response.content.decode()
    assert Run.objects.count() == 0
