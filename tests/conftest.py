import pytest

from tests.factories import UserFactory
from tests.processes import RedisServer


@pytest.fixture
def user(db):
    return UserFactory(username="alice")


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def redis_server(tmp_path):
    """A private redis-server that the test may stop and start (see tests/processes.py)."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
