"""The role matrix, through the API: every route, for every role, with a read-write token (and every
write with a read token). The rules are the pages' (tests/controlplane/accounts/test_permissions.py):
another team's object does not exist for a user (404); a role too low to act gets 403.

Every route of the API must have a row here (the first test checks), so a new route cannot skip it.
"""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver

from controlplane.accounts.models import TokenScope
from tests.controlplane.accounts.conftest import ROLES
from tests.controlplane.api.conftest import api_client_for
from tests.datasets_app.genjobs_world import world_generation_job
from tests.runs.sweeps.world import world_sweep

# (url name, method, path with @placeholders from the world, JSON body, expected status per role in ROLES
# order: admin, member, viewer of alpha; outsider (admin of beta); loner (no team); superuser)
TABLE = [
    ("me", "get", "/me", None, (200,) * 6),
    ("me-token-revoke", "delete", "/me/token", None, (200,) * 6),
    # A chart layout is the caller's own: every user reads and saves theirs.
    ("me-layout", "get", "/me/layouts/run", None, (200,) * 6),
    ("me-layout-save", "put", "/me/layouts/compare", {"panels": [{"key": "kl"}], "x": "tokens"}, (200,) * 6),
    # Runs: another team's run does not exist (404); a viewer reads but does not act (403). Launching on
    # alpha's dataset: the outsider may not train on it (400, naming dataset_version), the loner launches
    # nowhere (403). The world's run is running: it cancels, and does not resume (409).
    ("runs-list", "get", "/runs", None, (200,) * 6),
    ("run-detail", "get", "/runs/@run", None, (200, 200, 200, 404, 404, 200)),
    (
        "runs-launch",
        "post",
        "/runs",
        {"name": "scripted", "dataset_version": "@version", "config": {"steps": 3}},
        (201, 201, 403, 400, 403, 201),
    ),
    ("run-clone", "post", "/runs/@run/clone", {}, (201, 201, 403, 404, 404, 201)),
    ("run-cancel", "post", "/runs/@run/cancel", None, (200, 200, 403, 404, 404, 200)),
    ("run-resume", "post", "/runs/@run/resume", None, (409, 409, 403, 404, 404, 409)),
    # Organizing (docs/runs.md): members rename, tag, annotate, archive; only admins delete, and not a
    # run that is still running (409: cancel it first).
    ("run-update", "patch", "/runs/@run", {"tags": ["ablation"]}, (200, 200, 403, 404, 404, 200)),
    ("run-delete", "delete", "/runs/@run", None, (409, 403, 403, 404, 404, 409)),
    ("run-logs", "get", "/runs/@run/logs", None, (200, 200, 200, 404, 404, 200)),
    ("run-metric-keys", "get", "/runs/@run/metrics/keys", None, (200, 200, 200, 404, 404, 200)),
    ("run-metrics", "get", "/runs/@run/metrics", None, (200, 200, 200, 404, 404, 200)),
    ("run-metrics-export", "get", "/runs/@run/metrics/export", None, (200, 200, 200, 404, 404, 200)),
    # A comparison's export leaves out the runs the caller may not see: another team's run is an empty file.
    ("runs-compare-export", "get", "/runs/compare/export?runs=@run", None, (200,) * 6),
    ("nodes-list", "get", "/nodes", None, (200,) * 6),
    # Nodes are shared by every team; the world has none, so a node's samples are a 404 for all (read
    # by every role in tests/controlplane/api/test_system.py).
    ("node-samples", "get", "/nodes/gpu-none/samples", None, (404,) * 6),
]

# Datasets, models, spend and generations (controlplane/api/datasets.py, models.py, spend.py,
# generations.py). Writes without a team go to the caller's first team where they are a member: the
# outsider's is beta, the superuser's the default team; a viewer or a user in no team has none (403).
A_FILE = (
    b'{"task_id": "T/0", "prompt": "def f(x):\\n", "entry_point": "f", '
    b'"canonical_solution": "    return x\\n", "test": "def check(c):\\n    assert c(1) == 1\\n"}\n'
)


class Upload(dict):
    """A multipart body (an upload); its file is made afresh for each request."""

    def data(self) -> dict:
        return {k: SimpleUploadedFile("set.jsonl", v) if isinstance(v, bytes) else v for k, v in self.items()}


TABLE += [
    ("datasets-list", "get", "/datasets", None, (200,) * 6),
    (
        "datasets-upload",
        "post",
        "/datasets",
        Upload(name="api-set", file=A_FILE),
        (201, 201, 403, 201, 403, 201),
    ),
    ("dataset-detail", "get", "/datasets/@dataset", None, (200, 200, 200, 404, 404, 200)),
    ("dataset-versions", "get", "/datasets/@dataset/versions", None, (200, 200, 200, 404, 404, 200)),
    ("dataset-version-detail", "get", "/dataset-versions/@version", None, (200, 200, 200, 404, 404, 200)),
    (
        "dataset-version-problems",
        "get",
        "/dataset-versions/@version/problems",
        None,
        (200, 200, 200, 404, 404, 200),
    ),
    ("models-list", "get", "/models", None, (200,) * 6),
    ("model-detail", "get", "/models/@model", None, (200, 200, 200, 404, 404, 200)),
    (
        "models-register",
        "post",
        "/models",
        {"name": "api-model", "source": "/models/x"},
        (201, 201, 403, 201, 403, 201),
    ),
    ("spend", "get", "/spend", None, (200,) * 6),
    ("run-generations", "get", "/runs/@run/generations", None, (200, 200, 200, 404, 404, 200)),
    (
        "generation-label",
        "post",
        "/generations/@generation/label",
        {"label": "bad_test"},
        (200, 200, 403, 404, 404, 200),
    ),
    (
        "runs-create-external",
        "post",
        "/runs/external",
        {"name": "trl", "dataset_version": "@version", "pool": "cpu", "gpus": 1},
        (201, 201, 403, 404, 404, 201),
    ),
]
# Alerts (controlplane/api/alerts.py): the world's rule is on alpha's run. Members make, change and
# delete rules; a viewer reads them; another team's rule does not exist. Notifications are the caller's.
TABLE += [
    ("alert-rules-list", "get", "/alerts/rules", None, (200,) * 6),
    (
        "alert-rules-create",
        "post",
        "/alerts/rules",
        {"run": "@run", "condition": "nan", "metric_key": "loss"},
        (201, 201, 403, 404, 404, 201),
    ),
    ("alert-rule-detail", "get", "/alerts/rules/@alert_rule", None, (200, 200, 200, 404, 404, 200)),
    (
        "alert-rule-update",
        "patch",
        "/alerts/rules/@alert_rule",
        {"threshold": 2},
        (200, 200, 403, 404, 404, 200),
    ),
    ("alert-rule-delete", "delete", "/alerts/rules/@alert_rule", None, (200, 200, 403, 404, 404, 200)),
    ("alert-notifications", "get", "/alerts/notifications", None, (200,) * 6),
    ("alert-notifications-read", "post", "/alerts/notifications/read", {}, (200,) * 6),
]
# Sweeps (controlplane/api/sweeps.py): as runs. Launching on alpha's dataset: the outsider may not train on
# it (400, naming dataset_version), the loner launches nowhere (403). @sweep: a sweep of alpha over the
# world's run.
TABLE += [
    ("sweeps-list", "get", "/sweeps", None, (200,) * 6),
    (
        "sweeps-create",
        "post",
        "/sweeps",
        {
            "name": "api-grid",
            "dataset_version": "@version",
            "config": {"steps": 3},
            "axes": {"lr": [1e-5, 3e-5]},
        },
        (201, 201, 403, 400, 403, 201),
    ),
    ("sweep-detail", "get", "/sweeps/@sweep", None, (200, 200, 200, 404, 404, 200)),
    ("sweep-stop", "post", "/sweeps/@sweep/stop", None, (200, 200, 403, 404, 404, 200)),
]
# Generation jobs (controlplane/api/generation.py): members of the dataset's team launch and cancel, viewers
# read; another team's dataset or job does not exist (404). @gen_job: a queued job of alpha's dataset.
TABLE += [
    (
        "dataset-generate",
        "post",
        "/datasets/@dataset/generate",
        {"base_url": "http://127.0.0.1:9/v1", "model": "teacher-7b", "count": 2},
        (201, 201, 403, 404, 404, 201),
    ),
    ("generation-job-detail", "get", "/generation-jobs/@gen_job", None, (200, 200, 200, 404, 404, 200)),
    (
        "generation-job-cancel",
        "post",
        "/generation-jobs/@gen_job/cancel",
        None,
        (200, 200, 403, 404, 404, 200),
    ),
    (
        "generation-job-candidates",
        "get",
        "/generation-jobs/@gen_job/candidates",
        None,
        (200, 200, 200, 404, 404, 200),
    ),
]
# Not routes a token calls: the schema (open, like the docs of any public API) and the docs page.
NOT_CALLS = {"openapi-json", "openapi-view", "api-root"}


def _api_names(patterns, inside=False):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _api_names(pattern.url_patterns, inside or pattern.namespace == "api")
        elif isinstance(pattern, URLPattern) and inside and pattern.name:
            yield pattern.name


def test_the_table_walks_every_route_of_the_api():
    names = set(_api_names(get_resolver().url_patterns)) - NOT_CALLS
    assert names - {row[0] for row in TABLE} == set()


def _path(world, template: str) -> str:
    if "@sweep" in template:
        template = template.replace("@sweep", str(world_sweep(world)))
    if "@gen_job" in template:
        template = template.replace("@gen_job", str(world_generation_job(world)))
    for name in ("run", "beta_run", "generation", "model", "eval_job", "problem", "alert_rule"):
        template = template.replace(f"@{name}", str(getattr(world, name).pk))
    return template.replace("@version", str(world.run.dataset_version_id)).replace(
        "@dataset", str(world.run.dataset_version.dataset_id)
    )


def _body(world, body):
    """A body's "@name" values as the world's ids (like the path's)."""
    if body is None or isinstance(body, Upload):
        return body
    return {k: int(_path(world, v)) if str(v).startswith("@") else v for k, v in body.items()}


def _send(api, method: str, path: str, body):
    if isinstance(body, Upload):
        return api.post(path, data=body.data())
    if method in ("post", "put", "patch"):
        return getattr(api, method)(path, body)
    return getattr(api, method)(path)


@pytest.mark.parametrize("role", range(len(ROLES)), ids=ROLES)
@pytest.mark.parametrize(("name", "method", "template", "body", "expected"), TABLE, ids=[r[0] for r in TABLE])
def test_every_route_answers_each_role_as_its_permissions_say(
    world, role, name, method, template, body, expected
):
    api = api_client_for(world.users[ROLES[role]], TokenScope.WRITE)
    path = _path(world, template)
    response = _send(api, method, path, _body(world, body))
    assert response.status_code == expected[role], (ROLES[role], method, path, response.content[:300])
    if response.status_code >= 400:
        assert set(response.json()) >= {"error", "field"}


@pytest.mark.parametrize(
    ("name", "method", "template", "body", "expected"),
    [row for row in TABLE if row[1] != "get" and row[0] != "me-token-revoke"],
    ids=[row[0] for row in TABLE if row[1] != "get" and row[0] != "me-token-revoke"],
)
def test_a_read_token_is_refused_every_write(world, name, method, template, body, expected):
    api = api_client_for(world.users["superuser"], TokenScope.READ)
    path = _path(world, template)
    response = _send(api, method, path, _body(world, body))
    assert response.status_code == 403 and "read-only" in response.json()["error"]
