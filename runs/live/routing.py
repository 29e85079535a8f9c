from typing import Any

from django.urls import path

from runs.live.consumers import RunConsumer, RunListConsumer

websocket_urlpatterns = [
    path("ws/runs/", RunListConsumer.as_asgi()),
    path("ws/runs/<int:run_id>/", RunConsumer.as_asgi()),
]


class LiveSendMiddleware:
    """Keeps the server's own `send` in the scope as `triad.send`, for the live feeds: an update then
    goes to each socket without passing the session middleware's wrapper (which acts on the handshake
    only): at 200 sockets a message, that wrapper was a fifth of the fan-out's CPU."""

    def __init__(self, inner: Any):
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        return await self.inner({**scope, "triad.send": send}, receive, send)
