"""`POST /api/v1/runs/external` (docs/external-runs.md): the run and its token once, then the trainer's
events through the ingest door with that token; bad input is a 4xx naming the field, nothing created."""

import json

import pytest
from django.test import Client

from controlplane.accounts.models import Role
from runs.models import Run, RunStatus
from tests.controlplane.api.conftest import api_client_for
from tests.factories import ProblemFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    user = UserFactory(username="trl-user", membership=None)
    user.memberships.create(team=TeamFactory(name="ml"), role=Role.MEMBER)
    return user


@pytest.fixture
def version(member):
    return ProblemFactory(version__dataset__team=member.memberships.get().team).version


def test_it_answers_the_run_and_its_token_and_the_token_opens_the_ingest_door(member, version):
    api = api_client_for(member)

    response = api.post(
        "/runs/external",
        {
            "name": "trl-grpo",
            "dataset_version": version.pk,
            "pool": "cpu",
            "gpus": 2,
            "heartbeat_timeout_s": 90,
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    run = body["run"]
    assert (run["status"], run["external"], run["pool"], run["heartbeat_timeout_s"]) == (
        "queued",
        True,
        "cpu",
        90,
    )
    assert run["team"]["name"] == "ml" and run["user"] == "trl-user" and run["config"]["gpus_per_node"] == 2
    assert run["url"].endswith(f"/runs/{run['id']}/")
    assert body["token"].startswith("triad_run_")
    events = Client().post(
        f"/api/v1/runs/{run['id']}/events",
        data=json.dumps({"source": "external", "events": [{"seq": 0, "type": "heartbeat"}]}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {body['token']}"},
    )
    assert events.status_code == 200 and events.json()["desired_state"] == "running"
    assert Run.objects.get(pk=run["id"]).status == RunStatus.RUNNING


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"gpus": 0}, 400, "gpus"),
        ({"gpus": "many"}, 400, "gpus"),
        ({"config": {"lr": -1}}, 400, "config.lr"),
        ({"config": {"warp": 9}}, 400, "config.warp"),
        ({"pool": "nowhere"}, 400, "pool"),
        ({"heartbeat_timeout_s": 0}, 400, "heartbeat_timeout_s"),
        ({"colour": "red"}, 400, "colour"),
        ({"team": 99999}, 404, "team"),
        ({"dataset_version": 99999}, 404, None),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_created(member, version, change, status, field):
    body = {"name": "x", "dataset_version": version.pk, "pool": "cpu", "gpus": 1, **change}

    response = api_client_for(member).post("/runs/external", body)

    assert response.status_code == status, response.content
    assert response.json()["field"] == field
    assert not Run.objects.exists()


def test_another_teams_dataset_version_does_not_exist_for_the_caller(member):
    theirs = ProblemFactory(version__dataset__team=TeamFactory(name="infra")).version

    response = api_client_for(member).post("/runs/external", {"dataset_version": theirs.pk, "gpus": 1})

    assert response.status_code == 404
    assert not Run.objects.exists()
