from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from controlplane.accounts.selectors import team_ids_for
from runs.live.broadcast import RESYNC_CLOSE_CODE, RUNS_TOPIC, Feed, run_topic, user_topic
from runs.models import Run
from runs.selectors import run_list_for_user


class _LiveFeedMixin:
    """Updates come from runs.live.broadcast's per-process fan-out, not from the channel layer: one message
    per update reaches each web process, whatever the number of browsers. Where one may have been lost,
    the socket is closed with RESYNC_CLOSE_CODE and the browser reconnects and re-reads the database.

    Access is checked at connect. Each socket also watches its user's topic, on which a change of the
    user's teams (broadcast.resync_user) closes it the same way: it reconnects, and is checked again."""

    channel_layer_alias = None  # no channel-layer channel per socket: nothing is sent to it
    feed: Feed | None = None
    user_feed: Feed | None = None

    async def _feed_open(self, topic: str) -> Feed | None:
        # Before accept(): what is published from here on is queued, so the browser's backfill, which
        # starts once the socket is accepted, leaves no gap. None (the socket refused) while updates
        # cannot flow: the browser shows "reconnecting…" and tries again, rather than a silent "live".
        feed = Feed(topic, self.run_update, self._resync)  # type: ignore[attr-defined]
        user_id = self.scope["user"].pk  # type: ignore[attr-defined]
        user_feed = Feed(user_topic(user_id), self._ignore, self._resync)
        if not await feed.open():
            await self._resync()
            return None
        self.feed = feed
        if not await user_feed.open():
            await self._resync()
            return None
        self.user_feed = user_feed
        return feed

    def _start(self) -> None:
        for feed in (self.feed, self.user_feed):
            if feed is not None:
                feed.start()

    async def _feed_close(self) -> None:
        for feed in (self.feed, self.user_feed):
            if feed is not None:
                await feed.close()
        self.feed = self.user_feed = None

    async def _send_text(self, event: dict[str, Any]) -> None:
        # The update as serialised once for every browser (broadcast), sent straight to the server
        # (runs.live.routing): no JSON encoding per socket.
        message = {"type": "websocket.send", "text": event["text"]}
        await self.scope.get("triad.send", self.base_send)(message)  # type: ignore[attr-defined]

    async def _ignore(self, event: dict[str, Any]) -> None:
        """Nothing but resyncs is published on a user's topic."""

    async def _resync(self) -> None:
        await self._feed_close()  # both feeds: nothing more is sent on a socket that is closing
        await self.close(code=RESYNC_CLOSE_CODE)  # type: ignore[attr-defined]


class RunConsumer(_LiveFeedMixin, AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Live updates of one run. Backfill is the browser's job: it re-reads the database on (re)connect."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        if user is None or not user.is_authenticated or not await self._run_exists():
            await self.close(code=4403)
            return
        if await self._feed_open(run_topic(self.run_id)) is None:
            return
        await self.accept()
        self._start()

    async def disconnect(self, code: int) -> None:
        await self._feed_close()

    async def run_update(self, event: dict[str, Any]) -> None:
        await self._send_text(event)

    @database_sync_to_async
    def _run_exists(self) -> bool:
        # Another team's run does not exist for this user: refused like a missing one, before any join.
        return run_list_for_user(user=self.scope["user"]).filter(pk=self.run_id).exists()


class RunListConsumer(_LiveFeedMixin, AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Status changes of the runs of the user's teams (every run for a superuser), for the runs list.
    The teams are read at connect; a change of them closes the socket, and the reconnect reads them."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4403)
            return
        self.team_ids = await database_sync_to_async(team_ids_for)(user=user)  # None: every team
        self.run_teams: dict[int, int | None] = {}  # run id → team id, read once per run
        if await self._feed_open(RUNS_TOPIC) is None:
            return
        await self.accept()
        self._start()

    async def disconnect(self, code: int) -> None:
        await self._feed_close()

    async def run_update(self, event: dict[str, Any]) -> None:
        run_id = event["run_id"]
        if self.team_ids is not None:
            if run_id not in self.run_teams:
                self.run_teams[run_id] = await self._team_of(run_id)
            if self.run_teams[run_id] not in self.team_ids:
                return  # another team's run: nothing of it reaches this browser
        await self._send_text(event)  # the runs topic's text carries the run id

    @database_sync_to_async
    def _team_of(self, run_id: int) -> int | None:
        return Run.objects.filter(pk=run_id).values_list("team_id", flat=True).first()
