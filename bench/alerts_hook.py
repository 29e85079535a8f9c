"""What alerts add to the ingest path: the hook's after-commit work per batch, against the ingest of that
batch (the anchor), in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/triad_bench REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/alerts_hook.py

A run whose team has a metric alert rule ingests batches of one step × 25 metrics through `run_ingest`
(the API's service; no HTTP), each in its own transaction, as a trainer's steps arrive. Timed, median of
the batches:
- the anchor: `run_ingest` of the batch (commit included, the hook's callback not run);
- the hook inside a run's evaluation window (what almost every batch costs: one Redis SET NX);
- the hook opening a window (the SET, the query for rules, the publish of the evaluation task).
Last line: one JSON object, with `ratio_in_window` and `ratio_window_open` (hook / ingest).
"""

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _setup import django_setup

django_setup()

from django.db import transaction  # noqa: E402

from runs.alerts import hooks  # noqa: E402
from runs.alerts.models import AlertRule  # noqa: E402
from runs.events import parse_batch  # noqa: E402
from runs.ingest import run_ingest  # noqa: E402
from runs.models import RunStatus  # noqa: E402
from tests.factories import RunFactory  # noqa: E402

BATCHES = 200
KEYS = [f"bench/metric_{i:02d}" for i in range(25)]


def main() -> None:
    run = RunFactory(status=RunStatus.RUNNING, name="alerts-hook-bench")
    AlertRule.objects.create(
        team=run.team,
        run=run,
        condition="above",
        metric_key=KEYS[0],
        threshold=1e9,
        created_by=run.created_by,
    )
    ingest_s, in_window_s, opening_s = [], [], []
    for step in range(BATCHES):
        events = [{"seq": step, "type": "metric", "step": step, "values": {k: step * 0.5 for k in KEYS}}]
        batch = parse_batch({"events": events, "source": "trainer"}, max_events=10)
        started = time.perf_counter()
        with transaction.atomic():  # the API's request: its on-commit callbacks are what is timed next
            run_ingest(run_id=run.pk, batch=batch)
            callbacks = list(transaction.get_connection().run_on_commit)
            transaction.get_connection().run_on_commit.clear()
        ingest_s.append(time.perf_counter() - started)
        for _, callback, _ in callbacks:
            opens = step % 20 == 0
            if opens:
                hooks._local_until.clear()
                if hooks._redis is not None:
                    hooks._redis.delete(f"triad:alerts:eval:{run.pk}")
            started = time.perf_counter()
            callback()
            (opening_s if opens else in_window_s).append(time.perf_counter() - started)
    ingest = statistics.median(ingest_s) * 1000
    in_window = statistics.median(in_window_s) * 1000
    opening = statistics.median(opening_s) * 1000
    print(f"ingest of one batch ({len(KEYS)} points): {ingest:.2f} ms (median of {BATCHES})")
    print(f"hook in a window: {in_window * 1000:.0f} µs; hook opening a window: {opening * 1000:.0f} µs")
    figures = {
        "ingest_batch_ms": round(ingest, 3),
        "hook_in_window_ms": round(in_window, 4),
        "hook_window_open_ms": round(opening, 4),
        "ratio_in_window": round(in_window / ingest, 4),
        "ratio_window_open": round(opening / ingest, 4),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
