"""The ingest client against the control plane with low limits: a batch over one is split, never dropped."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from runs.models import IngestedEvent, LogLine, MetricPoint, Run, RunStatus
from tests.factories import TEST_TOKEN, RunFactory
from workers.client import IngestClient

pytestmark = pytest.mark.django_db(transaction=True)


def emit_a_run(client: IngestClient, *, steps: int, log_text: str = "step done") -> int:
    """A run's worth of telemetry, heartbeats and statuses among it; answers how many events."""
    client.status("running")
    for step in range(steps):
        client.metric(step, {"loss": 1.0 / (step + 1), "reward/mean": step / steps})
        client.log(f"{log_text} {step}")
        client.heartbeat()
    client.status("succeeded", message="all steps done")
    return 2 + 3 * steps


def post_expecting_an_error(url: str, run_id: int, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{url}/api/v1/runs/{run_id}/events",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TEST_TOKEN}", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    return caught.value.code, json.loads(caught.value.read())


def test_a_batch_over_the_servers_event_limit_is_split_and_every_event_lands(
    live_server, settings, tmp_path: Path
):
    settings.TRIAD_INGEST_MAX_EVENTS = 7
    run = RunFactory(status=RunStatus.STARTING)
    client = IngestClient(live_server.url, run.pk, TEST_TOKEN, spool_dir=tmp_path, max_batch=500)
    total = emit_a_run(client, steps=20)

    assert client.flush() == "succeeded"

    assert client.pending_count == 0
    assert not (tmp_path / "rejected.jsonl").exists()
    assert client.max_batch == 7  # learnt from the answer: later batches fit at once
    assert IngestedEvent.objects.filter(run=run).count() == total
    assert IngestedEvent.objects.filter(run=run, type="heartbeat").count() == 20
    assert MetricPoint.objects.filter(run=run, key="loss").count() == 20
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert run.last_heartbeat_at is not None
    client.close()


def test_the_answer_over_the_event_limit_says_the_limit(live_server, settings):
    settings.TRIAD_INGEST_MAX_EVENTS = 2
    run = RunFactory(status=RunStatus.RUNNING)
    body = {"events": [{"seq": i, "type": "heartbeat"} for i in range(3)]}

    status, answer = post_expecting_an_error(live_server.url, run.pk, body)

    assert status == 413
    assert answer["max_events"] == 2
    assert answer["field"] == "events"
    assert not IngestedEvent.objects.filter(run=run).exists()


def test_the_answer_over_the_byte_limit_says_the_limit(live_server, settings):
    settings.TRIAD_INGEST_MAX_BYTES = 100
    run = RunFactory(status=RunStatus.RUNNING)
    body = {"events": [{"seq": i, "type": "heartbeat"} for i in range(10)]}

    status, answer = post_expecting_an_error(live_server.url, run.pk, body)

    assert status == 413
    assert answer["max_bytes"] == 100


def test_a_body_over_the_byte_limit_is_halved_until_it_fits_and_only_a_lone_giant_is_dropped(
    live_server, settings, tmp_path: Path, capsys
):
    settings.TRIAD_INGEST_MAX_BYTES = 4000
    run = RunFactory(status=RunStatus.STARTING)
    client = IngestClient(live_server.url, run.pk, TEST_TOKEN, spool_dir=tmp_path, max_batch=500)
    client.status("running")
    client.log("x" * 10_000)  # alone over 4000 bytes: nothing can make it fit
    giant_seq = 1
    total = 2 + emit_a_run(client, steps=12, log_text="a line of about a hundred bytes " + "." * 60)

    assert client.flush() == "succeeded"

    assert client.pending_count == 0
    rejected = (tmp_path / "rejected.jsonl").read_text().splitlines()
    assert len(rejected) == 1 and f'"seq": {giant_seq}' in rejected[0]
    assert f"seq={giant_seq}" in capsys.readouterr().err
    landed = IngestedEvent.objects.filter(run=run)
    assert landed.count() == total - 1
    assert giant_seq not in set(landed.values_list("seq", flat=True))
    assert landed.filter(type="heartbeat").count() == 12
    assert LogLine.objects.filter(run=run, message__startswith="a line").count() == 12
    assert Run.objects.get(pk=run.pk).status == RunStatus.SUCCEEDED
    client.close()
