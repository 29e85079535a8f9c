"""The web process's HTTP handler (controlplane/http_handler.py): a request's middleware and view run in
one hop to a thread that later requests reuse; concurrent requests still run side by side; a request
whose client went away ends once its view has, and its thread serves the next."""

import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from asgiref.testing import ApplicationCommunicator

from controlplane import http_handler
from controlplane.http_handler import OneHopASGIHandler
from tests.controlplane import handler_urls


@pytest.fixture
def handler(settings: Any) -> OneHopASGIHandler:
    settings.ROOT_URLCONF = "tests.controlplane.handler_urls"
    handler_urls.release.clear()
    handler_urls.finished.clear()
    for event in handler_urls.arrived.values():
        event.clear()
    yield OneHopASGIHandler()
    handler_urls.release.set()  # a view still waiting ends now


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }


async def _start(handler: OneHopASGIHandler, path: str) -> ApplicationCommunicator:
    communicator = ApplicationCommunicator(handler, _scope(path))
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    return communicator


async def _answer(communicator: ApplicationCommunicator, timeout: float = 15) -> tuple[int, dict[str, Any]]:
    start = await communicator.receive_output(timeout)
    body = b""
    while True:
        message = await communicator.receive_output(timeout)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(timeout)
    return start["status"], json.loads(body)


def test_a_request_runs_its_middleware_and_view_in_one_hop_on_a_thread_the_next_request_reuses(
    handler: OneHopASGIHandler, monkeypatch: pytest.MonkeyPatch
):
    submitted: list[str] = []

    class Counted(ThreadPoolExecutor):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
            submitted.append(getattr(fn, "__qualname__", repr(fn)))
            return super().submit(fn, *args, **kwargs)

    monkeypatch.setattr(http_handler, "ThreadPoolExecutor", Counted)

    async def two_in_a_row() -> list[tuple[int, dict[str, Any]]]:
        return [await _answer(await _start(handler, "/where/")) for _ in range(2)]

    (first_status, first), (second_status, second) = asyncio.run(two_in_a_row())

    assert first_status == second_status == 200
    assert first["thread"] != threading.get_ident()
    assert second["thread"] == first["thread"]  # the thread outlived the first request
    # Per request: the request_started receivers, the middleware chain with the view, the response's
    # close (request_finished). Django's own chain takes a hop per hook of each middleware besides.
    assert len(submitted) == 6, submitted


def test_concurrent_requests_run_side_by_side_on_threads_of_their_own(handler: OneHopASGIHandler):
    async def both() -> list[tuple[int, dict[str, Any]]]:
        first = await _start(handler, "/meet/first/")
        second = await _start(handler, "/meet/second/")
        return list(await asyncio.gather(_answer(first), _answer(second)))

    (first_status, first), (second_status, second) = asyncio.run(both())

    assert first_status == second_status == 200
    assert first["met"] and second["met"]  # each view ran while the other was running
    assert first["thread"] != second["thread"]


def test_a_request_whose_client_left_ends_with_its_view_and_its_thread_serves_the_next(
    handler: OneHopASGIHandler,
):
    async def left_then_next() -> tuple[bool, int, dict[str, Any]]:
        gone = await _start(handler, "/wait/first/")
        await asyncio.to_thread(handler_urls.arrived["first"].wait, 10)
        await gone.send_input({"type": "http.disconnect"})
        over, _ = await asyncio.wait([gone.future], timeout=0.5)
        assert not over  # not over while its view runs
        handler_urls.release.set()
        await gone.wait(15)
        ended = handler_urls.finished.is_set()
        return ended, *await _answer(await _start(handler, "/where/"))

    ended, status, answer = asyncio.run(left_then_next())

    assert ended  # the view had finished when the request ended
    assert status == 200
    assert answer["thread"] == handler_urls.threads["first"]
