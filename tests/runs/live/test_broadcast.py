"""The live fan-out: one message per update reaches each web process, which hands it to its own
WebSockets; where one may have been lost, the watchers are told to resync from the database."""

import asyncio
import json
import time

import pytest

from runs.live import broadcast
from runs.live.broadcast import Feed, publish, run_topic
from tests.processes import free_port


class Watcher:
    """What a consumer does with a feed, recorded."""

    def __init__(self, topic: str):
        self.events: list[dict] = []
        self.resyncs = 0
        self.feed = Feed(topic, self._handle, self._resync)

    async def _handle(self, event: dict) -> None:
        self.events.append(event)

    async def _resync(self) -> None:
        self.resyncs += 1

    async def open(self) -> "Watcher":
        await self.feed.open()
        self.feed.start()
        return self


async def until(predicate, timeout_s: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def steps(watcher: Watcher) -> list[int]:
    return [p["step"] for e in watcher.events for p in e["payload"].get("metrics", [])]


def metric_update(run_id: int, step: int) -> list[tuple[str, str]]:
    return [(run_topic(run_id), json.dumps({"metrics": [{"key": "loss", "step": step, "value": 0.5}]}))]


@pytest.fixture
def fresh_publisher(monkeypatch):
    """No failure remembered from another test."""
    monkeypatch.setattr(broadcast, "_publisher", broadcast._RedisPublisher())


def test_in_the_embedded_mode_an_update_reaches_every_watcher_of_its_run_and_no_other(settings):
    settings.REDIS_URL = ""

    async def scenario():
        first, second = await Watcher(run_topic(1)).open(), await Watcher(run_topic(1)).open()
        other = await Watcher(run_topic(2)).open()
        await asyncio.to_thread(publish, metric_update(1, 7))  # from a thread, as a committing view does
        await until(lambda: first.events and second.events, what="both watchers of run 1")
        await asyncio.sleep(0.1)
        return first, second, other

    first, second, other = asyncio.run(scenario())

    assert steps(first) == steps(second) == [7]
    assert first.events[0]["text"] == metric_update(1, 7)[0][1]  # serialised once, sent as is
    assert other.events == []


@pytest.mark.django_db
def test_through_redis_one_publish_reaches_the_watchers_in_order(settings, fresh_publisher, redis_server):
    settings.REDIS_URL = redis_server.url(3)

    async def scenario():
        watchers = [await Watcher(run_topic(5)).open() for _ in range(50)]
        for step in range(20):
            await asyncio.to_thread(publish, metric_update(5, step))
        await until(lambda: all(len(w.events) == 20 for w in watchers), what="20 updates on 50 watchers")
        return watchers

    watchers = asyncio.run(scenario())

    assert all(steps(w) == list(range(20)) for w in watchers)
    assert all(w.resyncs == 0 for w in watchers)


def test_the_runs_list_topic_carries_the_run_id(settings):
    settings.REDIS_URL = ""

    async def scenario():
        watcher = await Watcher(broadcast.RUNS_TOPIC).open()
        text = json.dumps({"run_id": 9, "status": "running", "status_message": ""})
        await asyncio.to_thread(publish, [(broadcast.RUNS_TOPIC, text)])
        await until(lambda: watcher.events, what="the status change")
        return watcher

    event = asyncio.run(scenario()).events[0]

    assert event["run_id"] == 9
    assert event["payload"] == {"status": "running", "status_message": ""}


def test_with_redis_unreachable_a_watcher_is_refused_and_publishing_never_raises(settings, fresh_publisher):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there

    async def scenario() -> bool:
        opened = await Watcher(run_topic(3)).feed.open()
        await asyncio.to_thread(publish, metric_update(3, 1))
        return opened

    assert asyncio.run(scenario()) is False


@pytest.mark.django_db
def test_watchers_resync_when_redis_goes_away_and_when_it_is_back_then_updates_flow_again(
    settings, fresh_publisher, redis_server
):
    settings.REDIS_URL = redis_server.url(4)

    async def scenario():
        before = await Watcher(run_topic(8)).open()
        await asyncio.to_thread(publish, metric_update(8, 0))
        await until(lambda: before.events, what="the first update")

        redis_server.stop()
        await until(lambda: before.resyncs, what="the watcher to be told Redis went away")
        # A browser reconnecting while Redis is away is refused (it shows "reconnecting…" and retries)
        # rather than let in to a feed that cannot flow.
        refused = not await asyncio.wait_for(Feed(run_topic(8), noop, noop).open(), timeout=2)
        await asyncio.to_thread(publish, metric_update(8, 1))  # lost: nothing to carry it

        redis_server.start()
        after = None
        while after is None:  # as the browser retries, every 1.5 s
            await asyncio.sleep(1.5)
            watcher = Watcher(run_topic(8))
            if await watcher.feed.open():
                watcher.feed.start()
                after = watcher
        await asyncio.to_thread(publish, metric_update(8, 2))
        await until(lambda: steps(after) == [2], what="an update through the restarted Redis")
        return before, refused, after

    before, refused, after = asyncio.run(scenario())

    assert steps(before) == [0] and before.resyncs == 1
    assert refused
    # It connected after the loss, so its backfill read what was lost: the publisher's late resync
    # (for the update it could not send) spares it.
    assert after.resyncs == 0


async def noop(*args) -> None:
    return None


def test_a_watcher_that_cannot_keep_up_is_told_to_resync_instead_of_queueing_forever(settings):
    settings.REDIS_URL = ""

    async def scenario():
        release = asyncio.Event()
        watcher = Watcher(run_topic(4))

        async def stuck(event: dict) -> None:  # a browser that reads nothing
            watcher.events.append(event)
            await release.wait()

        watcher.feed._handler = stuck
        await watcher.open()
        sentinel = await Watcher(run_topic(99)).open()
        for step in range(broadcast._FEED_MAX + 10):
            publish(metric_update(4, step))
        publish(metric_update(99, 0))  # updates leave in order: once this arrives, all the rest did
        await until(lambda: sentinel.events, what="every update to be handed over")
        release.set()
        await until(lambda: watcher.resyncs, what="the resync")
        return watcher

    watcher = asyncio.run(scenario())

    assert watcher.resyncs == 1
    assert len(watcher.events) < broadcast._FEED_MAX  # the backlog was dropped, not sent
