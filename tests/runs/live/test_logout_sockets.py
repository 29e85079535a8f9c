"""Logging out closes the user's live sockets, through the real ASGI application: the browser
reconnects, and the handshake is refused as the session is gone."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client
from django.urls import reverse

from controlplane.accounts.models import Role
from controlplane.asgi import application
from runs.live.broadcast import broadcast_run_update
from tests.factories import RunFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)  # the consumers read the database from threads


@pytest.fixture
def member_and_run():
    alpha = TeamFactory(name="alpha")
    member = UserFactory(username="max", password=None, membership__team=alpha, membership__role=Role.MEMBER)
    return member, RunFactory(created_by=member, team=alpha, dataset_version__dataset__created_by=member)


def logged_in_browser(user) -> tuple[Client, list[tuple[bytes, bytes]]]:
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return client, [(b"cookie", cookie.encode()), (b"origin", b"http://127.0.0.1")]


def run(scenario):
    """Run an async scenario, then close the database connections the consumers' threads opened."""

    async def and_close():
        try:
            return await scenario()
        finally:
            await sync_to_async(connections.close_all)()

    return asyncio.run(and_close())


async def connect(path: str, headers) -> tuple[WebsocketCommunicator, bool, object]:
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


@pytest.mark.parametrize("path", ["/ws/runs/{run}/", "/ws/runs/"], ids=["run-page", "runs-list"])
def test_logging_out_closes_the_users_sockets_and_the_reconnect_is_refused(member_and_run, path):
    member, run_ = member_and_run
    path = path.format(run=run_.pk)

    async def scenario():
        browser, headers = await sync_to_async(logged_in_browser)(member)
        socket, connected, _ = await connect(path, headers)
        assert connected
        # when the user logs out in that browser
        response = await sync_to_async(browser.post)(reverse("logout"))
        assert response.status_code == 302
        closed = await socket.receive_output(timeout=5)
        await sync_to_async(broadcast_run_update)(run_.pk, {"status": "running"})
        after = await socket.receive_nothing(timeout=0.3)
        again, reconnected, code = await connect(path, headers)
        await again.disconnect()
        return closed, after, reconnected, code

    closed, after, reconnected, code = run(scenario)

    # then the socket is closed as for a resync, nothing more reaches it, and the reconnect is refused
    assert closed == {"type": "websocket.close", "code": 4000}
    assert after
    assert (reconnected, code) == (False, 4403)


def test_another_users_logout_leaves_the_socket_open(member_and_run):
    member, run_ = member_and_run
    other = UserFactory(username="vic", password=None, membership__team=run_.team)

    async def scenario():
        _, headers = await sync_to_async(logged_in_browser)(member)
        socket, connected, _ = await connect(f"/ws/runs/{run_.pk}/", headers)
        assert connected
        other_browser, _ = await sync_to_async(logged_in_browser)(other)
        await sync_to_async(other_browser.post)(reverse("logout"))
        await sync_to_async(broadcast_run_update)(run_.pk, {"status": "running"})
        received = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return received

    assert run(scenario) == {"status": "running"}
