"""Personal API tokens at the API's door: every way a token can be wrong gets a 401 that says which, as
JSON (never the login page's 302); a read token cannot write; each token has a rate limit."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from controlplane.accounts.models import ApiToken, AuditAction, AuditEntry, TokenScope
from controlplane.accounts.services import ApiTokenError, api_token_create, api_token_hash, api_token_revoke
from tests.controlplane.api.conftest import ApiClient, api_client_for
from tests.factories import UserFactory


def test_a_call_without_a_token_is_a_json_401_not_a_redirect_to_the_login_page(client, db):
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert set(body) == {"error", "field"} and "Authorization: Bearer" in body["error"]


@pytest.mark.parametrize(
    ("header", "says"),
    [
        ("Bearer triad_pat_not-a-real-one", "unknown API token"),
        ("Bearer triad_run_abc", "not a personal API token"),
        ("Basic dXNlcjpwdw==", "authentication required"),
    ],
)
def test_a_wrong_token_is_refused_with_the_reason(client, db, header, says):
    response = client.get("/api/v1/me", headers={"Authorization": header})
    assert response.status_code == 401
    assert says in response.json()["error"]


def test_a_token_is_the_users_identity_and_only_its_hash_is_stored(api_user):
    token, row = api_token_create(user=api_user, name="laptop", scope=TokenScope.READ, expires_in_days=30)
    assert token.startswith("triad_pat_") and len(token) > 40
    assert row.token_hash == api_token_hash(token) and token not in row.token_hash
    assert not ApiToken.objects.filter(token_hash=token).exists()
    assert token[10:16] == row.hint
    response = ApiClient(token).get("/me")
    assert response.status_code == 200
    assert response.json() == {
        "username": "scripter",
        "superuser": False,
        "teams": [],
        "token": {"name": "laptop", "scope": "read", "expires_at": row.expires_at.isoformat()},
    }
    row.refresh_from_db()
    assert row.last_used_at is not None
    assert AuditEntry.objects.filter(action=AuditAction.TOKEN_CREATE, target_id=str(row.pk)).exists()


def test_expired_and_revoked_tokens_no_longer_authenticate(api_user):
    token, row = api_token_create(user=api_user, name="old", expires_in_days=1)
    ApiToken.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = ApiClient(token).get("/me")
    assert response.status_code == 401 and "'old' expired on" in response.json()["error"]

    token, row = api_token_create(user=api_user, name="gone")
    api_token_revoke(user=api_user, token_id=row.pk)
    response = ApiClient(token).get("/me")
    assert response.status_code == 401 and response.json()["error"] == "API token 'gone' was revoked"


def test_an_inactive_users_tokens_stop_working(api_user, api):
    api_user.is_active = False
    api_user.save()
    assert api.get("/me").status_code == 401


def test_a_user_revokes_only_their_own_tokens(api_user):
    other = UserFactory(username="other", password=None)
    _, row = api_token_create(user=other, name="theirs")
    with pytest.raises(ApiTokenError):
        api_token_revoke(user=api_user, token_id=row.pk)
    row.refresh_from_db()
    assert row.revoked_at is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "  "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "ok", "scope": "admin"}, "scope"),
        ({"name": "ok", "expires_in_days": 0}, "expires_in_days"),
        ({"name": "ok", "expires_in_days": 400}, "expires_in_days"),
    ],
)
def test_a_token_with_bad_settings_is_refused_naming_the_field(api_user, kwargs, field):
    with pytest.raises(ApiTokenError) as caught:
        api_token_create(user=api_user, **kwargs)
    assert caught.value.field == field
    assert not ApiToken.objects.exists()


def test_a_read_token_may_revoke_itself(api_user):
    reader = api_client_for(api_user, TokenScope.READ)
    response = reader.delete("/me/token")
    assert response.status_code == 200 and response.json() == {"revoked": "scripter-read"}
    assert reader.get("/me").status_code == 401


def test_the_session_cannot_revoke_a_token_it_does_not_hold(client, api_user):
    client.force_login(api_user)
    response = client.delete("/api/v1/me/token", HTTP_X_CSRFTOKEN="x")
    assert response.status_code in (400, 403)  # CSRF refuses first when enforced; else the 400 says why


def test_the_browser_session_reads_the_api(client, api_user):
    client.force_login(api_user)
    response = client.get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["token"] is None


def test_each_token_is_rate_limited_with_retry_after(api, settings):
    settings.TRIAD_API_CALLS_PER_MIN = 3
    settings.REDIS_URL = ""  # this process's own count: the test does not depend on the clock's minute
    statuses = [api.get("/me").status_code for _ in range(4)]
    if statuses != [200, 200, 200, 429]:  # the minute turned over mid-test: one more try
        statuses = [api.get("/me").status_code for _ in range(4)]
    assert statuses[-1] == 429
    response = api.get("/me")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "rate limit" in response.json()["error"]


def test_an_unknown_api_path_is_a_json_404(api):
    response = api.get("/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"].startswith("no API route '/api/v1/no-such-thing'")
    posted = Client(enforce_csrf_checks=True).post("/api/v1/no-such-thing", {})
    assert posted.status_code == 404 and posted.json()["field"] is None


def test_the_rate_limit_holds_while_redis_is_unreachable(api, settings, monkeypatch):
    from runs import ratelimit

    monkeypatch.setattr(ratelimit, "_redis_paused_until", 0.0)  # restored after: other tests reach Redis
    settings.TRIAD_API_CALLS_PER_MIN = 2
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    statuses = [api.get("/me").status_code for _ in range(3)]
    if statuses != [200, 200, 429]:  # the minute turned over mid-test: one more try
        statuses = [api.get("/me").status_code for _ in range(3)]
    assert statuses[-1] == 429
