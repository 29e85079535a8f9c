"""What the stops on learning signals add to the accrual tick (docs/spend.md).

    .venv/bin/python bench/spend_stop.py [--runs 50] [--steps 2000] [--long-steps 100000]

Uses its own database `triad_bench_spend`, dropped, created and migrated each time. Loads
`--runs` running runs with `--steps` steps of four metrics each (pass_rate and frac_reward_zero_std
noisy, so no rule ever fires), with COPY as ingest would. Times, median of 9 after one warm-up, one
accrual tick over those runs with both rules on (N = 1000 steps each) against the anchor: the same tick
with the rules off, in the same run, alternating. Then the worst case of one check: a run of
`--long-steps` steps with both rules at that many steps. Last line: one JSON object.
"""

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
os.environ.setdefault("TRIAD_DEV", "true")  # a benchmark is development: no production key needed
os.environ["DATABASE_URL"] = "postgres://postgres@127.0.0.1:5432/triad_bench_spend"
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/2")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/3")

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
from django.core.management import call_command  # noqa: E402

KEYS = ("pass_rate", "frac_reward_zero_std", "reward/mean", "loss")
RULES_ON = {
    "stop_pass_rate_flat_steps": 1000,
    "stop_pass_rate_tolerance": 0.01,
    "stop_zero_std_steps": 1000,
    "stop_zero_std_frac": 0.9,
}
T0 = dt.datetime(2025, 5, 10, tzinfo=dt.UTC)


def fresh_database() -> None:
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        admin.execute('DROP DATABASE IF EXISTS "triad_bench_spend" WITH (FORCE)')
        admin.execute('CREATE DATABASE "triad_bench_spend"')
    call_command("migrate", verbosity=0)


def load(runs: int, steps: int, long_steps: int) -> tuple[list[int], int]:
    from runs.metric_store import metric_points_write
    from runs.models import RunStatus
    from tests.factories import DatasetVersionFactory, RunFactory, UserFactory

    user = UserFactory(username="bench-spend")
    version = DatasetVersionFactory()
    rng = random.Random(0)
    far = T0 + dt.timedelta(days=365)  # heard from all along: every tick bills its whole stretch

    def series(run_id: int, n: int, keys: tuple[str, ...]) -> None:
        rows = []
        for step in range(n):
            for key in keys:
                rows.append((run_id, key, step, rng.random(), T0))
            if len(rows) >= 50_000:
                metric_points_write(rows)
                rows = []
        metric_points_write(rows)

    ids = []
    for _ in range(runs):
        run = RunFactory(
            created_by=user,
            dataset_version=version,
            status=RunStatus.RUNNING,
            pool="cpu",
            config={"steps": steps, "gpus_per_node": 1},
            started_at=T0,
            last_heartbeat_at=far,
            last_step=steps - 1,
        )
        series(run.pk, steps, KEYS)
        ids.append(run.pk)
    long = RunFactory(
        created_by=user,
        dataset_version=version,
        status=RunStatus.SUCCEEDED,  # out of the ticks: timed on its own
        pool="cpu",
        config={"steps": long_steps},
        last_step=long_steps - 1,
    )
    series(long.pk, long_steps, KEYS[:2])
    return ids, long.pk


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--long-steps", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    fresh_database()
    from runs.models import Run
    from runs.spend.services import learning_stop_reason, run_cost_accrue

    ids, long_id = load(args.runs, args.steps, args.long_steps)
    base = {"steps": args.steps, "gpus_per_node": 1}
    times: dict[str, list[float]] = {"off": [], "on": []}
    tick = 0
    for i in range(args.repeats + 1):
        for mode in ("off", "on"):
            Run.objects.filter(pk__in=ids).update(config={**base, **(RULES_ON if mode == "on" else {})})
            tick += 1
            started = time.perf_counter()
            result = run_cost_accrue(now=T0 + dt.timedelta(seconds=10 * tick))
            elapsed = time.perf_counter() - started
            assert len(result.accrued) == len(ids) and not result.learning_stopped, result
            if i:  # the first round warms up
                times[mode].append(elapsed)
    long_config = {
        **RULES_ON,
        "stop_pass_rate_flat_steps": args.long_steps,
        "stop_zero_std_steps": args.long_steps,
    }
    worst = []
    for i in range(args.repeats + 1):
        started = time.perf_counter()
        reason = learning_stop_reason(run_id=long_id, config=long_config, last_step=args.long_steps - 1)
        if i:
            worst.append(time.perf_counter() - started)
        assert reason == ""
    off, on = statistics.median(times["off"]), statistics.median(times["on"])
    figures = {
        "bench": "spend_stop",
        "runs": len(ids),
        "steps_per_run": args.steps,
        "tick_rules_off_ms": round(off * 1000, 1),
        "tick_rules_on_ms": round(on * 1000, 1),
        "ratio_on_to_off": round(on / off, 3),
        "check_per_run_ms": round((on - off) / len(ids) * 1000, 3),
        "worst_check_ms": round(statistics.median(worst) * 1000, 1),
        "worst_check_window_steps": args.long_steps,
    }
    print(f"tick over {len(ids)} running runs: rules off {off * 1000:.1f} ms, on {on * 1000:.1f} ms")
    print(f"one check over a {args.long_steps}-step window: {statistics.median(worst) * 1000:.1f} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
