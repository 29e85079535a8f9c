"""Live updates through real processes: uvicorn serving Triad, a private redis-server the tests stop and
start again, WebSocket clients and a real browser."""

import asyncio
import json
import os
import signal
import threading
import urllib.request

import pytest
import websockets
from django.db import connection, connections
from django.test import Client
from playwright.sync_api import expect

from controlplane.accounts.services import membership_remove
from controlplane.orchestration import membership_changed
from runs.live.broadcast import RESYNC_CLOSE_CODE
from runs.models import MetricPoint, RunStatus
from tests.factories import TEST_TOKEN, RunFactory, UserFactory
from tests.processes import asgi_server, free_port, wait_port

pytestmark = pytest.mark.e2e


class Web:
    """One uvicorn process of the web tier."""

    def __init__(self, env: dict[str, str], log_dir):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc = asgi_server(env, self.port, log_dir / f"web-{self.port}.log")

    def post_metric(self, run_id: int, step: int) -> dict:
        body = {
            "events": [{"seq": step, "type": "metric", "step": step, "values": {"loss": 1.0 / (1 + step)}}]
        }
        request = urllib.request.Request(
            f"{self.base_url}/api/v1/runs/{run_id}/events",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {TEST_TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def ws_url(self, run_id: int) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/runs/{run_id}/"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=15)


@pytest.fixture
def web_env(transactional_db, redis_server, settings):
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": redis_server.url(0),
        "SECRET_KEY": settings.SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
        "PGAPPNAME": f"triad-live-{os.getpid()}",  # names the web processes' sessions, to end them after
    }


@pytest.fixture
def start_web(web_env, tmp_path):
    started: list[Web] = []

    def start() -> Web:
        web = Web(web_env, tmp_path)
        started.append(web)
        wait_port(web.port, timeout_s=60)
        return web

    yield start
    for web in started:
        web.stop()
    with connection.cursor() as cursor:  # sessions the stopped servers may have left half-closed
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            [web_env["PGAPPNAME"]],
        )


def watcher_cookie(run) -> str:
    client = Client()
    client.force_login(run.created_by)
    return f"sessionid={client.cookies['sessionid'].value}"


def metric_steps(message: str) -> list[int]:
    return [point["step"] for point in json.loads(message).get("metrics", [])]


def test_an_update_posted_to_one_web_process_reaches_browsers_on_another(start_web):
    run = RunFactory(status=RunStatus.RUNNING)
    ingest, watched = start_web(), start_web()
    headers = {"Cookie": watcher_cookie(run), "Origin": watched.base_url}

    async def scenario() -> list[list[int]]:
        sockets = [
            await websockets.connect(watched.ws_url(run.pk), additional_headers=headers) for _ in range(3)
        ]
        await asyncio.to_thread(ingest.post_metric, run.pk, 0)
        got = [metric_steps(await asyncio.wait_for(ws.recv(), timeout=10)) for ws in sockets]
        for ws in sockets:
            await ws.close()
        return got

    assert asyncio.run(scenario()) == [[0], [0], [0]]


def test_with_redis_restarted_mid_run_no_point_is_lost_and_the_socket_tells_the_browser_to_resync(
    start_web, redis_server
):
    run = RunFactory(status=RunStatus.RUNNING)
    web = start_web()
    cookie = watcher_cookie(run)
    headers = {"Cookie": cookie, "Origin": web.base_url}

    async def before_and_during() -> tuple[list[int], int | None, list[dict]]:
        async with websockets.connect(web.ws_url(run.pk), additional_headers=headers) as ws:
            await asyncio.to_thread(web.post_metric, run.pk, 0)
            first = metric_steps(await asyncio.wait_for(ws.recv(), timeout=10))
            redis_server.stop()
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), timeout=10)
            answers = [await asyncio.to_thread(web.post_metric, run.pk, step) for step in (1, 2, 3)]
            return first, ws.close_code, answers

    first, close_code, answers = asyncio.run(before_and_during())

    assert first == [0]
    assert close_code == RESYNC_CLOSE_CODE  # the browser reconnects and re-reads the database
    # Ingest never depended on Redis: every batch answered and landed in PostgreSQL.
    assert [a["accepted"] for a in answers] == [1, 1, 1]
    assert sorted(MetricPoint.objects.filter(run=run).values_list("step", flat=True)) == [0, 1, 2, 3]

    redis_server.start()

    async def after() -> tuple[list[int], list[int], int]:
        # As the browser does: reconnect (refused until the web process is subscribed again), read
        # the database after the last step seen, then go on live.
        step = 4
        while True:
            try:
                async with websockets.connect(web.ws_url(run.pk), additional_headers=headers) as ws:
                    backfill = await asyncio.to_thread(read_metrics, web, run.pk, cookie, after_step=0)
                    await asyncio.to_thread(web.post_metric, run.pk, step)
                    return backfill, metric_steps(await asyncio.wait_for(ws.recv(), timeout=10)), step
            except websockets.InvalidStatus:
                await asyncio.sleep(1.5)
            except websockets.ConnectionClosed as closed:  # told to resync: that update went unseen
                assert closed.rcvd is not None and closed.rcvd.code == RESYNC_CLOSE_CODE
                step += 1

    backfill, live, last = asyncio.run(after())

    assert backfill[:3] == [1, 2, 3]  # the points posted while Redis was away
    assert live == [last]
    steps = sorted(MetricPoint.objects.filter(run=run).values_list("step", flat=True))
    assert steps == list(range(last + 1))


def read_metrics(web: Web, run_id: int, cookie: str, *, after_step: int) -> list[int]:
    request = urllib.request.Request(
        f"{web.base_url}/runs/{run_id}/metrics.json?keys=loss&after_step={after_step}",
        headers={"Cookie": cookie},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return [int(step) for step, _ in json.loads(response.read())["series"]["loss"]]


@pytest.fixture
def watched_run(transactional_db):
    """A running run and its owner's session; made before the `page` fixture starts Playwright, whose
    event loop would give these ORM calls a database connection of their own that nothing closes."""
    run = RunFactory(status=RunStatus.RUNNING, created_by=UserFactory(username="live-watcher"))
    client = Client()
    client.force_login(run.created_by)
    return run, client.cookies["sessionid"].value


def test_the_run_page_catches_up_on_what_was_posted_while_redis_was_restarting(
    watched_run, start_web, redis_server, page
):
    run, session = watched_run
    web = start_web()
    page.context.add_cookies([{"name": "sessionid", "value": session, "url": web.base_url}])
    page.goto(f"{web.base_url}/runs/{run.pk}/")
    expect(page.locator("#live-state")).to_have_text("live")
    chart = page.locator('figure.chart[data-key="loss"]')

    web.post_metric(run.pk, 0)
    expect(chart).to_have_attribute("data-points", "1")

    redis_server.stop()
    expect(page.locator("#live-state")).to_have_text("reconnecting…", timeout=10_000)
    for step in (1, 2, 3):
        assert web.post_metric(run.pk, step)["accepted"] == 1
    redis_server.start()

    # The page reconnects by itself and backfills the steps it missed; then it is live again.
    expect(chart).to_have_attribute("data-points", "4", timeout=30_000)
    expect(page.locator("#live-state")).to_have_text("live", timeout=30_000)
    web.post_metric(run.pk, 4)
    expect(chart).to_have_attribute("data-points", "5", timeout=30_000)


def test_a_member_taken_out_of_the_team_loses_the_live_run_page(
    watched_run, start_web, redis_server, page, settings
):
    run, session = watched_run
    web = start_web()
    page.context.add_cookies([{"name": "sessionid", "value": session, "url": web.base_url}])
    page.goto(f"{web.base_url}/runs/{run.pk}/")
    expect(page.locator("#live-state")).to_have_text("live")

    # An admin takes the watcher out of the run's team (here, through the service, publishing to the
    # web process's Redis; in a thread of its own: Playwright's event loop runs in this one).
    settings.REDIS_URL = redis_server.url(0)
    errors: list[BaseException] = []

    def remove() -> None:
        try:
            membership_remove(team=run.team, user=run.created_by, actor=None)
            membership_changed(user_id=run.created_by.pk)  # what the team page's view does
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=remove)
    thread.start()
    thread.join()
    assert not errors

    # The page's socket is closed, its reconnect refused, and the page says so instead of retrying.
    expect(page.locator("#live-state")).to_have_text("no access to this run", timeout=15_000)
