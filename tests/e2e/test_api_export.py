"""The metric export through a real ASGI server (uvicorn): streamed, every point, and served as an
asynchronous stream (Django reads a synchronous iterator whole before serving it under ASGI, saying so in
a warning on the server's log)."""

import datetime as dt
import os
import signal

import httpx
import pytest
from django.db import connection

from controlplane.accounts.models import Role, TokenScope
from controlplane.accounts.services import api_token_create
from runs.metric_store import metric_points_write
from tests.factories import RunFactory, TeamFactory, UserFactory
from tests.processes import asgi_server, free_port, wait_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="the server process needs the test's database"
    ),
]


def test_the_export_streams_every_point_through_uvicorn(transactional_db, settings, tmp_path):
    team, user = TeamFactory(name="alpha"), UserFactory(username="ada", password=None, membership=None)
    user.memberships.create(team=team, role=Role.VIEWER)  # reading is all an export needs
    run = RunFactory(created_by=user, team=team)
    now = dt.datetime.now(dt.UTC)
    metric_points_write([(run.pk, f"k{k}", s, s / 3, now) for k in range(3) for s in range(20_000)])
    token, _ = api_token_create(user=user, name="export", scope=TokenScope.READ)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "SECRET_KEY": settings.SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
        "PGAPPNAME": f"triad-export-{os.getpid()}",
    }
    port, log = free_port(), tmp_path / "web.log"
    web = asgi_server(env, port, log)
    try:
        wait_port(port, timeout_s=60)
        url = f"http://127.0.0.1:{port}/api/v1/runs/{run.pk}/metrics/export"
        with httpx.stream("GET", url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as response:
            chunks = list(response.iter_raw())
            status, kind = response.status_code, response.headers["content-type"]
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                [env["PGAPPNAME"]],
            )

    lines = b"".join(chunks).decode().splitlines()
    assert status == 200 and kind.startswith("text/csv")
    assert lines[0] == "run,key,step,value,wall_time" and len(lines) == 1 + 60_000
    assert lines[1].startswith(f"{run.pk},k0,0,0.0,") and lines[-1].startswith(f"{run.pk},k2,19999,")
    assert "consume synchronous iterators" not in log.read_text()
