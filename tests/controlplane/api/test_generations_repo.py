"""A repository run's episodes through the API: `GET /runs/{id}/generations?outcome=` lists one
outcome's episodes (resolved ones too) with their outcome and stored "repo" object; a bad outcome is
named. Episodes enter through the real ingest API."""

import json

import pytest
from django.test import Client

from tests.controlplane.api.conftest import api_client_for
from tests.factories import TEST_TOKEN, RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def episode(seq, outcome, step=0):
    resolved = outcome == "resolved"
    return {
        "seq": seq,
        "type": "generation",
        "step": step,
        "problem_id": f"tinycsv/{seq}",
        "completion": "--- a/x.py\n+++ b/x.py\n" if resolved else "",
        "reward": 1.0 if resolved else 0.0,
        "passed": resolved,
        "error_class": "passed" if resolved else "wrong_answer",
        "repo": {
            "outcome": outcome,
            "turns": 2,
            "invalid_actions": 0,
            "test_files_edited": False,
            "trajectory": [
                {"action": '{"tool": "submit", "args": {}}', "observation": "submitted", "valid": True}
            ],
            "diff": "--- a/x.py\n+++ b/x.py\n",
            "fail_to_pass": {"tests.test_x.T.test_a": "passed" if resolved else "failed"},
            "pass_to_pass": {},
            "tests_before": {"tests.test_x.T.test_a": "failed"},
            "duration_ms": 900,
        },
    }


@pytest.fixture
def member(db):
    return UserFactory(username="rae", password=None, membership__team=TeamFactory(name="delta"))


@pytest.fixture
def run(member):
    run = RunFactory(created_by=member)
    events = [episode(1, "resolved"), episode(2, "tests_fail"), episode(3, "no_patch", step=1)]
    response = Client().post(
        f"/api/v1/runs/{run.pk}/events",
        data=json.dumps({"events": events}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
    )
    assert response.status_code == 200
    return run


def test_the_outcome_filter_lists_that_outcomes_episodes_resolved_ones_too(member, run):
    api = api_client_for(member)
    resolved = api.get(f"/runs/{run.pk}/generations", {"outcome": "resolved"}).json()
    assert [g["problem"]["task_id"] for g in resolved["items"]] == ["tinycsv/1"]
    item = resolved["items"][0]
    assert item["outcome"] == "resolved" and item["passed"] is True
    assert item["repo"]["fail_to_pass"] == {"tests.test_x.T.test_a": "passed"}
    assert item["repo"]["trajectory"][0]["observation"] == "submitted"
    # without the filter: the failing ones, as the review page lists them
    failing = api.get(f"/runs/{run.pk}/generations").json()
    assert [(g["problem"]["task_id"], g["outcome"]) for g in failing["items"]] == [
        ("tinycsv/2", "tests_fail"),
        ("tinycsv/3", "no_patch"),
    ]


def test_a_bad_outcome_is_named(member, run):
    response = api_client_for(member).get(f"/runs/{run.pk}/generations", {"outcome": "solved"})
    assert response.status_code == 400 and response.json()["field"] == "outcome"
    assert response.json()["error"].startswith("outcome: one of resolved, tests_fail")
