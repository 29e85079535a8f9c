"""Streamed answers (exports) that stay streamed under ASGI too.

Django serves a synchronous iterator under ASGI by reading it whole into a list first (with a warning),
which for an export of millions of rows is the memory it was streamed to avoid. Under ASGI the chunks
are therefore pulled one at a time through `sync_to_async` (thread-sensitive: the request's thread, so
the database cursor stays on the connection that opened it); under WSGI (and the test client) the
iterator is served as it is."""

from collections.abc import AsyncIterator, Generator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse


def _next(chunks: Generator[bytes, None, None]) -> bytes | None:
    return next(chunks, None)


async def _pulled(chunks: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    pull = sync_to_async(_next, thread_sensitive=True)
    try:
        while (chunk := await pull(chunks)) is not None:
            yield chunk
    finally:  # a client that went away: end the generator (and its transaction) on its own thread
        await sync_to_async(chunks.close, thread_sensitive=True)()


def streamed(
    request: HttpRequest, chunks: Generator[bytes, None, None], *, content_type: str, filename: str
) -> StreamingHttpResponse:
    content = _pulled(chunks) if isinstance(request, ASGIRequest) else chunks
    response = StreamingHttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
