from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import override_settings

from tests.factories import UserFactory
from tests.processes import RedisServer


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing():
    """Users made by the tests get one-iteration hashes (tests/hashers.py); the default hashers stay
    listed after it, so a hash made elsewhere still verifies."""
    with override_settings(
        PASSWORD_HASHERS=["tests.hashers.OneIterationPBKDF2PasswordHasher", *settings.PASSWORD_HASHERS]
    ):
        yield


@pytest.fixture
def user(db):
    return UserFactory(username="alice")


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def bwrap_missing(monkeypatch):
    """As on a node without bubblewrap: the sandbox's probe finds no binary (and nobody opted in)."""
    from workers.sandbox import batch, bwrap

    monkeypatch.setattr(bwrap, "BWRAP", "/nonexistent/bwrap")
    monkeypatch.setattr(batch, "_warned", False)
    monkeypatch.delenv(batch.UNISOLATED_ENV, raising=False)
    monkeypatch.delenv(batch.BACKEND_ENV, raising=False)
    batch.bwrap_unavailable_reason.cache_clear()
    yield
    monkeypatch.undo()
    batch.bwrap_unavailable_reason.cache_clear()


@pytest.fixture
def eager() -> Iterator[None]:
    """Celery runs each task where it is sent: a node's work, then the control queue's record of it."""
    from controlplane.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def redis_server(tmp_path):
    """A private redis-server that the test may stop and start (see tests/processes.py)."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_hf_dir(tmp_path_factory):
    """A real Hugging Face model directory (a few hundred K parameters; workers/trainer/tiny_hf.py),
    built once per session. Tests that change files copy it first."""
    from workers.trainer.tiny_hf import build_tiny_hf

    return build_tiny_hf(tmp_path_factory.mktemp("tiny-hf") / "model")
