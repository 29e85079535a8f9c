"""/healthz: what a load balancer probes. No login; the answer names each check and whether it passed,
nothing more. Runs on both databases: on the embedded default, Redis and the broker are not configured
and pass; on PostgreSQL with Redis, each is reached for real."""

import json

import pytest
from django.conf import settings

from tests.processes import free_port


def _get(client):
    response = client.get("/healthz")
    return response, json.loads(response.content)


@pytest.mark.django_db
def test_healthz_answers_ok_without_a_login_for_what_is_configured(client):
    response, body = _get(client)

    assert response.status_code == 200, body
    assert response["Cache-Control"].startswith("max-age=0")  # never a cached "ok"
    expected_redis = "ok" if settings.REDIS_URL else "not configured"
    expected_broker = "not configured" if settings.CELERY_BROKER_URL.startswith("filesystem") else "ok"
    assert body == {
        "status": "ok",
        "checks": {"database": "ok", "redis": expected_redis, "broker": expected_broker},
    }


@pytest.mark.django_db
def test_a_dead_redis_fails_the_probe_with_503_naming_only_the_check(client, settings):
    dead = free_port()
    settings.REDIS_URL = f"redis://127.0.0.1:{dead}/0"

    response, body = _get(client)

    assert response.status_code == 503
    assert body["status"] == "failed"
    assert body["checks"]["redis"] == "failed"
    assert body["checks"]["database"] == "ok"
    assert str(dead) not in response.content.decode()  # no address, no error text for an anonymous caller


@pytest.mark.django_db
def test_a_dead_broker_fails_the_probe_with_503(client, settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/1"

    response, body = _get(client)

    assert response.status_code == 503
    assert body["checks"]["broker"] == "failed"
    assert body["status"] == "failed"


def test_healthz_is_not_redirected_to_https_where_everything_else_is(client, settings):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/runs/").status_code == 301
    assert client.get("/healthz").status_code in (200, 503)
