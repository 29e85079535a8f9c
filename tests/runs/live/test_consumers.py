"""The run page's and the runs list's WebSockets, through the real ASGI application (session cookie,
origin check, runs.live.broadcast's Redis pub/sub fan-out): a user of another team is refused, and receives
nothing."""

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


def headers_for(user) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return [(b"cookie", cookie.encode()), (b"origin", b"http://127.0.0.1")]


def user_in(team, role, username):
    return UserFactory(username=username, password=None, membership__team=team, membership__role=role)


@pytest.fixture
def teams():
    alpha, beta = TeamFactory(name="alpha"), TeamFactory(name="beta")
    member = user_in(alpha, Role.MEMBER, "max")
    viewer = user_in(alpha, Role.VIEWER, "vic")
    outsider = user_in(beta, Role.ADMIN, "otto")
    run = RunFactory(created_by=member, team=alpha, dataset_version__dataset__created_by=member)
    beta_run = RunFactory(created_by=outsider, team=beta, dataset_version=run.dataset_version)
    return {"member": member, "viewer": viewer, "outsider": outsider, "run": run, "beta_run": beta_run}


def run(scenario):
    """Run an async scenario; then close the database connection the consumers opened in the thread
    that runs sync code for them, so the test database is not left with a session."""

    async def and_close():
        try:
            return await scenario()
        finally:
            await sync_to_async(connections.close_all)()

    return asyncio.run(and_close())


async def connect(path: str, user) -> tuple[WebsocketCommunicator, bool, object]:
    communicator = WebsocketCommunicator(application, path, headers=await sync_to_async(headers_for)(user))
    connected, code = await communicator.connect(timeout=5)
    return communicator, connected, code


@pytest.mark.parametrize(("who", "accepted"), [("member", True), ("viewer", True), ("outsider", False)])
def test_the_run_socket_accepts_its_teams_roles_and_refuses_another_team(teams, who, accepted):
    async def scenario():
        communicator, connected, code = await connect(f"/ws/runs/{teams['run'].pk}/", teams[who])
        received = None
        if connected:
            await sync_to_async(broadcast_run_update)(teams["run"].pk, {"status": "running"})
            received = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return connected, code, received

    connected, code, received = run(scenario)

    assert connected is accepted
    if accepted:
        assert received == {"status": "running"}
    else:
        assert code == 4403


def test_the_runs_list_socket_carries_only_the_users_teams_runs(teams):
    async def scenario():
        communicator, connected, _ = await connect("/ws/runs/", teams["outsider"])
        assert connected
        # Their own run's change comes after the other team's: had the first leaked, it would come first.
        await sync_to_async(broadcast_run_update)(teams["run"].pk, {"status": "cancelling"})
        await sync_to_async(broadcast_run_update)(teams["beta_run"].pk, {"status": "running"})
        first = await communicator.receive_json_from(timeout=5)
        nothing_more = await communicator.receive_nothing(timeout=0.5)
        await communicator.disconnect()
        return first, nothing_more

    first, nothing_more = run(scenario)

    assert first == {"run_id": teams["beta_run"].pk, "status": "running"}
    assert nothing_more


def test_a_socket_without_a_login_is_refused(teams):
    async def scenario():
        communicator = WebsocketCommunicator(
            application, f"/ws/runs/{teams['run'].pk}/", headers=[(b"origin", b"http://127.0.0.1")]
        )
        connected, code = await communicator.connect(timeout=5)
        await communicator.disconnect()
        return connected, code

    assert run(scenario) == (False, 4403)


def as_admin_of(team, username="ada"):
    """A client logged in as an admin of the team: membership changes go through the team page's views,
    which close the sockets of the user whose teams changed (controlplane.orchestration)."""
    client = Client()
    client.force_login(user_in(team, Role.ADMIN, username))
    return client


def test_leaving_the_team_closes_the_run_socket_and_the_reconnect_is_refused(teams):
    team = teams["run"].team
    admin = as_admin_of(team)

    async def scenario():
        communicator, connected, _ = await connect(f"/ws/runs/{teams['run'].pk}/", teams["member"])
        assert connected
        # when an admin takes the member out of the run's team
        await sync_to_async(admin.post)(
            reverse("accounts:team-remove", kwargs={"team_id": team.pk}), {"user": teams["member"].pk}
        )
        closed = await communicator.receive_output(timeout=5)
        await sync_to_async(broadcast_run_update)(teams["run"].pk, {"status": "running"})
        after = await communicator.receive_nothing(timeout=0.3)
        again, reconnected, code = await connect(f"/ws/runs/{teams['run'].pk}/", teams["member"])
        await again.disconnect()
        return closed, after, reconnected, code

    closed, after, reconnected, code = run(scenario)

    # then the open socket is closed for a resync, nothing more reaches it, and the reconnect is refused
    assert closed == {"type": "websocket.close", "code": 4000}
    assert after
    assert (reconnected, code) == (False, 4403)


def test_joining_a_team_reconnects_the_runs_list_to_its_runs(teams):
    team = teams["run"].team
    admin = as_admin_of(team)

    async def scenario():
        communicator, connected, _ = await connect("/ws/runs/", teams["outsider"])
        assert connected
        await sync_to_async(admin.post)(
            reverse("accounts:team", kwargs={"team_id": team.pk}),
            {"username": teams["outsider"].username, "role": Role.VIEWER},
        )
        closed = await communicator.receive_output(timeout=5)
        again, reconnected, _ = await connect("/ws/runs/", teams["outsider"])
        await sync_to_async(broadcast_run_update)(teams["run"].pk, {"status": "cancelling"})
        received = await again.receive_json_from(timeout=5)
        await again.disconnect()
        return closed, reconnected, received

    closed, reconnected, received = run(scenario)

    assert closed == {"type": "websocket.close", "code": 4000}
    assert reconnected and received == {"run_id": teams["run"].pk, "status": "cancelling"}


def test_a_membership_change_of_someone_else_leaves_the_socket_open(teams):
    team = teams["run"].team
    admin = as_admin_of(team)

    async def scenario():
        communicator, connected, _ = await connect(f"/ws/runs/{teams['run'].pk}/", teams["member"])
        assert connected
        await sync_to_async(admin.post)(
            reverse("accounts:team", kwargs={"team_id": team.pk}),
            {"username": teams["viewer"].username, "role": Role.MEMBER},
        )
        await sync_to_async(broadcast_run_update)(teams["run"].pk, {"status": "running"})
        received = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return received

    assert run(scenario) == {"status": "running"}
