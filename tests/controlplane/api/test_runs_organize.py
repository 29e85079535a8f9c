"""Organizing runs through the API: PATCH /runs/{id} (all or nothing), DELETE /runs/{id} (admins), and
the runs list's organizing filters (docs/api.md)."""

import pytest

from controlplane.accounts.models import AuditAction, AuditEntry
from runs.models import Run, RunStatus
from tests.controlplane.api.conftest import api_client_for
from tests.factories import RunFactory

pytestmark = pytest.mark.django_db


def test_patch_renames_tags_annotates_and_archives_in_one_call(world):
    api = api_client_for(world.users["member"])

    response = api.patch(
        f"/runs/{world.run.pk}",
        {"name": "renamed", "tags": ["KL", "baseline"], "note": "*why*", "archived": True},
    )

    run = response.json()
    assert response.status_code == 200
    assert (run["name"], run["tags"], run["note"], run["archived"]) == (
        "renamed",
        ["baseline", "kl"],
        "*why*",
        True,
    )
    assert run["progress"]["total"] == 2 and run["archived_at"]
    assert AuditEntry.objects.filter(action=AuditAction.RUN_RENAME).exists()


def test_a_refused_field_changes_nothing_and_is_named(world):
    api = api_client_for(world.users["member"])

    response = api.patch(f"/runs/{world.run.pk}", {"name": "changed", "tags": ["ok", "not ok!"]})

    assert response.status_code == 400
    assert response.json()["field"] == "tags"
    world.run.refresh_from_db()
    assert world.run.name == "alpha-secret-run" and not world.run.tags.exists()


def test_an_unknown_field_is_refused(world):
    response = api_client_for(world.users["member"]).patch(f"/runs/{world.run.pk}", {"colour": "red"})

    assert response.status_code == 400 and response.json()["field"] == "colour"


def test_the_list_filters_by_tag_user_and_archived(world):
    api = api_client_for(world.users["admin"])
    other = RunFactory(name="other", created_by=world.users["admin"], team=world.run.team)
    api.patch(f"/runs/{world.run.pk}", {"tags": ["kl"]})
    api.patch(f"/runs/{other.pk}", {"archived": True})

    def ids(**query):
        return {r["id"] for r in api.get("/runs", query).json()["items"]}

    assert ids(tag="kl") == {world.run.pk}
    assert other.pk not in ids()
    assert ids(archived="only") == {other.pk}
    assert ids(archived="all", user="ada") == {other.pk}
    response = api.get("/runs", {"user": "nobody"})
    assert response.status_code == 400 and response.json()["field"] == "user"


def test_delete_takes_an_ended_run_and_refuses_a_running_one(world):
    api = api_client_for(world.users["admin"])
    ended = RunFactory(created_by=world.users["member"], team=world.run.team, status=RunStatus.FAILED)

    refused = api.delete(f"/runs/{world.run.pk}")
    done = api.delete(f"/runs/{ended.pk}")

    assert refused.status_code == 409 and "cancel it first" in refused.json()["error"]
    assert done.status_code == 200 and done.json() == {"deleted": ended.pk, "checkpoints": "kept"}
    assert not Run.objects.filter(pk=ended.pk).exists() and Run.objects.filter(pk=world.run.pk).exists()
