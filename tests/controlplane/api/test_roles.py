"""The role matrix, through the API: every route, for every role, with a read-write token (and every
write with a read token). The rules are the pages' (tests/controlplane/accounts/test_permissions.py):
another team's object does not exist for a user (404); a role too low to act gets 403.

Every route of the API must have a row here (the first test checks), so a new route cannot skip it.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from controlplane.accounts.models import TokenScope
from tests.controlplane.accounts.conftest import ROLES
from tests.controlplane.api.conftest import api_client_for

# (url name, method, path with @placeholders from the world, JSON body, expected status per role in ROLES
# order: admin, member, viewer of alpha; outsider (admin of beta); loner (no team); superuser)
TABLE = [
    ("me", "get", "/me", None, (200,) * 6),
    ("me-token-revoke", "delete", "/me/token", None, (200,) * 6),
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
    for name in ("run", "beta_run", "generation", "model", "eval_job", "problem"):
        template = template.replace(f"@{name}", str(getattr(world, name).pk))
    return template.replace("@version", str(world.run.dataset_version_id)).replace(
        "@dataset", str(world.run.dataset_version.dataset_id)
    )


@pytest.mark.parametrize("role", range(len(ROLES)), ids=ROLES)
@pytest.mark.parametrize(("name", "method", "template", "body", "expected"), TABLE, ids=[r[0] for r in TABLE])
def test_every_route_answers_each_role_as_its_permissions_say(
    world, role, name, method, template, body, expected
):
    api = api_client_for(world.users[ROLES[role]], TokenScope.WRITE)
    path = _path(world, template)
    response = api.post(path, body) if method == "post" else getattr(api, method)(path)
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
    response = api.post(path, body) if method == "post" else getattr(api, method)(path)
    assert response.status_code == 403 and "read-only" in response.json()["error"]
