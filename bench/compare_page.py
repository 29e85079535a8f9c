"""The compare page at scale: 10 runs × 20 metrics × 100,000 points each (20,000,000 points), as the
server answers it and as Chromium draws it.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/triad_bench_compare .venv/bin/python bench/compare_page.py

- `compare_page_ms`: server time through Django's test client (routing, queries, JSON), warm, median of
  5: the compare page plus the one batch read its chart script makes (/runs/compare/metrics.json, every
  run × key, max_points=2000). Anchor, same run: the same series read the way the page read them before
  the batch endpoint, one /runs/<id>/metrics.json per run (`per_run_reads_ms`).
- `all_charts_drawn_ms`: Debian's Chromium through Playwright against uvicorn on the ASGI app, warm,
  median of 5: from navigation start until every `figure.chart` has `data-drawn="true"` (the chart
  script's signal; with a script that does not set it yet, until each figure holds its uPlot canvas,
  which that script makes once the data is in: `drawn_signal` says which was waited for).

The points are loaded once into the bench database and kept for reruns (about 3 GB): the first run's
`load_s` is the load, a rerun's 0. The first run's 20 series go through the metric store's bulk writer
(COPY plus rollups); the other nine runs are copies made in SQL, each shifted by a constant (a shift
keeps every rollup's extremes, so the copies' rollups are the originals' shifted too).
Last line: one JSON object.
"""

import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")

from _setup import REPO, asgi_server, django_setup, free_port, wait_port

django_setup("triad_bench_compare")

import datetime as dt  # noqa: E402

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402

from runs.metric_store import metric_points_write  # noqa: E402
from runs.models import ChartLayout, Run, RunMetricKey  # noqa: E402

N_RUNS, POINTS = 10, 100_000
KEYS = [
    "reward/mean", "pass_rate", "loss", "kl", "entropy", "length/mean", "time/step_s",
    "throughput/tokens_per_s", "eval/humaneval/pass@1", "clip_frac", "frac_reward_zero_std", "cost/usd",
    "grad_norm", "lr", "reward/std", "tests/pass_frac", "length/max", "length/clipped_frac", "time/gen_s",
    "gpu/util",
]  # fmt: skip
# What static/js/compare.js asks per series for 10 runs (8,000 points over the runs, 200 to 1,000 each).
MAX_POINTS = 800
USER = "bench-compare"
# Every figure drawn: by the chart script's data-drawn, or (a script without it) by its uPlot canvas.
ALL_DRAWN_JS = """(signal) => {
  const figures = Array.from(document.querySelectorAll("figure.chart"));
  if (!figures.length) return false;
  const drawn = (f) => (signal === "data-drawn" ? f.dataset.drawn === "true"
                                               : !!f.querySelector(".plot canvas"));
  return figures.every(drawn) ? [performance.now(), figures.length] : false;
}"""
CHROMIUM_ARGS = [  # tests/e2e/conftest.py's: off the closed network, as root
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _value(key_index: int, step: int) -> float:
    """A curve per key with a deterministic wobble, and a spike the min/max downsampling must keep."""
    trend = (key_index + 1) * step / POINTS
    wobble = ((step * 7919 + key_index * 104_729) % 1000) / 10_000
    return trend + wobble + (5.0 if step == 54_321 else 0.0)


def runs_loaded(user) -> list[int]:
    """The bench's runs, loaded now or kept from a previous run of the bench."""
    from tests.factories import RunFactory

    kept = list(Run.objects.filter(created_by=user, name__startswith="bench-compare-").order_by("pk"))
    complete = len(kept) == N_RUNS and RunMetricKey.objects.filter(
        run__in=kept, last_step=POINTS - 1
    ).count() == N_RUNS * len(KEYS)
    if complete:
        return [run.pk for run in kept]
    Run.objects.filter(pk__in=[run.pk for run in kept]).delete()
    runs = [
        RunFactory(
            created_by=user,
            name=f"bench-compare-{i}",
            config={"lr": 1e-5 * (i + 1)},
            dataset_version__dataset__created_by=user,
            dataset_version__dataset__name=f"bench-compare-{time.time_ns()}",
            last_step=POINTS - 1,
        )
        for i in range(N_RUNS)
    ]
    now = dt.datetime.now(dt.UTC)
    first = runs[0].pk
    for i, key in enumerate(KEYS):
        with transaction.atomic():
            metric_points_write([(first, key, s, _value(i, s), now) for s in range(POINTS)])
    rollup_columns = "key, width, bucket, n, min_step, max_step, first_step, last_step"
    with connection.cursor() as cursor:
        for n, run in enumerate(runs[1:], start=1):
            shift = n * 0.05
            cursor.execute(
                "INSERT INTO runs_metricpoint (run_id, key, step, value, wall_time) "
                "SELECT %s, key, step, value + %s, wall_time FROM runs_metricpoint WHERE run_id = %s",
                [run.pk, shift, first],
            )
            cursor.execute(
                f"INSERT INTO runs_metricrollup (run_id, {rollup_columns}, min_value, max_value, "
                f"first_value, last_value) SELECT %s, {rollup_columns}, min_value + %s, max_value + %s, "
                "first_value + %s, last_value + %s FROM runs_metricrollup WHERE run_id = %s",
                [run.pk, shift, shift, shift, shift, first],
            )
            cursor.execute(
                "INSERT INTO runs_runmetrickey (run_id, key, last_step) "
                "SELECT %s, key, last_step FROM runs_runmetrickey WHERE run_id = %s",
                [run.pk, first],
            )
        cursor.execute("ANALYZE runs_metricpoint")
        cursor.execute("ANALYZE runs_metricrollup")
    return [run.pk for run in runs]


def median_ms(fn, repeat: int = 5) -> tuple[float, list[float]]:
    fn()  # warm: the first request's imports and the database's cache are not what is measured
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(round((time.perf_counter() - t) * 1000, 1))
    return round(statistics.median(times), 1), times


def drawn_signal() -> str:
    """What the chart script says when a chart has drawn: data-drawn once it sets it."""
    scripts = [REPO / "static" / "js" / name for name in ("compare.js", "charts.js")]
    said = any("drawn" in path.read_text() for path in scripts if path.exists())
    return "data-drawn" if said else "uplot-canvas"


def browser_ms(url: str, session_cookie: str, signal_name: str) -> tuple[float, list[float], int]:
    from playwright.sync_api import sync_playwright

    times: list[float] = []
    panels = 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            host = url.split("/")[2].split(":")[0]
            context.add_cookies(
                [{"name": settings.SESSION_COOKIE_NAME, "value": session_cookie, "domain": host, "path": "/"}]
            )
            page = context.new_page()
            for attempt in range(6):  # the first warms the server and the browser's cache: not counted
                page.goto(url, wait_until="commit")
                done = page.wait_for_function(ALL_DRAWN_JS, arg=signal_name, polling="raf", timeout=120_000)
                at, panels = done.json_value()
                if attempt:
                    times.append(round(at, 1))
        finally:
            browser.close()
    return round(statistics.median(times), 1), times, panels


def main() -> None:
    from tests.factories import UserFactory

    user = UserFactory(username=USER)
    # The page shows the user's saved layout: the 20 panels, as a user who picked them would have saved.
    ChartLayout.objects.update_or_create(
        user=user, page="compare", defaults={"layout": {"panels": [{"key": k, "full": False} for k in KEYS]}}
    )
    t0 = time.perf_counter()
    run_ids = runs_loaded(user)
    load_s = round(time.perf_counter() - t0, 1)
    ids = ",".join(map(str, run_ids))
    keys = ",".join(KEYS)
    client = Client()
    client.force_login(user)

    def compare_page() -> None:
        assert client.get(f"/runs/compare/?runs={ids}").status_code == 200
        answer = client.get(
            "/runs/compare/metrics.json", {"runs": ids, "keys": keys, "max_points": MAX_POINTS}
        )
        assert answer.status_code == 200
        assert len(answer.json()["series"]) == len(KEYS)

    def per_run_reads() -> None:
        assert client.get(f"/runs/compare/?runs={ids}").status_code == 200
        for run_id in run_ids:
            read = client.get(f"/runs/{run_id}/metrics.json", {"keys": keys, "max_points": MAX_POINTS})
            assert read.status_code == 200

    batch = client.get(
        "/runs/compare/metrics.json", {"runs": ids, "keys": keys, "max_points": MAX_POINTS}
    ).json()
    series_points = [len(points) for per_run in batch["series"].values() for points in per_run.values()]
    spike_kept = all(
        any(step == 54_321 for step, _ in points) for points in batch["series"]["pass_rate"].values()
    )
    statements: list[str] = []  # a request resets Django's own query log: count through a wrapper

    def counted(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counted):  # the session and the user, then the reads
        client.get("/runs/compare/metrics.json", {"runs": ids, "keys": keys, "max_points": MAX_POINTS})
    compare_ms, compare_times = median_ms(compare_page)
    per_run_ms, _ = median_ms(per_run_reads)

    signal_name = drawn_signal()
    port = free_port()
    env = {**os.environ, "TRIAD_DEV": "true", "PYTHONUNBUFFERED": "1"}
    server = asgi_server(env, port, Path(tempfile.gettempdir()) / "triad-bench-compare-web.log")
    try:
        wait_port(port)
        drawn_ms, drawn_times, panels = browser_ms(
            f"http://127.0.0.1:{port}/runs/compare/?runs={ids}",
            client.cookies[settings.SESSION_COOKIE_NAME].value,
            signal_name,
        )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    print(
        json.dumps(
            {
                "runs": N_RUNS,
                "keys": len(KEYS),
                "points_per_series": POINTS,
                "compare_page_ms": compare_ms,
                "compare_page_runs_ms": compare_times,
                "per_run_reads_ms": per_run_ms,
                "ratio_vs_per_run_reads": round(compare_ms / per_run_ms, 3),
                "batch_statements": len(statements),
                "series": len(series_points),
                "points_returned": sum(series_points),
                "spike_kept": spike_kept,
                "all_charts_drawn_ms": drawn_ms,
                "all_charts_drawn_runs_ms": drawn_times,
                "panels_drawn": panels,
                "drawn_signal": signal_name,
                "goal_ms": 1000,
                "load_s": load_s,
            }
        )
    )


if __name__ == "__main__":
    main()
