"""Django's ASGI handler, with a request's middleware chain and view run in one hop to a worker thread
that outlives the request.

Every view of Triad is synchronous. Django's own ASGI handler runs the middleware chain in async mode,
and each sync hook of a MiddlewareMixin middleware (process_request, process_view, process_response:
fifteen with the settings' MIDDLEWARE) then takes a hop of its own from the event loop to the worker
thread and back; and it starts a thread for each request (a ThreadSensitiveContext of its own), joined
at the end. Each hop is a wake-up of the loop and of the thread, paid by every request and, under load,
by everything else on the loop too: the live fan-out to WebSockets waits out the ingest request that
feeds it. Here the chain is built in sync mode and called once, as WSGI would, and the request's thread
is one kept from an earlier request. A request still has a thread to itself (its database connection
and thread-sensitive calls, as before), so concurrent requests still run side by side.
"""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import FileResponse, HttpRequest, HttpResponseBase

# Threads kept waiting for the next request; more are started while more requests are in flight, and
# those beyond this many are let go when their request ends.
IDLE_THREADS_KEPT = 16


class OneHopASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        super().__init__()
        self._idle: list[ThreadPoolExecutor] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        # One thread, one call at a time: what asgiref asks of a context's executor. A request ends only
        # once its thread's calls have (a cancelled sync_to_async waits for its call), even when the
        # client went away: the thread is free for the next request.
        if self._idle:
            executor = self._idle.pop()
        else:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            if len(self._idle) < IDLE_THREADS_KEPT:
                self._idle.append(executor)
            else:
                executor.shutdown(wait=False)

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)  # the chain as WSGI builds it: sync end to end

    async def run_get_response(self, request: HttpRequest) -> HttpResponseBase:
        # thread_sensitive: the one worker thread Django's adapters use, so a request keeps its
        # database connection as before.
        response = await sync_to_async(self.get_response, thread_sensitive=True)(request)
        response._handler_class = self.__class__  # type: ignore[attr-defined]
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size  # the server chunks the file itself
        return response


def asgi_application() -> Any:
    """What django.core.asgi.get_asgi_application answers, with the handler above."""
    django.setup(set_prefix=False)
    return OneHopASGIHandler()
