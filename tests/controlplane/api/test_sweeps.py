"""Sweeps through the API: created from JSON or a YAML file's text with the page's checks, read, listed,
stopped; errors name the field."""

import pytest

from runs.models import Run, RunStatus
from runs.sweeps.models import Sweep
from tests.controlplane.api.conftest import api_client_for
from tests.factories import ProblemFactory, UserFactory

pytestmark = pytest.mark.django_db

SWEEP_YAML = """\
name: yaml-grid
dataset_version: {version}
config:
  steps: 3
axes:
  lr: [1.0e-5, 3.0e-5]
  group_size: [4, 8]
halving:
  step: 2
  fraction: 0.5
"""


@pytest.fixture
def api():
    return api_client_for(UserFactory(username="max", password=None))


@pytest.fixture
def version(db):
    return ProblemFactory(version__dataset__team=None).version


def test_a_sweep_from_a_yaml_file_is_launched_and_read_back(api, version):
    created = api.post("/sweeps", {"yaml": SWEEP_YAML.format(version=version.pk)})

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "yaml-grid" and body["state"] == "Active" and body["method"] == "grid"
    assert [(r["name"], r["params"], r["status"]) for r in body["runs"]] == [
        ("yaml-grid-1", {"lr": 1e-5, "group_size": 4}, "queued"),
        ("yaml-grid-2", {"lr": 1e-5, "group_size": 8}, "queued"),
        ("yaml-grid-3", {"lr": 3e-5, "group_size": 4}, "queued"),
        ("yaml-grid-4", {"lr": 3e-5, "group_size": 8}, "queued"),
    ]
    assert body["halving"] == {
        "step": 2,
        "fraction": 0.5,
        "metric": "pass_rate",
        "goal": "max",
        "every": None,
    }
    assert api.get(f"/sweeps/{body['id']}").json()["runs"] == body["runs"]
    assert [s["id"] for s in api.get("/sweeps").json()["items"]] == [body["id"]]


def test_a_json_sweep_random_by_seed(api, version):
    created = api.post(
        "/sweeps",
        {
            "name": "draws",
            "dataset_version": version.pk,
            "method": "random",
            "count": 3,
            "seed": 11,
            "axes": {"lr": {"low": 1e-5, "high": 1e-3, "log": True}},
        },
    )

    assert created.status_code == 201, created.content
    assert len(created.json()["runs"]) == 3 and created.json()["seed"] == 11


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"name": "s", "dataset_version": "@v", "axes": {"lr": ["fast"]}}, "axes.lr", "value 'fast'"),
        (
            {"name": "s", "dataset_version": "@v", "axes": {"lr": [1e-5]}, "count": 2},
            "count",
            "method random",
        ),
        (
            {"name": "s", "dataset_version": 999999, "axes": {"lr": [1e-5]}},
            "dataset_version",
            "no dataset version",
        ),
        ({"yaml": "name: [unclosed"}, "yaml", "invalid YAML"),
        ({"yaml": "name: s", "name": "t"}, "name", "not both"),
    ],
)
def test_a_refused_sweep_names_the_field_and_launches_nothing(api, version, body, field, words):
    body = {k: (version.pk if v == "@v" else v) for k, v in body.items()}

    refused = api.post("/sweeps", body)

    assert refused.status_code == 400, refused.content
    assert refused.json()["field"] == field and words in refused.json()["error"]
    assert not Sweep.objects.exists() and not Run.objects.exists()


def test_stop_cancels_the_sweeps_runs(api, version):
    sweep = api.post("/sweeps", {"yaml": SWEEP_YAML.format(version=version.pk)}).json()

    stopped = api.post(f"/sweeps/{sweep['id']}/stop")

    assert stopped.status_code == 200 and stopped.json()["state"] == "Stopped"
    assert {r["status"] for r in stopped.json()["runs"]} == {RunStatus.CANCELLED}
