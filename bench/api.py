"""Metric export through the REST API: 1,000,000 points of one run streamed as CSV (and JSON lines) by
`GET /api/v1/runs/{id}/metrics/export` from a real uvicorn server, against a raw SELECT of the same rows
by a psycopg cursor, in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/triad_bench .venv/bin/python bench/api.py [--rounds 3]

Loads the points with the metric store's bulk writer (COPY, 100,000 a batch; 10 keys × 100,000 steps),
makes a personal API token, starts uvicorn on the ASGI app, then times in alternating rounds (raw,
API csv, API jsonl, …) so that load from other work on the machine hits all alike: the raw SELECT (every
row fetched into Python by a client-side psycopg cursor, the anchor) and the API export read whole by
an httpx streaming client and by `triad.Client.export_metrics` (the CLI's path), lines counted.
Points/s are from the median round. Last line: one JSON
object with `export_ratio` = API csv points/s ÷ raw SELECT points/s (issue #20's goal: ≥ 0.3), and the
server's peak resident memory (a 68 MB export that was built whole would show in it).
"""

import argparse
import datetime as dt
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _setup import asgi_server, django_setup, free_port, wait_port

django_setup()

import httpx  # noqa: E402
import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402

from controlplane.accounts.models import Role, TokenScope  # noqa: E402
from controlplane.accounts.services import api_token_create  # noqa: E402
from runs.metric_store import metric_points_write  # noqa: E402
from runs.models import Run  # noqa: E402
from triad import Client  # noqa: E402

KEYS, BATCH = 10, 100_000
RAW_SQL = "SELECT key, step, value, wall_time FROM runs_metricpoint WHERE run_id = %s ORDER BY key, step"


def load(run_id: int, points: int) -> float:
    now = dt.datetime.now(dt.UTC)
    steps = points // KEYS
    rows = [(run_id, f"metric/{k}", s, (s % 997) / 997.0 + k, now) for k in range(KEYS) for s in range(steps)]
    t = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        with transaction.atomic():
            metric_points_write(rows[start : start + BATCH])
    return time.perf_counter() - t


def raw_select(dsn: str, run_id: int) -> int:
    with psycopg.connect(dsn) as conn, conn.cursor() as cursor:
        cursor.execute(RAW_SQL, [run_id])
        return sum(1 for _ in cursor)


def api_export(base: str, token: str, run_id: int, fmt: str) -> int:
    lines = 0
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{base}/api/v1/runs/{run_id}/metrics/export"
    with httpx.stream("GET", url, params={"format": fmt}, headers=headers, timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_bytes():
            lines += chunk.count(b"\n")
    return lines - 1 if fmt == "csv" else lines  # the CSV's header


def client_export(base: str, token: str, run_id: int) -> int:
    """The same CSV through the Python client (`triad.Client.export_metrics`), as a script reads it."""
    lines = sum(chunk.count(b"\n") for chunk in Client(url=base, token=token).export_metrics(run_id, "csv"))
    return lines - 1


def _rss_mb(pid: int, field: str = "VmRSS") -> float:
    """The server's resident memory (VmHWM: its peak): flat if the export streams, up by the export's
    size and more if it is built whole."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--points", type=int, default=1_000_000, help="a multiple of 10 (keys)")
    args = parser.parse_args()
    points = args.points
    from tests.factories import RunFactory, TeamFactory, UserFactory

    user = UserFactory(username=f"bench-api-{time.time_ns()}", password=None, membership=None)
    team = TeamFactory(name=f"bench-api-{time.time_ns()}")
    user.memberships.create(team=team, role=Role.MEMBER)
    run = RunFactory(
        created_by=user,
        team=team,
        dataset_version__dataset__created_by=user,
        dataset_version__dataset__name=f"bench-api-{time.time_ns()}",
    )
    token, _ = api_token_create(user=user, name="bench", scope=TokenScope.READ)
    load_s = load(run.pk, points)

    db = settings.DATABASES["default"]
    dsn = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    port = free_port()
    env = {**os.environ, "TRIAD_DEV": "true", "PYTHONUNBUFFERED": "1"}
    server = asgi_server(env, port, Path(tempfile.gettempdir()) / "triad-bench-api-web.log")
    times: dict[str, list[float]] = {"raw": [], "csv": [], "jsonl": [], "client": []}
    counts: dict[str, int] = {}
    try:
        wait_port(port)
        base = f"http://127.0.0.1:{port}"
        httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {token}"}).raise_for_status()
        before_rss_mb = _rss_mb(server.pid)  # Django loaded, one request served, no export yet
        api_export(base, token, run.pk, "csv")  # warm-up: the first request's imports are not counted
        for _ in range(args.rounds):
            for name, fn in (
                ("raw", lambda: raw_select(dsn, run.pk)),
                ("csv", lambda: api_export(base, token, run.pk, "csv")),
                ("jsonl", lambda: api_export(base, token, run.pk, "jsonl")),
                ("client", lambda: client_export(base, token, run.pk)),
            ):
                t = time.perf_counter()
                counts[name] = fn()
                times[name].append(time.perf_counter() - t)
        peak_rss_mb = _rss_mb(server.pid, "VmHWM")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        Run.objects.filter(pk=run.pk).delete()
    assert counts == {"raw": points, "csv": points, "jsonl": points, "client": points}, counts
    median = {name: statistics.median(values) for name, values in times.items()}
    per_s = {name: points / seconds for name, seconds in median.items()}
    print(
        json.dumps(
            {
                "points": points,
                "api_points_per_s": round(per_s["csv"]),
                "api_jsonl_points_per_s": round(per_s["jsonl"]),
                "raw_points_per_s": round(per_s["raw"]),
                "export_ratio": round(per_s["csv"] / per_s["raw"], 3),
                "export_ratio_jsonl": round(per_s["jsonl"] / per_s["raw"], 3),
                "client_points_per_s": round(per_s["client"]),
                "export_ratio_client": round(per_s["client"] / per_s["raw"], 3),
                "seconds": {name: [round(t, 3) for t in values] for name, values in times.items()},
                "server_rss_before_mb": before_rss_mb,
                "server_peak_rss_mb": peak_rss_mb,
                "load_s": round(load_s, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
