"""The ingest client against a real local HTTP server."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.workers.trainer.fake_control import FakeControl
from workers.client import IngestAuthError, IngestClient, fetch_spec


@pytest.fixture
def control():
    fake = FakeControl(token="tok", spec={"run_id": 7, "name": "x"}).start()
    yield fake
    fake.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_events_arrive_in_seq_order_and_desired_state_is_returned(control, tmp_path: Path):
    client = IngestClient(control.url, 7, "tok", spool_dir=tmp_path)
    client.status("running")
    client.metric(0, {"reward/mean": 0.5})
    client.generation(
        0,
        problem_id="p",
        completion="x\x00y",
        reward=0.0,
        passed=False,
        error_class="wrong_answer",
        tests_passed=0,
        tests_total=1,
    )
    client.log("hello")
    client.heartbeat()

    assert client.flush() == "running"

    assert [e["seq"] for e in control.events] == [0, 1, 2, 3, 4]
    assert [e["type"] for e in control.events] == ["status", "metric", "generation", "log", "heartbeat"]
    assert control.events[2]["completion"] == "x\ufffdy"
    assert client.desired_state == "running"
    client.close()


def test_batches_respect_max_batch(control, tmp_path: Path):
    client = IngestClient(control.url, 7, "tok", spool_dir=tmp_path, max_batch=3)
    for i in range(7):
        client.metric(i, {"loss": float(i)})
    client.flush()

    assert [len(p["events"]) for p in control.posts] == [3, 3, 1]
    assert [e["step"] for e in control.events] == list(range(7))


def test_server_down_then_up_loses_nothing(tmp_path: Path):
    port = _free_port()
    client = IngestClient(f"http://127.0.0.1:{port}", 7, "tok", spool_dir=tmp_path, timeout_s=2)
    for i in range(5):
        client.metric(i, {"loss": float(i)})

    assert client.flush() is None  # unreachable: kept in the spool
    assert client.pending_count == 5

    fake = FakeControl(token="tok", port=port).start()
    try:
        assert client.flush() is None  # still inside the backoff window: no attempt
        assert client.flush(ignore_backoff=True) == "running"
        client.metric(5, {"loss": 5.0})
        client.close()
        assert [e["step"] for e in fake.events] == list(range(6))
        assert len(fake.seen) == 6
    finally:
        fake.stop()


def test_spooled_events_survive_a_restart_and_seqs_are_never_reused(tmp_path: Path, control):
    dead = f"http://127.0.0.1:{_free_port()}"
    first = IngestClient(dead, 7, "tok", spool_dir=tmp_path, timeout_s=1)
    first.metric(0, {"loss": 1.0})
    first.metric(1, {"loss": 2.0})
    first.flush()
    first.close(timeout_s=0)  # "dies" with both events unsent

    second = IngestClient(control.url, 7, "tok", spool_dir=tmp_path)
    second.metric(2, {"loss": 3.0})
    assert second.flush() == "running"
    second.close()
    third = IngestClient(control.url, 7, "tok", spool_dir=tmp_path)
    third.log("after restart")
    third.close()

    assert [e["seq"] for e in control.events] == [0, 1, 2, 3]
    assert [e["type"] for e in control.events] == ["metric", "metric", "metric", "log"]


def test_a_repeated_delivery_is_counted_once(control, tmp_path: Path):
    client = IngestClient(control.url, 7, "tok", spool_dir=tmp_path)
    client.metric(0, {"loss": 1.0})
    client.flush()
    # Simulate a lost answer: the acked mark is gone, so the event is sent again.
    (tmp_path / "acked").unlink()
    (tmp_path / "spool.jsonl").write_text(json.dumps(control.events[0] | {"source": None}) + "\n")
    again = IngestClient(control.url, 7, "tok", spool_dir=tmp_path)
    again.metric(1, {"loss": 2.0})
    again.close()

    assert [e["seq"] for e in control.events] == [0, 1]
    assert sum(len(p["events"]) for p in control.posts) == 3


def test_bad_event_is_dropped_to_rejected_and_the_rest_is_sent(control, tmp_path: Path, capsys):
    control.reject = lambda e: "values" if e.get("type") == "metric" and "bad" in e["values"] else None
    client = IngestClient(control.url, 7, "tok", spool_dir=tmp_path)
    client.metric(0, {"loss": 1.0})
    client.metric(1, {"bad": 1.0})
    client.metric(2, {"loss": 3.0})

    assert client.flush() == "running"

    assert [e["step"] for e in control.events] == [0, 2]
    rejected = [json.loads(line) for line in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert [r["event"]["seq"] for r in rejected] == [1]
    assert "values" in capsys.readouterr().err
    assert client.pending_count == 0


def test_bad_token_raises_auth_error(control, tmp_path: Path):
    client = IngestClient(control.url, 7, "wrong", spool_dir=tmp_path)
    client.log("x")
    with pytest.raises(IngestAuthError):
        client.flush()
    with pytest.raises(IngestAuthError):
        fetch_spec(control.url, 7, "wrong")


def test_fetch_spec_returns_the_spec(control):
    assert fetch_spec(control.url, 7, "tok") == {"run_id": 7, "name": "x"}


def test_a_throttled_batch_waits_as_told_and_nothing_is_lost(control, tmp_path: Path):
    throttled = {"left": 1}

    def throttle(_c: FakeControl) -> bool:
        if throttled["left"]:
            throttled["left"] -= 1
            return True
        return False

    control.throttle = throttle
    client = IngestClient(control.url, 7, "tok", spool_dir=tmp_path)
    for step in range(3):
        client.metric(step, {"loss": 1.0 / (step + 1)})

    assert client.flush() is None  # 429: kept, not dropped
    assert client.pending_count == 3
    assert not (tmp_path / "rejected.jsonl").exists()
    assert client.flush() is None  # the server said wait a second: no retry before that
    client.close(timeout_s=10)

    assert [e["step"] for e in control.of_type("metric")] == [0, 1, 2]
