"""Ingest throughput: metric points per second through the ingest API into PostgreSQL, against raw
psycopg COPY into the same table in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/triad_bench .venv/bin/python bench/ingest.py

It migrates the database named by DATABASE_URL, starts uvicorn on a free port (live updates published
to Redis only when REDIS_URL is set), posts batches of metric events over HTTP with keep-alive, and times:
- the anchor: COPY of the same number of rows straight into runs_metricpoint (for a run of its own, so
  that the API's run finds none of them in its way);
- the API: points/s over large batches, and the latency of 1,000-point batches (p50/p99).
The anchor and the API take turns, ROUNDS rounds of 50,000 rows each, so that both see the same load on
a shared machine: `ratio_vs_copy` is the median of the rounds' ratios (each round's, and the rates over
all rounds, are printed too). Last line: one JSON object, with `ratio_vs_copy`.
"""

import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _setup import asgi_server, django_setup, free_port, wait_port

django_setup()

import http.client  # noqa: E402

import psycopg  # noqa: E402
from django.db import connection  # noqa: E402

from runs.models import MetricPoint, Run  # noqa: E402
from tests.factories import TEST_TOKEN, RunFactory  # noqa: E402

KEYS = [f"bench/metric_{i:02d}" for i in range(25)]


ROUNDS = 4
ROUND_POINTS = 50_000  # per round: one COPY of this many rows, then as many points through the API
BIG = 5000  # points per large batch (200 steps × 25 metrics), as a trainer flushing a backlog


def anchor_copy(run_id: int, n_rows: int, first_step: int = 0) -> float:
    now = dt.datetime.now(dt.UTC)
    rows = [(run_id, KEYS[i % len(KEYS)], first_step + i // len(KEYS), float(i), now) for i in range(n_rows)]
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        t0 = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy("COPY runs_metricpoint (run_id, key, step, value, wall_time) FROM STDIN") as cp,
        ):
            for row in rows:
                cp.write_row(row)
        conn.commit()
        return n_rows / (time.perf_counter() - t0)


def batch(first_seq: int, first_step: int, points: int) -> dict:
    events = []
    steps = points // len(KEYS)
    for i in range(steps):
        step = first_step + i
        events.append(
            {
                "seq": first_seq + i,
                "type": "metric",
                "step": step,
                "time": time.time(),
                "values": {k: step * 0.001 + j for j, k in enumerate(KEYS)},
            }
        )
    return {"source": "trainer", "events": events}


def post(conn: http.client.HTTPConnection, path: str, body: dict, headers: dict) -> tuple[int, dict]:
    conn.request("POST", path, body=json.dumps(body), headers={**headers, "Content-Type": "application/json"})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def main() -> None:
    from tests.factories import UserFactory

    user = UserFactory(username="bench")
    run = RunFactory(
        created_by=user,
        dataset_version__dataset__created_by=user,
        dataset_version__dataset__name=f"bench-{time.time_ns()}",
    )
    anchor_run = RunFactory(created_by=user, dataset_version=run.dataset_version)

    port = free_port()
    env = {**os.environ, "TRIAD_DEV": "true", "PYTHONUNBUFFERED": "1"}
    server = asgi_server(env, port, Path(tempfile.gettempdir()) / "triad-bench-ingest-web.log")
    path = f"/api/v1/runs/{run.pk}/events"
    headers = {"Authorization": f"Bearer {TEST_TOKEN}"}
    wait_port(port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)  # one kept-alive connection
    rounds: list[tuple[float, float]] = []  # (COPY rows/s, API points/s)
    try:
        seq = step = 0
        body = batch(seq, step, BIG)  # a first batch, untimed: the server's first request warms it up
        status, answer = post(conn, path, body, headers)
        assert status == 200, answer
        seq = step = len(body["events"])
        for r in range(ROUNDS):
            copy_rate = anchor_copy(anchor_run.pk, ROUND_POINTS, first_step=r * ROUND_POINTS)
            conn.close()  # uvicorn drops a connection idle past 5 s: the next request opens a fresh one
            t0 = time.perf_counter()
            for _ in range(ROUND_POINTS // BIG):
                body = batch(seq, step, BIG)
                status, answer = post(conn, path, body, headers)
                assert status == 200 and answer["accepted"] == len(body["events"]), answer
                seq += len(body["events"])
                step += len(body["events"])
            rounds.append((copy_rate, ROUND_POINTS / (time.perf_counter() - t0)))
        # Latency: 1,000-point batches.
        latencies = []
        for _ in range(200):
            body = batch(seq, step, 1000)
            t = time.perf_counter()
            status, answer = post(conn, path, body, headers)
            latencies.append((time.perf_counter() - t) * 1000)
            assert status == 200, answer
            seq += len(body["events"])
            step += len(body["events"])
    finally:
        conn.close()
        server.terminate()
        server.wait(timeout=10)
    stored = MetricPoint.objects.filter(run=run).count()
    expected = BIG + ROUNDS * ROUND_POINTS + 200 * 1000
    latencies.sort()
    connection.close()
    Run.objects.filter(pk__in=[run.pk, anchor_run.pk]).delete()
    # Over all rounds: the total of rows over the total of the time each side took.
    copy_rate = ROUNDS * ROUND_POINTS / sum(ROUND_POINTS / c for c, _ in rounds)
    api_rate = ROUNDS * ROUND_POINTS / sum(ROUND_POINTS / a for _, a in rounds)
    print(
        json.dumps(
            {
                "copy_rows_per_s": round(copy_rate),
                "api_points_per_s": round(api_rate),
                "ratio_vs_copy": round(statistics.median(a / c for c, a in rounds), 3),
                "round_ratios": [round(a / c, 3) for c, a in rounds],
                "p50_ms_1000_points": round(latencies[len(latencies) // 2], 1),
                "p99_ms_1000_points": round(latencies[int(len(latencies) * 0.99) - 1], 1),
                "points_stored": stored,
                "points_expected": expected,
            }
        )
    )


if __name__ == "__main__":
    main()
