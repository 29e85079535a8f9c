"""Where an ingest batch's time goes: the API's own statements against the COPY anchor's, per 5,000
points, in this process (no HTTP), on PostgreSQL — the profile behind docs/benchmarks.md's "what bounds
it" for `bench/ingest.py`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/triad_bench .venv/bin/python bench/ingest_profile.py

It posts BATCHES batches of 5,000 points (200 steps × 25 metrics, as bench/ingest.py) through the
ingest service (runs.ingest.run_ingest, as the API view calls it) with every statement, COPY and COMMIT
timed, and times the anchor's parts for the same 5,000 rows: the COPY, the deferred foreign-key checks
(run before the commit by SET CONSTRAINTS ALL IMMEDIATE) and the commit left (the WAL flush). Last
line: one JSON object, milliseconds per 5,000 points.
"""

import collections
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _setup import django_setup

django_setup()

import psycopg  # noqa: E402
from ingest import KEYS, batch  # noqa: E402
from psycopg import _copy  # noqa: E402

from runs import ingest  # noqa: E402
from runs.events import parse_batch, text_strings_clean  # noqa: E402
from runs.models import Run  # noqa: E402
from tests.factories import RunFactory, UserFactory  # noqa: E402

BATCHES = 30
POINTS = 5000
COPY_SQL = "COPY runs_metricpoint (run_id, key, step, value, wall_time) FROM STDIN (FORMAT BINARY)"


def _statement(query: object) -> str:
    words = " ".join(str(query).split())
    for name, marker in (
        ("claim (idempotency keys, heartbeat, steps)", "WITH run AS"),
        ("rollup upsert", "INSERT INTO runs_metricrollup"),
        ("replaced-point look-up", "SELECT n.run_id, n.key, (SELECT max"),
        ("key index upsert", "INSERT INTO runs_runmetrickey"),
    ):
        if words.startswith(marker):
            return name
    return words[:60]


def api_profile(run_id: int) -> tuple[dict[str, float], float, float]:
    """ms per batch: each statement's, the whole batch's, the parse's."""
    spent: collections.Counter[str] = collections.Counter()
    execute, commit, copy_exit = psycopg.Cursor.execute, psycopg.Connection.commit, _copy.Copy.__exit__

    def timed_execute(self, query, *args, **kwargs):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return execute(self, query, *args, **kwargs)
        finally:
            spent[_statement(query)] += time.perf_counter() - t0

    def timed_commit(self):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return commit(self)
        finally:
            spent["COMMIT (deferred FK checks, WAL flush)"] += time.perf_counter() - t0

    def timed_copy_exit(self, *args):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return copy_exit(self, *args)
        finally:
            spent["COPY (what the server had left when the rows were sent)"] += time.perf_counter() - t0

    psycopg.Cursor.execute, psycopg.Connection.commit = timed_execute, timed_commit  # type: ignore[method-assign]
    _copy.Copy.__exit__ = timed_copy_exit  # type: ignore[method-assign]
    seq = 0
    parse = 0.0
    try:
        for i in range(BATCHES + 3):  # three to warm up
            if i == 3:
                spent.clear()
                parse = 0.0
                t_all = time.perf_counter()
            text = json.dumps(batch(seq, seq, POINTS))
            seq += POINTS // len(KEYS)
            t0 = time.perf_counter()
            parsed = parse_batch(json.loads(text), max_events=100_000, strings_clean=text_strings_clean(text))
            parse += time.perf_counter() - t0
            ingest.run_ingest(run_id=run_id, batch=parsed)
        whole = time.perf_counter() - t_all
    finally:
        psycopg.Cursor.execute, psycopg.Connection.commit = execute, commit  # type: ignore[method-assign]
        _copy.Copy.__exit__ = copy_exit  # type: ignore[method-assign]
    per = {name: round(s / BATCHES * 1000, 2) for name, s in spent.most_common()}
    return per, whole / BATCHES * 1000, parse / BATCHES * 1000


def anchor_profile(run_id: int) -> dict[str, float]:
    """ms for the anchor's 5,000 rows: COPY, the deferred FK checks, the commit's flush (medians)."""
    now = dt.datetime.now(dt.UTC)
    parts: dict[str, list[float]] = {"copy": [], "fk_checks": [], "commit": []}
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        for r in range(BATCHES):
            rows = [
                (run_id, KEYS[i % len(KEYS)], r * POINTS + i // len(KEYS), 1.0, now) for i in range(POINTS)
            ]
            t0 = time.perf_counter()
            with conn.cursor() as cur:
                with cur.copy(COPY_SQL) as copy:
                    copy.set_types(["bigint", "varchar", "integer", "float8", "timestamptz"])
                    for row in rows:
                        copy.write_row(row)
                t1 = time.perf_counter()
                cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
                t2 = time.perf_counter()
            conn.commit()
            t3 = time.perf_counter()
            parts["copy"].append(t1 - t0)
            parts["fk_checks"].append(t2 - t1)
            parts["commit"].append(t3 - t2)
    return {name: round(statistics.median(v) * 1000, 2) for name, v in parts.items()}


def main() -> None:
    user = UserFactory(username=f"bench-profile-{time.time_ns()}")
    run = RunFactory(
        created_by=user,
        dataset_version__dataset__created_by=user,
        dataset_version__dataset__name=f"bench-profile-{time.time_ns()}",
    )
    anchor_run = RunFactory(created_by=user, dataset_version=run.dataset_version)
    try:
        statements, whole, parse = api_profile(run.pk)
        anchor = anchor_profile(anchor_run.pk)
    finally:
        Run.objects.filter(pk__in=[run.pk, anchor_run.pk]).delete()
    database = sum(statements.values())
    for name, ms in statements.items():
        print(f"{ms:7.2f} ms  {name}")
    print(f"{whole - database - parse:7.2f} ms  Python besides the parse (rows, rollups, COPY rows, arrays)")
    print(f"{parse:7.2f} ms  parse")
    print(f"anchor: {anchor}")
    anchor_total = sum(anchor.values())
    print(
        json.dumps(
            {
                "points_per_batch": POINTS,
                "api_batch_ms": round(whole, 2),
                "api_database_ms": round(database, 2),
                "api_statements_ms": statements,
                "api_parse_ms": round(parse, 2),
                "anchor_ms": anchor,
                "anchor_total_ms": round(anchor_total, 2),
                # The ratio the API could reach if nothing but its database work were left (no Python,
                # no HTTP): the anchor's time over the API's statements'.
                "ratio_bound_database_only": round(anchor_total / database, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
