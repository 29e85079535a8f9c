"""Page server times at scale: the runs list with 10,000 runs, and a comparison of 10 runs × 8 metrics
(the compare page plus the ten downsampled metric reads its charts make), measured through Django's test
client (server time: routing, queries, templates), median of 7. Anchor, same run: a raw SELECT of the
rows each page shows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/triad_bench .venv/bin/python bench/pages.py

Last line: one JSON object.
"""

import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("ALLOWED_HOSTS", "testserver")

from _setup import django_setup

django_setup()

from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402

from runs.metric_store import metric_points_write  # noqa: E402
from runs.models import Run  # noqa: E402
from runs.selectors import COMPARE_KEYS  # noqa: E402

N_RUNS, N_COMPARE, POINTS = 10_000, 10, 5_000


def alternating_median_ms(*fns, repeat: int = 7) -> list[float]:
    """The median time of each function, run in turn, ms, one decimal."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, out in zip(fns, times, strict=True):
            t = time.perf_counter()
            fn()
            out.append((time.perf_counter() - t) * 1000)
    return [round(statistics.median(ts), 1) for ts in times]


def median_ms(fn, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> None:
    from tests.factories import DatasetVersionFactory, UserFactory

    user = UserFactory(username="bench-pages")
    version = DatasetVersionFactory(
        dataset__name=f"bench-pages-{time.time_ns()}", created_by=user, dataset__created_by=user
    )
    runs = Run.objects.bulk_create(
        Run(
            name=f"bench-{i}",
            created_by=user,
            team=user.memberships.get().team,  # the factory's default team: the user sees every run
            dataset_version=version,
            config={"lr": 1e-4 * (1 + i % 7)},
            token_hash="0" * 64,
            last_step=POINTS - 1,
        )
        for i in range(N_RUNS)
    )
    compare_ids = [r.pk for r in runs[:N_COMPARE]]
    now = dt.datetime.now(dt.UTC)
    for run_id in compare_ids:
        with transaction.atomic():
            metric_points_write(
                [(run_id, key, s, (s % 97) / 97, now) for key in COMPARE_KEYS for s in range(POINTS)]
            )
    # the list shows the latest pass rate of every run on the page
    with transaction.atomic():
        metric_points_write([(r.pk, "pass_rate", 0, 0.5, now) for r in runs])

    client = Client()
    client.force_login(user)
    # A superuser reads every team's runs: the list without the team filter, for its cost.
    root = UserFactory(username="bench-pages-root", is_superuser=True, membership=None)
    root_client = Client()
    root_client.force_login(root)
    ids = ",".join(map(str, compare_ids))

    def runs_list() -> None:
        assert client.get("/runs/").status_code == 200

    def runs_list_all_teams() -> None:
        assert root_client.get("/runs/").status_code == 200

    def compare() -> None:
        assert client.get(f"/runs/compare/?ids={ids}").status_code == 200
        for run_id in compare_ids:
            r = client.get(f"/runs/{run_id}/metrics.json?max_points=2000&keys={','.join(COMPARE_KEYS)}")
            assert r.status_code == 200

    def anchor_list() -> None:
        with connection.cursor() as cur:
            cur.execute("SELECT * FROM runs_run ORDER BY created_at DESC, id DESC LIMIT 50")
            cur.fetchall()

    def anchor_compare() -> None:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT run_id, key, step, value FROM runs_metricpoint WHERE run_id = ANY(%s)", [compare_ids]
            )
            cur.fetchall()

    result = {
        "runs": N_RUNS,
        # the two lists alternate, so that neither is always measured on a colder cache
        **dict(
            zip(
                ("runs_list_ms", "runs_list_superuser_no_team_filter_ms"),
                alternating_median_ms(runs_list, runs_list_all_teams),
                strict=True,
            )
        ),
        "runs_list_anchor_ms": round(median_ms(anchor_list), 2),
        "compare_10x8_ms": round(median_ms(compare), 1),
        "compare_anchor_raw_select_ms": round(median_ms(anchor_compare), 1),
    }
    result["compare_ratio_vs_raw_select"] = round(
        result["compare_10x8_ms"] / result["compare_anchor_raw_select_ms"], 3
    )
    Run.objects.filter(dataset_version=version).delete()
    version.delete()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
