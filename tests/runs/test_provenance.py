"""Provenance: the claim records what the node runs with, the spec API what it served, the run page shows
both, and "re-run exactly" launches from them (docs/runs.md, "Provenance")."""

import json

import pytest

from datasets_app.models import ProblemStatus
from runs.models import Run, RunAttempt
from tests.factories import (
    TEST_TOKEN,
    ProblemFactory,
    RegisteredModelFactory,
    RunFactory,
    TeamFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PROVENANCE = {
    "triad": "0" * 40,
    "commit": "0" * 40,
    "versions": {"torch": "2.5.1", "deepspeed": "0.16.0", "transformers": "4.46.0", "vllm": None},
    "python": "3.11.7",
    "hostname": "gpu-node-7",
    "gpus": [{"name": "NVIDIA H100 80GB HBM3", "memory": "81559 MiB"}],
    "cpu_count": 64,
}


def api(client, method, run_id, path, body=None):
    headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
    if method == "get":
        return client.get(f"/api/v1/runs/{run_id}/{path}", headers=headers)
    return client.post(
        f"/api/v1/runs/{run_id}/{path}",
        data=body if isinstance(body, bytes | str) else json.dumps(body),
        content_type="application/json",
        headers=headers,
    )


def a_run(**kwargs):
    """A run of the logged-in user's team (alice's, the default one) with two verified problems."""
    problem = ProblemFactory(version__dataset__created_by=kwargs.pop("created_by"))
    ProblemFactory(version=problem.version)
    return RunFactory(dataset_version=problem.version, **kwargs)


def test_the_winning_claim_records_the_attempt_with_its_provenance_once(client):
    run = RunFactory()
    body = {"attempt": 1, "claim": "k1@gpu-node-7", "provenance": PROVENANCE}

    first = api(client, "post", run.pk, "claim", body)
    retried = api(client, "post", run.pk, "claim", {**body, "provenance": {**PROVENANCE, "python": "9.9"}})
    other = api(client, "post", run.pk, "claim", {**body, "claim": "k2@elsewhere"})

    assert (first.status_code, retried.status_code, other.status_code) == (200, 200, 409)
    record = RunAttempt.objects.get(run=run)
    assert (record.attempt, record.claimed_by, record.node) == (1, "k1@gpu-node-7", "gpu-node-7")
    assert record.claimed_at is not None
    assert record.provenance == PROVENANCE  # the retry changed nothing: stored once per attempt


def test_a_claim_without_provenance_still_claims_and_names_the_host_of_its_key(client):
    run = RunFactory()

    response = api(client, "post", run.pk, "claim", {"attempt": 1, "claim": "k1@old-node"})

    assert response.status_code == 200
    record = RunAttempt.objects.get(run=run, attempt=1)
    assert (record.node, record.provenance) == ("old-node", None)


def test_each_attempt_of_a_resumed_run_has_its_own_record(client):
    run = RunFactory()
    api(client, "post", run.pk, "claim", {"attempt": 1, "claim": "k1@a", "provenance": PROVENANCE})
    Run.objects.filter(pk=run.pk).update(status="queued", attempt=2, claimed_by="")

    api(client, "post", run.pk, "claim", {"attempt": 2, "claim": "k2@b", "provenance": {"hostname": "b"}})

    assert list(RunAttempt.objects.filter(run=run).values_list("attempt", "node")) == [
        (1, "gpu-node-7"),
        (2, "b"),
    ]


@pytest.mark.parametrize(
    ("provenance", "reason"),
    [
        (["not", "an", "object"], "provenance: expected a JSON object, got list"),
        ({"blob": "x" * 70_000}, "bytes is over the 65536-byte limit"),
        ({"versions": {"torch": "2.5\u0000"}}, "provenance.versions.torch: contains a NUL byte"),
        ({"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}, "nested deeper than 8 levels"),
    ],
)
def test_a_bad_provenance_is_refused_with_the_reason_and_claims_nothing(client, provenance, reason):
    run = RunFactory()

    response = api(client, "post", run.pk, "claim", {"attempt": 1, "claim": "k1@a", "provenance": provenance})

    assert response.status_code == 400
    assert response.json()["field"] == "provenance"
    assert reason in response.json()["error"]
    run.refresh_from_db()
    assert (run.status, run.claimed_by) == ("queued", "")
    assert not RunAttempt.objects.filter(run=run).exists()


def test_provenance_strings_are_stripped_and_cut(client):
    run = RunFactory()
    provenance = {"  hostname ": "  node-1\n", "note": "y" * 5000}

    api(client, "post", run.pk, "claim", {"attempt": 1, "claim": "k1@a", "provenance": provenance})

    stored = RunAttempt.objects.get(run=run).provenance
    assert stored == {"hostname": "node-1", "note": "y" * 1000}


def test_a_claim_body_over_the_limit_is_refused_before_it_is_read(client):
    run = RunFactory()
    body = json.dumps({"attempt": 1, "claim": "k1@a", "provenance": {"x": "y" * 300_000}})

    response = api(client, "post", run.pk, "claim", body)

    assert response.status_code == 413
    assert Run.objects.get(pk=run.pk).claimed_by == ""


def test_the_spec_served_for_an_attempt_is_recorded_once_first_fetch_wins(client, user):
    run = a_run(created_by=user, name="first-name")

    served = api(client, "get", run.pk, "spec").json()
    Run.objects.filter(pk=run.pk).update(name="renamed")
    again = api(client, "get", run.pk, "spec").json()
    api(client, "post", run.pk, "claim", {"attempt": 1, "claim": "k1@a", "provenance": PROVENANCE})

    record = RunAttempt.objects.get(run=run, attempt=1)
    assert again["name"] == "renamed"
    assert record.spec == served and record.spec["name"] == "first-name"
    assert len(record.spec["problems"]) == 2
    assert record.provenance == PROVENANCE  # the claim completed the record the fetch made


def test_the_run_page_shows_each_attempts_provenance_escaped(logged_in, client, user):
    run = a_run(created_by=user)
    hostile = {**PROVENANCE, "versions": {"torch": "<script>alert(1)</script>"}}
    api(client, "get", run.pk, "spec")
    api(client, "post", run.pk, "claim", {"attempt": 1, "claim": "k1@a", "provenance": hostile})

    page = logged_in.get(f"/runs/{run.pk}/").content.decode()

    section = page[page.index('id="provenance"') :]
    assert "Attempt 1 on gpu-node-7" in section
    assert "NVIDIA H100 80GB HBM3 81559 MiB" in section
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section and "<script>alert" not in page
    assert "2 problems (in the download)" in section and "def add(a, b)" not in section
    assert f"/runs/{run.pk}/attempts/1/spec.json" in section
    assert 'data-testid="rerun"' in section


def test_the_spec_download_is_the_whole_spec_for_the_team_only(logged_in, client, user):
    run = a_run(created_by=user)
    served = api(client, "get", run.pk, "spec").json()
    outsider = UserFactory(username="eve", membership__team=TeamFactory(name="other"))

    mine = logged_in.get(f"/runs/{run.pk}/attempts/1/spec.json")
    logged_in.force_login(outsider)
    theirs = logged_in.get(f"/runs/{run.pk}/attempts/1/spec.json")
    never = logged_in.get(f"/runs/{run.pk}/attempts/2/spec.json")

    assert mine.status_code == 200 and json.loads(mine.content) == served
    assert "attachment" in mine["Content-Disposition"]
    assert (theirs.status_code, never.status_code) == (404, 404)


def test_rerun_exactly_launches_the_same_dataset_version_pool_and_config(logged_in, client, user):
    run = a_run(created_by=user, pool="cpu", config={"steps": 3, "lr": 0.002, "budget_usd": 5.0})
    api(client, "get", run.pk, "spec")
    Run.objects.filter(pk=run.pk).update(config={"steps": 99})  # the spec served is what counts

    response = logged_in.post(f"/runs/{run.pk}/attempts/1/rerun/")

    again = Run.objects.exclude(pk=run.pk).get()
    assert response.status_code == 302 and response.url == f"/runs/{again.pk}/"
    assert (again.dataset_version_id, again.pool, again.team_id) == (
        run.dataset_version_id,
        "cpu",
        run.team_id,
    )
    assert (again.config["steps"], again.config["lr"]) == (3, 0.002)
    assert again.status == "queued" and again.created_by == user


def test_rerun_exactly_refuses_when_the_problems_changed_or_the_version_is_unreadable(
    logged_in, client, user
):
    run = a_run(created_by=user)
    api(client, "get", run.pk, "spec")
    run.dataset_version.problems.update(status=ProblemStatus.FLAKY)

    changed = logged_in.post(f"/runs/{run.pk}/attempts/1/rerun/", follow=True)
    run.dataset_version.problems.update(status=ProblemStatus.VERIFIED)
    run.dataset_version.dataset.team = TeamFactory(name="elsewhere")
    run.dataset_version.dataset.save()
    unreadable = logged_in.post(f"/runs/{run.pk}/attempts/1/rerun/", follow=True)
    never = logged_in.post(f"/runs/{run.pk}/attempts/2/rerun/", follow=True)

    assert Run.objects.count() == 1
    assert "no longer trains on the same problems" in changed.content.decode()
    assert "is not a dataset of team" in unreadable.content.decode()
    assert "has no recorded spec" in never.content.decode()


def test_rerun_exactly_refuses_when_the_versions_content_is_gone(logged_in, client, user):
    run = a_run(created_by=user)
    api(client, "get", run.pk, "spec")
    type(run.dataset_version).objects.filter(pk=run.dataset_version_id).update(content_hash="f" * 64)

    response = logged_in.post(f"/runs/{run.pk}/attempts/1/rerun/", follow=True)

    assert Run.objects.count() == 1
    assert "is gone" in response.content.decode()


def test_rerun_exactly_trains_the_same_registered_model_while_it_is_unchanged_and_ready(
    logged_in, client, user
):
    model = RegisteredModelFactory(registered_by=user, source="/models/small", dtype="bf16")
    run = a_run(created_by=user, model=model, pool="cpu")
    api(client, "get", run.pk, "spec")

    logged_in.post(f"/runs/{run.pk}/attempts/1/rerun/")
    type(model).objects.filter(pk=model.pk).update(source="/models/other")
    changed = logged_in.post(f"/runs/{run.pk}/attempts/1/rerun/", follow=True)
    type(model).objects.filter(pk=model.pk).update(source="/models/small", status="refused", error="gone")
    not_ready = logged_in.post(f"/runs/{run.pk}/attempts/1/rerun/", follow=True)

    [again] = Run.objects.exclude(pk=run.pk)
    assert (again.model_id, again.pool) == (model.pk, "cpu")
    assert f"{model.name} is no longer what attempt 1 was served" in changed.content.decode()
    assert f"model {model.name} is refused: gone" in not_ready.content.decode()
