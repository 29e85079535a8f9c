"""The runs API: list, read, launch (YAML or JSON, idempotent), clone, cancel, resume, logs, metrics and
their streamed export; bad input refused naming the field (or the YAML's line), with nothing created."""

import csv
import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.core.handlers.asgi import ASGIRequest
from django.utils import timezone

from controlplane.accounts.models import TokenScope
from runs.metric_store import metric_points_write
from runs.models import LogLine, Node, Run, RunStatus
from runs.spend.models import RunCost
from tests.controlplane.api.conftest import api_client_for
from tests.factories import ProblemFactory, RegisteredModelFactory, RunFactory

pytestmark = pytest.mark.django_db


def admin(world):
    return api_client_for(world.users["admin"])


def launch_yaml(world, *settings_lines: str) -> str:
    """A launch document: the settings first (so their lines are the launch form's), then the run."""
    return "\n".join([*settings_lines, "name: from-yaml", f"dataset_version: {world.run.dataset_version_id}"])


def run_count() -> int:
    return Run.objects.count()


# --- list and read ---------------------------------------------------------------------------------


def test_the_list_is_the_runs_page_filtered_sorted_and_paged(world):
    RunFactory(name="alpha-done", created_by=world.users["member"], team=world.alpha, status="succeeded")
    RunCost.objects.create(run=world.run, accrued_until=timezone.now(), usd=Decimal("2.5"), gpus=1)
    api = admin(world)

    everything = api.get("/runs").json()
    done = api.get("/runs", {"status": "succeeded"}).json()
    found = api.get("/runs", {"q": "secret"}).json()
    by_cost = api.get("/runs", {"sort": "cost", "per_page": 1}).json()

    assert [r["name"] for r in everything["items"]] == ["alpha-done", "alpha-secret-run"]  # not beta's
    assert (everything["count"], everything["page"], everything["pages"]) == (2, 1, 1)
    assert [r["name"] for r in done["items"]] == ["alpha-done"]
    assert [r["name"] for r in found["items"]] == ["alpha-secret-run"]
    assert [r["name"] for r in by_cost["items"]] == ["alpha-secret-run"] and by_cost["pages"] == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [({"sort": "colour"}, "sort"), ({"status": "sleeping"}, "status"), ({"per_page": 500}, "per_page")],
)
def test_a_bad_filter_is_refused_naming_it(world, query, field):
    response = admin(world).get("/runs", query)

    assert response.status_code == 400 and response.json()["field"] == field


def test_another_teams_dataset_is_no_filter_at_all(world):
    beta_dataset = RunFactory(created_by=world.users["outsider"], team=world.beta).dataset_version.dataset

    response = admin(world).get("/runs", {"dataset": beta_dataset.pk})

    assert response.status_code == 400 and response.json()["field"] == "dataset"


def test_a_run_object_carries_what_the_run_page_shows(world):
    now = timezone.now()
    metric_points_write([(world.run.pk, "reward/mean", 0, 0.25, now), (world.run.pk, "kl", 0, 0.01, now)])
    RunCost.objects.create(run=world.run, accrued_until=now, usd=Decimal("1.25"), gpu_hours=0.5, gpus=1)

    run = admin(world).get(f"/runs/{world.run.pk}").json()

    version = world.run.dataset_version
    assert run["id"] == world.run.pk and run["status"] == "running"
    assert run["team"] == {"id": world.alpha.pk, "name": "alpha"} and run["user"] == "max"
    assert run["dataset_version"] == {"id": version.pk, "dataset": version.dataset.name, "version": 1}
    assert run["latest"] == {"reward/mean": 0.25, "pass_rate": None, "kl": 0.01}
    assert (run["cost_usd"], run["gpu_hours"], run["total_steps"]) == (1.25, 0.5, 2)
    assert run["config"]["steps"] == 2 and "lr" in run["config"]  # every setting, defaults included
    assert run["url"] == f"http://testserver/runs/{world.run.pk}/"
    assert "triad_run_" not in json.dumps(run) and "token" not in run


def test_another_teams_run_does_not_exist(world):
    response = admin(world).get(f"/runs/{world.beta_run.pk}")

    assert response.status_code == 404 and response.json() == {
        "error": f"no run #{world.beta_run.pk}",
        "field": None,
    }


# --- launch ----------------------------------------------------------------------------------------


def test_a_launch_from_json_answers_the_run_without_its_token(world):
    body = {"name": "scripted", "dataset_version": world.run.dataset_version_id, "config": {"steps": 5}}

    response = admin(world).post("/runs", body)

    assert response.status_code == 201, response.content
    run = Run.objects.get(pk=response.json()["id"])
    assert (run.name, run.team, run.created_by, run.config["steps"]) == (
        "scripted",
        world.alpha,
        world.users["admin"],
        5,
    )
    assert response.json()["status"] == "queued" and response.json()["config"]["steps"] == 5
    assert "triad_run_" not in response.content.decode() and "token" not in response.json()


def test_a_launch_from_the_yaml_document(world):
    text = launch_yaml(world, "steps: 4", "lr: 0.002", "pool: cpu")

    response = admin(world).post("/runs", {"yaml": text})

    assert response.status_code == 201, response.content
    run = Run.objects.get(pk=response.json()["id"])
    assert (run.name, run.dataset_version_id, run.pool) == ("from-yaml", world.run.dataset_version_id, "cpu")
    assert (run.config["steps"], run.config["lr"]) == (4, 0.002)


@pytest.mark.parametrize(
    ("lines", "field", "message"),
    [
        (["steps: 4", "lr: 1: 2"], "yaml", "config line 2, column 6: invalid YAML: mapping values"),
        (["steps: 4", "colour: red"], "yaml", "config line 2: unknown key 'colour'"),
        (["steps: 4", "", "lr: fast"], "lr", "config line 3, 'lr': "),
        (["steps: 4", "steps: 5"], "steps", "config line 2, 'steps': given twice"),
        (["steps: 2", "sft_warmup_steps: 2"], "sft_warmup_steps", "config line 2, 'sft_warmup_steps': "),
        (["steps: 2", "team: yes"], "team", "config line 2, 'team': must be an id, got 'True'"),
        (["steps: 2", "pool: [a, b]"], "pool", "config line 2, 'pool': must be text"),
    ],
)
def test_a_bad_yaml_names_its_line_and_key_and_creates_nothing(world, lines, field, message):
    before = run_count()

    response = admin(world).post("/runs", {"yaml": launch_yaml(world, *lines)})

    assert response.status_code == 400
    assert response.json()["field"] == field and response.json()["error"].startswith(message)
    assert run_count() == before


def test_the_api_refuses_a_yaml_in_the_launch_forms_words(world, client):
    """The same settings, through the page's form and through the API: the same message."""
    client.force_login(world.users["admin"])
    settings = ["steps: 4", "max_new_tokens: -3"]

    page = client.post(
        "/runs/new/", {"dataset_version": world.run.dataset_version_id, "config_yaml": "\n".join(settings)}
    )
    api = admin(world).post("/runs", {"yaml": launch_yaml(world, *settings)})

    assert api.status_code == 400
    assert page.context["form"].errors["config_yaml"] == [api.json()["error"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"dataset_version": "latest"}, "dataset_version"),
        ({"team": True}, "team"),
        ({"name": 5}, "name"),
        ({"config": {"colour": 1}}, "config.colour"),
        ({"config": {"steps": "ten"}}, "config.steps"),
        ({"config": {"steps": 0}}, "config.steps"),
        ({"config": {"steps": 2, "sft_warmup_steps": 2}}, "config.sft_warmup_steps"),
        ({"config": []}, "config"),
        ({"yaml": "steps: 3"}, "dataset_version"),  # besides the JSON fields
        ({"dataset_version": None}, "dataset_version"),  # required, as on the page
        ({"name": "x" * 201}, "name"),
        ({"pool": "nowhere"}, "pool"),
    ],
)
def test_bad_json_is_refused_naming_the_field_and_creates_nothing(world, body, field):
    before = run_count()
    full = {"name": "scripted", "dataset_version": world.run.dataset_version_id, **body}
    full = {k: v for k, v in full.items() if v is not None}

    response = admin(world).post("/runs", full)

    assert response.status_code == 400, response.content
    assert response.json()["field"] == field and response.json()["error"]
    assert run_count() == before


def test_a_body_that_is_not_json_is_refused(world):
    response = admin(world).client.post(
        "/api/v1/runs", "{not json", content_type="application/json", headers=admin(world)._headers(None)
    )

    assert response.status_code == 400 and response.json()["field"] == "body"


def test_another_teams_dataset_version_or_model_is_refused_naming_it(world):
    beta_version = ProblemFactory(
        version__dataset__team=world.beta, version__dataset__created_by=world.users["outsider"]
    ).version
    beta_model = RegisteredModelFactory(
        registered_by=world.users["outsider"], team=world.beta, status="ready"
    )
    before = run_count()
    api = admin(world)

    version = api.post("/runs", {"dataset_version": beta_version.pk})
    model = api.post("/runs", {"dataset_version": world.run.dataset_version_id, "model": beta_model.pk})
    in_yaml = api.post("/runs", {"yaml": f"steps: 3\ndataset_version: {beta_version.pk}"})

    assert version.status_code == 400 and version.json()["field"] == "dataset_version"
    assert model.status_code == 400 and model.json()["field"] == "model"
    assert in_yaml.status_code == 400 and in_yaml.json()["field"] == "dataset_version"
    assert in_yaml.json()["error"].startswith("config line 2, 'dataset_version': ")
    assert run_count() == before


def test_a_launch_refused_for_a_setting_names_it_where_it_was_given(world):
    """run_launch's own refusals (here: every problem held out) point at the setting: its YAML line, or
    config.<setting> in JSON."""
    before = run_count()
    api = admin(world)

    as_yaml = api.post("/runs", {"yaml": launch_yaml(world, "steps: 3", "eval_problems: 50")})
    as_json = api.post(
        "/runs", {"dataset_version": world.run.dataset_version_id, "config": {"eval_problems": 50}}
    )

    assert as_yaml.status_code == 400 and as_yaml.json()["field"] == "eval_problems"
    assert as_yaml.json()["error"].startswith("config line 2, 'eval_problems': holding out 50 problems")
    assert as_json.status_code == 400 and as_json.json()["field"] == "config.eval_problems"
    assert run_count() == before


def test_a_viewer_or_a_read_token_launches_nothing(world):
    body = {"dataset_version": world.run.dataset_version_id}
    before = run_count()

    viewer = api_client_for(world.users["viewer"]).post("/runs", body)
    read = api_client_for(world.users["admin"], TokenScope.READ).post("/runs", body)

    assert viewer.status_code == 403 and "member role" in viewer.json()["error"]
    assert read.status_code == 403 and "read-only" in read.json()["error"]
    assert run_count() == before


def test_the_same_idempotency_key_twice_launches_one_run(world):
    api = admin(world)
    body = {"name": "once", "dataset_version": world.run.dataset_version_id}
    key = {"Idempotency-Key": "launch-1"}

    first = api.post("/runs", body, headers=key)
    again = api.post("/runs", body, headers=key)
    other_body = api.post("/runs", {**body, "name": "twice"}, headers=key)

    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert Run.objects.filter(name="once").count() == 1
    assert other_body.status_code == 409 and other_body.json()["field"] == "Idempotency-Key"


def test_a_refused_launch_does_not_use_up_its_key(world):
    api = admin(world)
    key = {"Idempotency-Key": "launch-2"}

    refused = api.post(
        "/runs", {"dataset_version": world.run.dataset_version_id, "config": {"steps": 0}}, headers=key
    )
    fixed = api.post(
        "/runs", {"dataset_version": world.run.dataset_version_id, "config": {"steps": 3}}, headers=key
    )

    assert (refused.status_code, fixed.status_code) == (400, 201)


# --- clone, cancel, resume -------------------------------------------------------------------------


def test_a_clone_is_a_new_run_of_the_same_inputs_with_the_settings_changed(world):
    response = admin(world).post(f"/runs/{world.run.pk}/clone", {"config": {"lr": 0.0005}})

    assert response.status_code == 201, response.content
    clone = Run.objects.get(pk=response.json()["id"])
    assert clone.name == "alpha-secret-run (clone)" and clone.status == RunStatus.QUEUED
    assert (clone.dataset_version, clone.team, clone.pool) == (
        world.run.dataset_version,
        world.alpha,
        world.run.pool,
    )
    assert (clone.config["steps"], clone.config["lr"]) == (2, 0.0005)


def test_a_clone_with_a_bad_setting_creates_nothing(world):
    before = run_count()

    response = admin(world).post(f"/runs/{world.run.pk}/clone", {"config": {"lr": -1}})

    assert response.status_code == 400 and response.json()["field"] == "config.lr"
    assert run_count() == before


def test_cancel_then_cancel_again_is_a_conflict(world):
    api = admin(world)

    first = api.post(f"/runs/{world.run.pk}/cancel")
    again = api.post(f"/runs/{world.run.pk}/cancel")

    assert first.status_code == 200 and first.json()["status"] == "cancelling"
    assert again.status_code == 409 and "nothing to cancel" in again.json()["error"]


def test_a_cancelled_run_resumes_as_a_new_attempt(world):
    Run.objects.filter(pk=world.run.pk).update(status=RunStatus.CANCELLED)

    response = admin(world).post(f"/runs/{world.run.pk}/resume")

    assert response.status_code == 200 and response.json()["status"] == "queued"
    assert Run.objects.get(pk=world.run.pk).attempt == world.run.attempt + 1


def test_a_fleet_run_is_not_resumed_where_there_is_no_fleet_and_says_why(world, settings):
    Run.objects.filter(pk=world.run.pk).update(
        status=RunStatus.CANCELLED, config={**world.run.config, "sandbox_mode": "fleet"}
    )
    settings.CELERY_BROKER_URL, settings.CELERY_RESULT_BACKEND = "filesystem://", None

    response = admin(world).post(f"/runs/{world.run.pk}/resume")

    assert response.status_code == 409
    assert response.json()["field"] == "sandbox_mode" and "no sandbox fleet" in response.json()["error"]
    assert Run.objects.get(pk=world.run.pk).status == RunStatus.CANCELLED


# --- logs and metrics ------------------------------------------------------------------------------


def test_logs_are_followed_from_the_last_line_seen(world):
    now = timezone.now()
    lines = [
        LogLine.objects.create(run=world.run, source="trainer", message=f"line {i}", time=now)
        for i in range(5)
    ]
    api = admin(world)

    first = api.get(f"/runs/{world.run.pk}/logs", {"limit": 3}).json()
    rest = api.get(f"/runs/{world.run.pk}/logs", {"after": first["next_after"]}).json()
    nothing_new = api.get(f"/runs/{world.run.pk}/logs", {"after": rest["next_after"]}).json()

    assert [i["message"] for i in first["items"]] == ["line 0", "line 1", "line 2"]
    assert first["next_after"] == lines[2].pk
    assert [i["message"] for i in rest["items"]] == ["line 3", "line 4"]
    assert nothing_new == {"items": [], "next_after": lines[4].pk}
    assert api.get(f"/runs/{world.run.pk}/logs", {"limit": 0}).json()["field"] == "limit"


def alpha_run(world):
    """A run of alpha with no points yet (the world's run has the review's)."""
    return RunFactory(created_by=world.users["member"], team=world.alpha)


def test_metrics_are_read_downsampled_as_the_charts_read_them(world):
    now, run = timezone.now(), alpha_run(world)
    metric_points_write(
        [(run.pk, "reward/mean", s, 9.0 if s == 1234 else 0.0, now) for s in range(5000)]
        + [(run.pk, "kl", 0, 0.1, now)]
    )
    api = admin(world)

    keys = api.get(f"/runs/{run.pk}/metrics/keys").json()
    read = api.get(f"/runs/{run.pk}/metrics", {"keys": "reward/mean", "max_points": 100}).json()
    bad = api.get(f"/runs/{run.pk}/metrics", {"max_points": 1})

    assert keys == {"keys": ["kl", "reward/mean"]}
    assert read["downsampled"] is True and list(read["series"]) == ["reward/mean"]
    assert len(read["series"]["reward/mean"]) <= 100 and [1234, 9.0] in read["series"]["reward/mean"]
    assert bad.status_code == 400 and bad.json()["field"] == "max_points"


def test_the_export_streams_every_point_as_csv_or_json_lines(world):
    t, run = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), alpha_run(world)
    metric_points_write(
        [(run.pk, "loss", 1, 0.5, t), (run.pk, "loss", 0, 1.5, t), (run.pk, 'odd,"key"', 7, float("-inf"), t)]
    )
    api = admin(world)

    as_csv = api.get(f"/runs/{run.pk}/metrics/export", {"format": "csv"})
    as_jsonl = api.get(f"/runs/{run.pk}/metrics/export", {"format": "jsonl", "keys": "loss"})

    assert as_csv.streaming and as_csv["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(as_csv.streaming_content).decode())))
    assert rows[0] == ["run", "key", "step", "value", "wall_time"]
    assert rows[1:] == [
        [str(run.pk), "loss", "0", "1.5", "2026-01-02T03:04:05+00:00"],
        [str(run.pk), "loss", "1", "0.5", "2026-01-02T03:04:05+00:00"],
        [str(run.pk), 'odd,"key"', "7", "-inf", "2026-01-02T03:04:05+00:00"],
    ]
    lines = [json.loads(line) for line in b"".join(as_jsonl.streaming_content).decode().splitlines()]
    assert lines == [
        {"run": run.pk, "key": "loss", "step": 0, "value": 1.5, "wall_time": "2026-01-02T03:04:05+00:00"},
        {"run": run.pk, "key": "loss", "step": 1, "value": 0.5, "wall_time": "2026-01-02T03:04:05+00:00"},
    ]


def test_a_large_export_comes_in_chunks_and_the_json_stays_json(world):
    now, run = timezone.now(), alpha_run(world)
    metric_points_write([(run.pk, "k", s, float("inf") if s == 3 else s / 7, now) for s in range(45_000)])

    response = admin(world).get(f"/runs/{run.pk}/metrics/export", {"format": "jsonl"})

    chunks = list(response.streaming_content)
    lines = b"".join(chunks).decode().splitlines()
    assert len(chunks) == 3 and len(lines) == 45_000
    assert [json.loads(line)["value"] for line in lines[:4]] == [0.0, 1 / 7, 2 / 7, None]


def test_an_unknown_export_format_is_refused_naming_it(world):
    response = admin(world).get(f"/runs/{world.run.pk}/metrics/export", {"format": "xlsx"})

    assert response.status_code == 400 and response.json()["field"] == "format"


def test_under_asgi_the_export_is_an_async_stream(world, rf):
    """Django reads a synchronous iterator whole before serving it under ASGI: the export must not."""
    from controlplane.api.streaming import streamed

    scope = {"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": []}
    asgi = streamed(ASGIRequest(scope, io.BytesIO()), iter_chunks(), content_type="text/csv", filename="x")
    wsgi = streamed(rf.get("/"), iter_chunks(), content_type="text/csv", filename="x")

    assert asgi.is_async and not wsgi.is_async


def iter_chunks():
    yield b"a"


# --- nodes -----------------------------------------------------------------------------------------


def test_nodes_are_listed_with_only_the_callers_runs_named(world):
    now = timezone.now()
    node = Node.objects.create(
        name="gpu@a", hostname="a", pool="cpu", gpu_count=2, registered_at=now, last_heartbeat_at=now
    )
    Run.objects.filter(pk__in=[world.run.pk, world.beta_run.pk]).update(node=node, status=RunStatus.RUNNING)

    page = admin(world).get("/nodes").json()

    assert page["count"] == 1
    item = page["items"][0]
    assert (item["name"], item["pool"], item["gpus"], item["status"]) == ("gpu@a", "cpu", 2, "healthy")
    assert (item["runs"], item["busy_elsewhere"]) == ([world.run.pk], 1)
