"""A 2-node x 1-rank gang run that loses a node and resumes on two others, through the real stack.

The stack of the e2e tests (uvicorn, a Celery worker for the control and sandbox queues) on a database
made for the run; nodes are network namespaces of this machine joined by veth pairs
(tests/e2e/netns.py, needs root), each with a Celery worker on the pool's GPU queue. The small Hugging
Face model with ZeRO-2 on gloo is launched from the launch form (Django's test client) on nodes a and b;
after a checkpoint node b's worker is SIGKILLed (its rank goes with it: workers/group_guard.py;
`--kill node`: everything in b's namespace at once); the reaper marks the run lost; a is stopped; c and
d come up; the run page's Resume is posted; the run finishes on c and d.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/triad_bench .venv/bin/python bench/multinode.py

Last line: {"nodes", "world_size", "final_status", "resumed_from_step", "resume_node_differs",
"metrics_missing", "metrics_duplicated", "wall_s"}: missing and duplicated count (key, step) pairs against
the run's steps x tests/e2e/gang.py METRIC_KEYS; wall_s runs from the launch to the run's end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
os.environ.setdefault("TRIAD_DEV", "true")  # a benchmark is development: no production key needed
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/triad_bench")
# The stack's own servers: nodes in other network namespaces share no embedded broker's state with it.
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/1")

LOST_AFTER_S = 8


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--checkpoint-every", type=int, default=2)
    parser.add_argument(
        "--kill",
        choices=("node", "worker"),
        default="worker",
        help="worker: b's worker is SIGKILLed (its launcher's group guard takes b's rank with it); node: "
        "everything in b's namespace is SIGKILLed at once, as with a machine lost",
    )
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host, 'testserver', is allowed
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = (
        f"{settings.DATABASES['default']['NAME']}_multinode"
    )
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        with tempfile.TemporaryDirectory(prefix="triad-multinode-") as tmp:
            figures = scenario(
                Path(tmp), settings, steps=args.steps, checkpoint_every=args.checkpoint_every, kill=args.kill
            )
    finally:
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(json.dumps(figures))


def scenario(tmp: Path, settings, *, steps: int, checkpoint_every: int, kill: str) -> dict[str, object]:
    from runs.lifecycle import run_reap_lost
    from runs.models import Node, Run, RunAttempt, RunStatus
    from tests.e2e.conftest import running_stack, wait_until
    from tests.e2e.gang import checkpointed, launch_from_form, metric_accounting, prepare, resume_from_page
    from tests.e2e.netns import Cluster
    from workers.trainer.tiny_hf import build_tiny_hf

    finished = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
    model_dir = build_tiny_hf(tmp / "model")
    (tmp / "stack").mkdir()
    with running_stack(tmp / "stack", settings, gpu_worker=False) as stack:
        cluster = Cluster(
            env={**stack.env, "TRIAD_LOST_AFTER_S": str(LOST_AFTER_S)},
            pool=stack.pool,
            var_dir=stack.var_dir,
            checkpoint_dir=stack.var_dir / "checkpoints",
        )
        try:
            a, b = cluster.link("a", "b")
            for node in (a, b):
                cluster.start_worker(node)
            prepared = prepare(stack, model_dir, log_tail=cluster.log_tail)
            wait_until(lambda: Node.objects.filter(pool=stack.pool).count() == 2, 60, "both nodes registered")

            t0 = time.monotonic()
            run = launch_from_form(
                prepared, stack.pool, steps=steps, nodes=2, checkpoint_every=checkpoint_every
            )
            wait_until(
                lambda: checkpointed(cluster, run),
                300,
                f"a checkpoint\n{stack.log_tail()}\n{cluster.log_tail()}",
                interval_s=0.1,
            )
            if kill == "node":
                cluster.kill_node(b)
            else:
                cluster.kill_worker(b)
            settings.TRIAD_LOST_AFTER_S = LOST_AFTER_S
            wait_until(lambda: run.pk in run_reap_lost(), 60, f"the run going lost\n{cluster.log_tail()}")
            cluster.stop_node(a)
            c, d = cluster.link("c", "d")
            for node in (c, d):
                cluster.start_worker(node)
            resume_from_page(prepared, run)
            wait_until(
                lambda: Run.objects.get(pk=run.pk).status in finished,
                300,
                f"the resumed run to finish\n{stack.log_tail()}\n{cluster.log_tail()}",
            )
            wall_s = time.monotonic() - t0
        finally:
            cluster.close()
    run.refresh_from_db()
    attempts = list(RunAttempt.objects.filter(run=run).order_by("attempt"))
    first, last = attempts[0], attempts[-1]
    first_nodes = {m["node"] for m in first.nodes}
    last_nodes = {m["node"] for m in last.nodes}
    missing, duplicated = (len(pairs) for pairs in metric_accounting(run, steps=steps))
    return {
        "nodes": len(last.nodes),
        "world_size": sum(int(m.get("ranks") or 0) for m in last.nodes),
        "final_status": run.status,
        "resumed_from_step": last.first_step if last.attempt > 1 else None,
        "resume_node_differs": bool(last.attempt > 1 and last_nodes and not first_nodes & last_nodes),
        "metrics_missing": missing,
        "metrics_duplicated": duplicated,
        "wall_s": round(wall_s, 1),
    }


if __name__ == "__main__":
    main()
