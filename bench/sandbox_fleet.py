"""The sandbox fleet's overhead: items/s scored through it against the trainer's local sandbox, same run.

    .venv/bin/python bench/sandbox_fleet.py [--items 64] [--rounds 7] [--chunk-items 16] [--in-flight 4]

One sandbox node is started: a real `celery -A controlplane worker -Q <its queue> -P solo` on Redis
(CELERY_BROKER_URL, default redis://127.0.0.1:6379/3; results through the same Redis), without
DATABASE_URL, as a sandbox node runs. Each round scores one batch of `--items` fresh items (a small
function and three asserts; fresh so that no result cache serves them) twice, interleaved and in
alternating order: locally (`run_batch` with one worker thread per CPU, what a lone trainer rank uses)
and through the fleet (workers/fleet.py: chunks of `--chunk-items`, at most `--in-flight` outstanding;
the node's run_batch uses one thread per CPU too). Both run on the same CPUs, so the ratio is the fleet's
own cost: the broker and result round trips, the JSON, and each chunk's tail. The first round is a
warm-up and is left out.

Last line: one JSON object; `fleet_overhead` = local items/s ÷ fleet items/s (the median of the rounds'
ratios; goal ≤ 1.15), with the load average seen.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workers.fleet import FleetClient, FleetConfig  # noqa: E402
from workers.sandbox import Item, Limits, run_batch  # noqa: E402

LIMITS = Limits(timeout_s=5, memory_mb=512)
NODE = (sys.executable, "-m", "celery", "-A", "controlplane", "worker", "-P", "solo", "--loglevel", "WARNING")


def items_for(round_: int, n: int) -> list[Item]:
    return [
        Item(
            id=f"r{round_}-{k}",
            code=f"def add(a, b):\n    c = {round_ * 1000 + k}\n    return a + b + c - c\n",
            tests="assert add(1, 2) == 3\nassert add(-1, 1) == 0\nassert add(10, 5) == 15\n",
            entry_point="add",
        )
        for k in range(n)
    ]


def start_node(url: str, queue: str, var_dir: Path) -> tuple[subprocess.Popen[bytes], Path]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        CELERY_BROKER_URL=url,
        REDIS_URL=url,
        TRIAD_SANDBOX_QUEUE=queue,
        TRIAD_CONTROL_QUEUE=f"{queue}-control",
        TRIAD_VAR_DIR=str(var_dir),
        TRIAD_DEV="true",
    )
    log = var_dir / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*NODE, "-Q", queue, "-n", f"{queue}@bench"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, log


def timed(score, items: list[Item]) -> float:
    t0 = time.perf_counter()
    results = score(items)
    elapsed = time.perf_counter() - t0
    bad = [(r.id, r.error_class) for r in results if not r.passed]
    if bad:
        raise SystemExit(f"{len(bad)} items did not pass: {bad[:3]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--chunk-items", type=int, default=16)
    parser.add_argument("--in-flight", type=int, default=4)
    args = parser.parse_args()
    url = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/3")
    queue = f"sandbox-bench-{uuid.uuid4().hex[:8]}"
    cpus = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        proc, log = start_node(url, queue, Path(tmp))
        fleet = FleetClient(
            FleetConfig(
                broker_url=url,
                backend_url=url,
                queue=queue,
                chunk_items=args.chunk_items,
                in_flight=args.in_flight,
                chunk_timeout_s=120,
            )
        )
        try:
            deadline = time.monotonic() + 120
            while not fleet.app.control.ping(destination=[f"{queue}@bench"], timeout=1.0):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the sandbox node did not answer\n" + log.read_text())
            local_s: list[float] = []
            fleet_s: list[float] = []

            def local(items: list[Item]) -> list:
                return run_batch(items, LIMITS, workers=cpus)

            def remote(items: list[Item]) -> list:
                return fleet.run_batch(items, LIMITS)

            for round_ in range(args.rounds + 1):
                order = [(local, local_s), (remote, fleet_s)]
                for score, into in order if round_ % 2 else order[::-1]:
                    elapsed = timed(score, items_for(round_ * 2 + (score is remote), args.items))
                    if round_:  # round 0 warms both up (the node's bwrap probe, imports, connections)
                        into.append(elapsed)
        finally:
            fleet.close()
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    ratios = [f / loc for loc, f in zip(local_s, fleet_s, strict=True)]
    print(
        json.dumps(
            {
                "items": args.items,
                "rounds": args.rounds,
                "chunk_items": args.chunk_items,
                "in_flight": args.in_flight,
                "cpus": cpus,
                "node": "1 celery worker, -P solo, run_batch with one thread per CPU",
                "local_items_per_s": round(args.items / statistics.median(local_s), 1),
                "fleet_items_per_s": round(args.items / statistics.median(fleet_s), 1),
                "fleet_overhead": round(statistics.median(ratios), 3),
                "fleet_overhead_rounds": [round(r, 3) for r in ratios],
                "goal": 1.15,
                "loadavg": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    main()
