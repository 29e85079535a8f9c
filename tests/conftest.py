import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings

from tests.factories import UserFactory
from tests.processes import RedisServer

DESELECTED = pytest.StashKey[list[str]]()


def pytest_addoption(parser):
    parser.addini("run_once", type="paths", help="paths of tests make test runs in one run (run_once)")
    parser.addini("run_once_on_postgres", type="paths", help="of those, the ones its PostgreSQL run takes")
    parser.addoption(
        "--selection-to",
        metavar="FILE",
        help="write the ids of the tests this run selects and deselects to FILE (tests/selection_check.py)",
    )


@pytest.hookimpl(tryfirst=True)  # before -m deselects by marker
def pytest_collection_modifyitems(config, items):
    roots = config.getini("run_once")
    on_postgres = config.getini("run_once_on_postgres")
    for root in [*roots, *on_postgres]:
        if not root.exists():  # a moved directory would silently leave its tests unmarked
            raise pytest.UsageError(f"pyproject.toml's run_once lists name {root}, which does not exist")
    for root in on_postgres:
        if not any(root.is_relative_to(once) for once in roots):
            raise pytest.UsageError(f"pyproject.toml's run_once_on_postgres names {root}, not under run_once")
    for item in items:
        if any(item.path.is_relative_to(root) for root in roots):
            item.add_marker(pytest.mark.run_once)
            if any(item.path.is_relative_to(root) for root in on_postgres):
                item.add_marker(pytest.mark.run_once_on_postgres)


def pytest_deselected(items):
    for item in items:
        item.config.stash.setdefault(DESELECTED, []).append(item.nodeid)


def pytest_collection_finish(session):
    target = session.config.getoption("selection_to")
    if target:
        selection = {
            "selected": [item.nodeid for item in session.items],
            "run_once": [item.nodeid for item in session.items if item.get_closest_marker("run_once")],
            "deselected": session.config.stash.get(DESELECTED, []),
        }
        Path(target).write_text(json.dumps(selection))


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
