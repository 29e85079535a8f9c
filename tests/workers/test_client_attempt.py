"""The ingest client names its attempt in every batch, and does not send an earlier attempt's spool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.workers.trainer.fake_control import FakeControl
from workers.client import IngestClient


@pytest.fixture
def control():
    fake = FakeControl(token="tok", spec={"run_id": 7, "name": "x"}).start()
    yield fake
    fake.stop()


def test_every_batch_names_the_attempt(control, tmp_path: Path):
    client = IngestClient(control.url, 7, "tok", spool_dir=tmp_path, attempt=3, max_batch=2)
    for step in range(3):
        client.metric(step, {"loss": 1.0})
    client.flush()
    client.close()

    assert [(post["attempt"], len(post["events"])) for post in control.posts] == [(3, 2), (3, 1)]


def test_without_an_attempt_the_batch_names_none(control, tmp_path: Path):
    client = IngestClient(control.url, 7, "tok", spool_dir=tmp_path)
    client.heartbeat()
    client.flush()
    client.close()

    assert "attempt" not in control.posts[0]


def test_an_earlier_attempts_spooled_events_are_set_aside_not_sent_as_this_ones(tmp_path: Path):
    dead = "http://127.0.0.1:9"  # nothing listens: the events stay spooled
    first = IngestClient(dead, 7, "tok", spool_dir=tmp_path, attempt=1, timeout_s=0.5)
    first.metric(0, {"loss": 1.0})
    first.metric(1, {"loss": 1.0})
    first.close(timeout_s=0.1)
    again = IngestClient(dead, 7, "tok", spool_dir=tmp_path, attempt=1, timeout_s=0.5)
    assert again.pending_count == 2  # the same attempt restarted: its events are still to send
    again.close(timeout_s=0.1)

    resumed = IngestClient(dead, 7, "tok", spool_dir=tmp_path, attempt=2, timeout_s=0.5)
    resumed.metric(5, {"loss": 2.0})

    assert resumed.pending_count == 1
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert [r["event"]["seq"] for r in rejected] == [0, 1]
    assert "left by attempt 1" in rejected[0]["reason"]
    resumed.close(timeout_s=0.1)
    later = IngestClient(dead, 7, "tok", spool_dir=tmp_path, attempt=2, timeout_s=0.5)
    assert later.pending_count == 1  # attempt 2 restarted: its own event is kept
    later.close(timeout_s=0.1)
