"""Celery tasks of runs: thin wrappers that own queues, limits and retries, and call the launcher or a
service, imported lazily. They take ids (and, for a run, its token: GPU nodes have no database to read it
from), never objects."""

from pathlib import Path
from typing import Any

from celery import shared_task
from django.conf import settings


@shared_task(name="runs.execute", bind=True, acks_late=False, ignore_result=True)
def run_execute_task(self: Any, run_id: int, token: str) -> str:
    """Runs on a `gpu.<pool>` worker: fetch the spec, claim the run's attempt, start `deepspeed`, supervise
    until the run ends.

    acks_late=False: the message is acknowledged when the task starts, because a run is hours long and
    a broker redelivers a message left unacknowledged that long (Redis's visibility timeout, RabbitMQ's
    consumer timeout). A redelivery may still happen (a worker lost before its ack reached the broker);
    the claim makes it harmless: its launcher is refused and returns "refused" without starting anything
    (docs/runs.md, "Attempts").

    A run of N nodes has N of these messages in flight; each worker that takes one joins the run's gang.
    A gang that does not form in time, or another gang of the pool gathering, makes the launcher answer
    "requeue": the message goes back on the queue it came from, at once (a countdown would be an ETA
    message, held by one busy worker), so the run keeps its N messages."""
    from controlplane.node_agent import node_address
    from workers.launcher import REQUEUE, run_supervised

    hostname = self.request.hostname

    def node_assign() -> None:  # only the launcher that holds the attempt says which node took the run
        if hostname:
            run_node_assign_task.delay(run_id, hostname)

    workdir = Path(settings.TRIAD_RUNS_DIR) / str(run_id)
    workdir.mkdir(parents=True, exist_ok=True)
    result = run_supervised(
        run_id=run_id,
        token=token,
        control_url=settings.TRIAD_CONTROL_URL,
        workdir=workdir,
        heartbeat_s=settings.TRIAD_HEARTBEAT_S,
        on_claimed=node_assign,
        cpu_procs=settings.TRIAD_PROCS_PER_NODE,  # this node's, for a CPU run that leaves it to the node
        node=hostname or "",
        address=node_address(),  # what this node announces (the registry's): where its gang reaches it
        checkpoint_root=Path(settings.TRIAD_CHECKPOINT_DIR),
        lost_after_s=settings.TRIAD_LOST_AFTER_S,
    )
    if result == REQUEUE:
        queue = (self.request.delivery_info or {}).get("routing_key") or f"gpu.{settings.TRIAD_DEFAULT_POOL}"
        run_execute_task.apply_async(args=[run_id, token], queue=queue)
    return result


@shared_task(name="runs.reap_lost", ignore_result=True, acks_late=True)
def run_reap_lost_task() -> list[int]:
    """Beat, on the control queue: runs whose nodes stopped heartbeating become `lost`. Idempotent."""
    from runs.lifecycle import run_reap_lost

    return run_reap_lost()


@shared_task(name="runs.reap_unenqueued", ignore_result=True, acks_late=True, expires=60)
def run_reap_unenqueued_task() -> list[int]:
    """Beat, on the control queue: queued runs that never reached the broker become `failed`. Idempotent."""
    from runs.lifecycle import run_reap_unenqueued

    return run_reap_unenqueued()


@shared_task(name="nodes.register", ignore_result=True, acks_late=True)
def node_register_task(info: dict[str, Any]) -> None:
    """Control queue: a GPU worker that started describes itself. Idempotent (an upsert)."""
    from runs.nodes import NodeInfo, node_register

    node_register(info=NodeInfo.from_dict(info))


@shared_task(name="nodes.heartbeat", ignore_result=True, expires=60)
def node_heartbeat_task(name: str, at: float, sample: dict[str, Any] | None = None) -> None:
    """`sample`: the node's system metrics (controlplane/node_metrics.py); a node of an older version
    sends none, and its heartbeat counts as before."""
    import datetime as dt

    from runs.node_samples import node_sample_record
    from runs.nodes import node_heartbeat

    when = dt.datetime.fromtimestamp(at, tz=dt.UTC)
    node_heartbeat(name=name, at=when)
    if sample is not None:
        node_sample_record(name=name, at=when, raw=sample)


@shared_task(name="nodes.sandbox_stopped", ignore_result=True, acks_late=True)
def sandbox_worker_stopped_task(name: str, queue: str, batches: int, reason: str) -> None:
    """Control queue: a sandbox worker whose batches all came back sandbox_error stopped consuming its
    queue (workers/tasks.py) and says so; it has no database of its own to write to."""
    from runs.nodes import sandbox_worker_stopped

    sandbox_worker_stopped(name=name, queue=queue, batches=batches, reason=reason)


@shared_task(name="nodes.assign_run", ignore_result=True, acks_late=True)
def run_node_assign_task(run_id: int, node_name: str) -> None:
    from runs.nodes import run_node_assign

    run_node_assign(run_id=run_id, node_name=node_name)


@shared_task(name="runs.checkpoints_delete", ignore_result=True, acks_late=True)
def run_checkpoints_delete_task(run_id: int) -> dict[str, Any]:
    """On a `gpu.<pool>` worker of a deleted run's pool: remove its checkpoints from the storage the
    pool's nodes mount, keeping the models exported from it (workers/checkpoint_files.py). Idempotent:
    a redelivery finds nothing left to remove."""
    from workers.checkpoint_files import checkpoints_delete

    done = checkpoints_delete(
        run_id,
        shared=Path(settings.TRIAD_CHECKPOINT_DIR),
        workdir=Path(settings.TRIAD_RUNS_DIR) / str(run_id),
    )
    return {"removed": done.removed, "kept": done.kept, "bytes": done.bytes}


@shared_task(name="runs.diversity", ignore_result=True, acks_late=True, expires=600)
def run_diversity_task(run_id: int) -> int:
    """On the control queue, after ingest stored generations (throttled per run): the per-step diversity
    points of the run's completions (runs/diversity.py). Idempotent: a point replaces its step's."""
    from runs.diversity import run_diversity_measure

    return run_diversity_measure(run_id=run_id)
