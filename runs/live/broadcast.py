"""Push run updates to browsers after the data is committed: one message per update, fanned out inside
each web process.

Publishing (synchronous, from the committing thread) serialises the update once. With REDIS_URL set it
is one Redis PUBLISH per topic, whatever the number of browsers: every web process that has a browser
watching the topic is subscribed to it, receives the message once and hands it to its own WebSockets.
Without REDIS_URL (the embedded mode, one ASGI process) it goes straight to this process's watchers.

Postgres is the record and this is transport. Wherever a message may have been lost — Redis went away,
a publish failed, a browser could not keep up — the watchers concerned are told to resync: the
consumer closes the WebSocket with RESYNC_CLOSE_CODE, and the browser reconnects and backfills from the
database. A broadcast failure never fails the ingest that already committed.
"""

import asyncio
import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction

from controlplane.redis_client import redis_client

logger = logging.getLogger(__name__)

RUNS_TOPIC = "runs"  # status changes of every run, for the runs list
RESYNC_CLOSE_CODE = 4000  # "reconnect and read the database again"
_RESYNC = b"\x00resync "  # + the wall time of a lost message: a control message (never valid JSON)
_CLOCK_SKEW_S = 0.5  # between web hosts: a watcher opened this soon after a loss is resynced too
_FEED_MAX = 1000  # messages queued for one WebSocket before it is told to resync instead
_SUBSCRIBE_WAIT_S = 5.0
_PUBLISH_PAUSE_S = 1.0  # after a failed publish, later ones are skipped (and resynced) this long


def run_topic(run_id: int) -> str:
    return f"run-{run_id}"


def user_topic(user_id: int) -> str:
    """Every live socket of the user also watches this topic: nothing is published on it but
    resyncs, when what the user may see has changed (see `resync_user`)."""
    return f"user-{user_id}"


def _channel_prefix() -> str:
    """Redis pub/sub channels are shared by every database number of a server: the name carries the
    Redis database and the PostgreSQL database, so two deployments (or test runs) on one Redis never
    see each other's runs."""
    redis_db = urlsplit(settings.REDIS_URL).path.strip("/") or "0"
    return f"triad:live:{redis_db}:{settings.DATABASES['default']['NAME']}:"


def broadcast_run_update(run_id: int, payload: dict[str, Any]) -> None:
    """Send `payload` to the browsers watching the run (and a status change to the runs list too),
    once the current transaction commits. The request does not wait for it: serialising and
    publishing happen on this process's outbox thread, in order."""
    transaction.on_commit(lambda: _outbox.put((run_id, payload)))


def resync_user(user_id: int) -> None:
    """Once the current transaction commits, close every live socket of the user, in every web
    process, with RESYNC_CLOSE_CODE: the browsers reconnect, and each socket's access is checked
    again at connect (a run of a team they left is refused with 4403; the runs list re-reads their
    teams). For a membership that began, changed or ended."""
    transaction.on_commit(lambda: _outbox.put(_Resync(frozenset({user_topic(user_id)}))))


def resync_on_logout(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """Django's `user_logged_out` (auth plumbing, not a domain flow): close every live socket of the
    user, in every web process, as `resync_user` does. The browsers reconnect and the handshake is
    refused, as their session is gone; in another browser where the user is still logged in, the
    reconnect is accepted again."""
    if user is not None and user.pk is not None:
        resync_user(user.pk)


class _Resync:
    """An outbox item: resync the watchers of these topics everywhere, now."""

    def __init__(self, topics: frozenset[str]) -> None:
        self.topics = topics


def publish(messages: list[tuple[str, str]]) -> None:
    """Deliver (topic, JSON text) pairs to every web process's watchers, in order, from the outbox
    thread. Returns at once and never raises."""
    _outbox.put(messages)


def _updates(run_id: int, payload: dict[str, Any]) -> list[tuple[str, str]]:
    messages = [(run_topic(run_id), json.dumps(payload))]
    if "status" in payload:
        messages.append((RUNS_TOPIC, json.dumps({"run_id": run_id, **payload})))
    return messages


def _deliver(messages: list[tuple[str, str]]) -> None:
    try:
        if settings.REDIS_URL:
            _publisher.publish(messages)
        else:
            for hub in _hubs_snapshot():
                hub.call_soon(hub.deliver_many, messages)
    except Exception as exc:  # transport must never fail the ingest that already committed
        logger.warning("live broadcast failed (%s); browsers will resync from the database", exc)


def _deliver_resync(topics: frozenset[str]) -> None:
    if not settings.REDIS_URL:
        _resync_local(set(topics))
        return
    try:
        _publisher.publish([], resync=topics)
    except Exception as exc:  # marked lost: the next publish that gets through carries the resync
        logger.warning("live resync of %s failed (%s); it goes out with the next update", sorted(topics), exc)


class _Outbox:
    """A queue and the one thread that empties it: updates leave in the order they were committed,
    and an ingest request returns without waiting on JSON encoding or Redis."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def put(self, item: Any) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name="live-outbox", daemon=True)
                    self._thread.start()
        self._queue.put(item)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if isinstance(item, _Resync):
                    _deliver_resync(item.topics)
                else:
                    _deliver(_updates(*item) if isinstance(item, tuple) else item)
            except Exception:  # never let the thread die on one bad update
                logger.exception("live broadcast: an update could not be sent")


_outbox = _Outbox()


# --- publishing through Redis -------------------------------------------------------------------


class _RedisPublisher:
    """One synchronous client per process. A failed publish marks its topics; the next publish that
    gets through first tells their watchers in every process, those opened before the loss (a later
    one backfilled what was lost from the database), to resync."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._client: Any = None
        self._client_url = ""
        self._unsent: dict[str, float] = {}  # topic → wall time of its last lost message
        self._paused_until = 0.0

    def _redis(self) -> Any:
        if self._client is None or self._client_url != settings.REDIS_URL:
            self._client_url = settings.REDIS_URL
            # Fails fast (redis_client): the caller is an ingest request.
            self._client = redis_client(settings.REDIS_URL, socket_timeout=2)
        return self._client

    def publish(self, messages: list[tuple[str, str]], resync: frozenset[str] = frozenset()) -> None:
        """`messages`, after a resync of every topic that lost one before (and of `resync`)."""
        topics = {topic for topic, _ in messages} | resync
        with self._lock:
            if time.monotonic() < self._paused_until:
                self._lost(topics)
                return
            now = time.time()
            self._unsent.update(dict.fromkeys(resync, now))
            pending = dict(self._unsent)
        try:
            prefix = _channel_prefix()
            pipe = self._redis().pipeline(transaction=False)
            for topic, lost_at in pending.items():
                pipe.publish(prefix + topic, _RESYNC + repr(lost_at).encode())
            for topic, text in messages:
                pipe.publish(prefix + topic, text)
            pipe.execute()
        except Exception:
            with self._lock:
                self._lost(topics)
                self._paused_until = time.monotonic() + _PUBLISH_PAUSE_S
            raise
        with self._lock:
            for topic, lost_at in pending.items():
                if self._unsent.get(topic) == lost_at:
                    del self._unsent[topic]

    def _lost(self, topics: set[str]) -> None:
        now = time.time()
        self._unsent.update(dict.fromkeys(topics, now))
        _resync_local(topics)  # this process's browsers missed it for sure


_publisher = _RedisPublisher()


# --- one hub per event loop: who watches what, here -------------------------------------------

Handler = Callable[[dict[str, Any]], Awaitable[None]]


class Feed:
    """What one WebSocket receives: updates of its topic, in order, through a bounded queue. `handler`
    gets events shaped `{"type": "run.update", "run_id", "payload", "text"}` (`text`: the payload as
    JSON, serialised once for every browser); `resync` is awaited when messages may have been lost."""

    def __init__(self, topic: str, handler: Handler, resync: Callable[[], Awaitable[None]]):
        self.topic = topic
        self._handler = handler
        self._resync = resync
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=_FEED_MAX)
        self._task: asyncio.Task[None] | None = None
        self._hub: LiveHub | None = None
        self.opened_at = 0.0

    async def open(self) -> bool:
        """Start receiving (queued until `start`). Call before accepting the WebSocket, so that the
        browser's backfill, which starts once it is accepted, cannot miss what is published meanwhile.
        False while live updates cannot flow (Redis away): refuse the socket, the browser retries."""
        self.opened_at = time.time()
        hub = _hub_for_running_loop()
        if not await hub.watch(self):
            return False
        self._hub = hub
        return True

    def start(self) -> None:
        """Send what arrives, from now on (after the WebSocket is accepted)."""
        self._task = asyncio.get_running_loop().create_task(self._pump())

    async def close(self) -> None:
        if self._hub is not None:
            await self._hub.unwatch(self)
            self._hub = None
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self._task = None

    def put(self, event: dict[str, Any] | None) -> None:
        """From the hub: an event, or None for "resync"."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:  # a browser that cannot keep up reads the database instead
            self._drain()
            self._queue.put_nowait(None)

    def _drain(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    async def _pump(self) -> None:
        while True:
            event = await self._queue.get()
            if event is None:
                self._drain()
                await self._close_for_resync()
                return
            try:
                await self._handler(event)
            except Exception as exc:  # mostly a browser gone between two messages
                logger.info("live feed of %s: sending failed (%r); resyncing", self.topic, exc)
                await self._close_for_resync()
                return

    async def _close_for_resync(self) -> None:
        try:
            await self._resync()
        except Exception as exc:  # the socket is gone already: nothing left to tell
            logger.debug("live feed of %s: resync failed (%r)", self.topic, exc)


class LiveHub:
    """This event loop's watchers by topic, and (with Redis) the one subscription that feeds them."""

    def __init__(self, loop: asyncio.AbstractEventLoop, redis_url: str, channel_prefix: str):
        self.loop = loop
        self._redis_url = redis_url
        self._prefix = channel_prefix
        self._feeds: dict[str, set[Feed]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._pubsub: Any = None  # set while subscribed
        self._tried = asyncio.Event()  # the first connection attempt has ended, well or not
        self._lost = False  # the connection broke and is not back yet
        self._subscribed: set[str] = set()
        self._pending: dict[bytes, asyncio.Future[None]] = {}

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run `callback` on this hub's loop, from any thread; nothing if the loop has closed."""
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(callback, *args)

    async def watch(self, feed: Feed) -> bool:
        """True once the feed receives everything published from now on; False, with nothing
        registered, while Redis cannot be reached."""
        if self._redis_url:
            if self._reader is None:
                self._reader = self.loop.create_task(self._read_forever())
            if not self._tried.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._tried.wait(), _SUBSCRIBE_WAIT_S)
            if self._pubsub is None:
                return False
        self._feeds.setdefault(feed.topic, set()).add(feed)
        if self._pubsub is not None and feed.topic not in self._subscribed:
            # Should the connection break meanwhile, the reader resyncs every feed, this one too.
            await self._subscribe(self._pubsub, feed.topic)
        return True

    async def unwatch(self, feed: Feed) -> None:
        feeds = self._feeds.get(feed.topic)
        if feeds is None or feed not in feeds:
            return
        feeds.discard(feed)
        if feeds:
            return
        del self._feeds[feed.topic]
        self._subscribed.discard(feed.topic)
        if self._pubsub is not None:
            try:
                await self._pubsub.unsubscribe(self._prefix + feed.topic)
            except Exception:  # the reader notices a broken connection and starts afresh
                logger.debug("unsubscribe from %s failed", feed.topic, exc_info=True)

    async def _subscribe(self, pubsub: Any, topic: str) -> None:
        channel = (self._prefix + topic).encode()
        waiter = self._pending.get(channel)
        if waiter is None:
            waiter = self._pending[channel] = self.loop.create_future()
            try:
                await pubsub.subscribe(channel)
            except Exception:  # the reader notices a broken connection and resyncs everyone
                logger.debug("subscribe to %s failed", topic, exc_info=True)
                return
        try:
            await asyncio.wait_for(asyncio.shield(waiter), _SUBSCRIBE_WAIT_S)
        except TimeoutError:
            return
        if pubsub is self._pubsub and topic in self._feeds:
            self._subscribed.add(topic)

    def deliver_many(self, messages: list[tuple[str, str]]) -> None:
        for topic, text in messages:
            self.deliver(topic, text)

    def deliver(self, topic: str, text: str) -> None:
        feeds = self._feeds.get(topic)
        if not feeds:
            return
        payload = json.loads(text)
        run_id = payload.pop("run_id", None) if topic == RUNS_TOPIC else int(topic.removeprefix("run-"))
        event = {"type": "run.update", "run_id": run_id, "payload": payload, "text": text}
        for feed in list(feeds):
            feed.put(event)

    def resync(self, topics: set[str] | None = None, opened_before: float | None = None) -> None:
        """Tell the feeds of `topics` (all: None) to resync; only those opened before a time, if given."""
        for topic, feeds in list(self._feeds.items()):
            if topics is None or topic in topics:
                for feed in list(feeds):
                    if opened_before is None or feed.opened_at < opened_before:
                        feed.put(None)

    async def _read_forever(self) -> None:
        from redis import asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # No silent reconnects: a dropped connection must surface here, since it may have lost messages.
        client = aioredis.Redis.from_url(
            self._redis_url, socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)
        )
        delay = 0.2
        while True:
            pubsub: Any = client.pubsub()
            try:
                await self._connect(pubsub)
                delay = 0.2
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._pubsub = None
                self._subscribed.clear()
                for waiter in self._pending.values():
                    if not waiter.done():
                        waiter.set_result(None)
                self._pending.clear()
                if not self._lost:
                    logger.warning("live updates: lost Redis (%s); browsers resync from the database", exc)
                    self._lost = True
                    self.resync()
                self._tried.set()
                try:
                    await pubsub.aclose()
                except Exception:
                    logger.debug("closing a broken pubsub connection failed", exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _connect(self, pubsub: Any) -> None:
        """Subscribe to every watched topic and wait for Redis to confirm each, so that nothing
        published after this returns is missed."""
        topics = set(self._feeds)
        # Always subscribed to something, so that the connection can be read at any time.
        channels = {(self._prefix + t).encode() for t in [*topics, "_"]}
        await pubsub.subscribe(*channels)
        deadline = time.monotonic() + _SUBSCRIBE_WAIT_S
        while channels:
            if time.monotonic() > deadline:
                raise TimeoutError("Redis did not confirm the subscriptions")
            message = await pubsub.get_message(timeout=0.5)
            if message is not None and message["type"] in (b"subscribe", "subscribe"):
                channels.discard(message["channel"])
            elif message is not None:
                self._handle(message)
        self._pubsub, self._subscribed = pubsub, topics
        self._tried.set()
        if self._lost:
            self._lost = False
            logger.warning("live updates: Redis is back; browsers resync from the database")
            self.resync()  # whoever watched while it was away may have missed something

    async def _read(self, pubsub: Any) -> None:
        idle = 0.0
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                idle += 1.0
                if idle >= 10.0:  # a half-open connection shows itself on a ping
                    await pubsub.ping()
                    idle = 0.0
                continue
            idle = 0.0
            self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        kind, channel = message["type"], message["channel"]
        if kind in (b"subscribe", "subscribe"):
            waiter = self._pending.pop(channel, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif kind in (b"message", "message"):
            topic = channel.decode().removeprefix(self._prefix)
            if message["data"].startswith(_RESYNC):
                lost_at = float(message["data"][len(_RESYNC) :])
                self.resync({topic}, opened_before=lost_at + _CLOCK_SKEW_S)
                return
            try:
                self.deliver(topic, message["data"].decode())
            except Exception:
                logger.warning("live updates: a bad message on %s", topic, exc_info=True)


_hubs: dict[asyncio.AbstractEventLoop, LiveHub] = {}
_hubs_lock = threading.Lock()


def _hub_for_running_loop() -> LiveHub:
    loop = asyncio.get_running_loop()
    with _hubs_lock:
        hub = _hubs.get(loop)
        if hub is None:
            for stale in [old for old in _hubs if old.is_closed()]:
                del _hubs[stale]
            redis_url = settings.REDIS_URL or ""
            hub = _hubs[loop] = LiveHub(loop, redis_url, _channel_prefix() if redis_url else "")
        return hub


def _hubs_snapshot() -> list[LiveHub]:
    with _hubs_lock:
        return [hub for loop, hub in _hubs.items() if not loop.is_closed()]


def _resync_local(topics: set[str]) -> None:
    for hub in _hubs_snapshot():
        hub.call_soon(hub.resync, topics)
