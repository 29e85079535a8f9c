"""The Celery app and its queues.

Queues: "control" (database work: reaping, validation fan-out), "sandbox" (code execution batches, with
no database: what a sandbox task needs comes in its message and what it found goes back to a control
task) and
"gpu.<pool>" (one long task per run: the launcher that supervises `deepspeed`).
"""

import logging
import os
from contextvars import Token
from typing import Any

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    task_postrun,
    task_prerun,
    worker_ready,
)
from kombu import Exchange, Queue  # type: ignore[attr-defined]
from kombu.exceptions import OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

from django.conf import settings

from controlplane import logs

CONTROL = settings.TRIAD_CONTROL_QUEUE
app = Celery("triad")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Redis redelivers a message whose ack has not come within the visibility timeout. `runs.execute` acks
# when it starts (acks_late=False), so only a start message taken by a worker that died before its ack is
# redelivered, to another worker after this long, and a duplicate is refused by the run's claim
# (docs/runs.md, "Attempts"). Not longer: a run would wait that long for a new node. Not
# shorter than the longest acks_late task (sandbox batches and review matrices: 10 minutes), or those run
# twice. Explicit, as the usual advice for long tasks (raise it to hours) is wrong here.
REDIS_VISIBILITY_TIMEOUT_S = 3600
if str(app.conf.broker_url).startswith(("redis://", "rediss://")):
    app.conf.broker_transport_options = {
        "visibility_timeout": REDIS_VISIBILITY_TIMEOUT_S,
        **app.conf.broker_transport_options,
    }
# Workers log through Celery's handlers, not settings.LOGGING: they get the run on every line too
# (controlplane/logs.py; the signal handlers below add the filter, and JSON when TRIAD_LOG_FORMAT says so).
app.conf.worker_log_format = "[%(asctime)s: %(levelname)s/%(processName)s]%(run_tag)s %(message)s"
app.conf.worker_task_log_format = (
    "[%(asctime)s: %(levelname)s/%(processName)s]%(run_tag)s %(task_name)s[%(task_id)s]: %(message)s"
)
app.conf.task_default_queue = CONTROL
# Each queue its own exchange and routing key. A Queue named alone is bound to the default exchange with
# the default routing key (the control queue's), and on Redis that delivered every control task to the
# sandbox queue too: a sandbox node, which holds no database, took control tasks (docs/sandbox.md, "The
# sandbox fleet").
app.conf.task_queues = tuple(
    Queue(name, Exchange(name), routing_key=name)  # type: ignore[no-untyped-call]
    for name in (CONTROL, settings.TRIAD_SANDBOX_QUEUE)
)
app.conf.task_create_missing_queues = True
# Runs are routed per call (gpu.<their pool>); everything else has a fixed queue.
app.conf.task_routes = {
    "sandbox.run_batch": {"queue": settings.TRIAD_SANDBOX_QUEUE},
    "review.compare_matrix": {"queue": settings.TRIAD_SANDBOX_QUEUE},
    "review.compare_matrix_record": {"queue": CONTROL},  # its rows, stored (sandbox nodes have no DB)
    "runs.reap_lost": {"queue": CONTROL},
    "runs.reap_unenqueued": {"queue": CONTROL},
    "evals.reap_lost": {"queue": CONTROL},
    "datasets.reap_unenqueued": {"queue": CONTROL},
    # Dataset verification: chunks made payloads on control, run on the sandbox queue with no database,
    # their verdicts stored on control (docs/datasets.md, "Verification"); analysis runs no code.
    "datasets.verify_chunk": {"queue": CONTROL},
    "datasets.verify_run": {"queue": settings.TRIAD_SANDBOX_QUEUE},
    "datasets.verify_record": {"queue": CONTROL},
    "datasets.analyse_version": {"queue": CONTROL},
    # Generation jobs: teacher steps and the resume reaper on control (network, the API key); their
    # sandbox batches are routed per call to the sandbox queue (docs/datasets.md, "Generation jobs").
    "datasets.generation_step": {"queue": CONTROL},
    "datasets.generation_resume": {"queue": CONTROL},
    "datasets.generation_sandbox": {"queue": settings.TRIAD_SANDBOX_QUEUE},
    "datasets.generation_record": {"queue": CONTROL},  # what that batch sent back
    "spend.accrue": {"queue": CONTROL},
    "sweeps.halve": {"queue": CONTROL},
    "nodes.*": {"queue": CONTROL},
    # A node's answer about a model it inspected (`models.inspect` goes to the model's gpu.<pool>).
    "models.record": {"queue": CONTROL},
    "models.exported": {"queue": CONTROL},  # and its answer about an export (`models.export`: gpu.<pool>)
    "evals.record": {"queue": CONTROL},  # a node's answers about an evaluation (`evals.execute`: gpu.<pool>)
    "runs.diversity": {"queue": CONTROL},  # per-step diversity points of a run (runs/diversity.py)
    "alerts.*": {"queue": CONTROL},  # evaluation and delivery of alerts (runs/alerts/tasks.py)
}
app.conf.beat_schedule = {
    "reap-lost-runs": {"task": "runs.reap_lost", "schedule": 15.0},
    # Evaluation jobs whose node went silent mid-job (TRIAD_EVAL_LOST_AFTER_S; docs/evals.md).
    "reap-lost-evaluations": {"task": "evals.reap_lost", "schedule": 30.0},
    # Runs and verifications whose enqueue failed or never happened (docs/runs.md, "Broker down").
    "reap-unenqueued-runs": {"task": "runs.reap_unenqueued", "schedule": 30.0},
    "reap-unenqueued-verifications": {"task": "datasets.reap_unenqueued", "schedule": 30.0},
    # Generation jobs whose worker died mid-step resume (TRIAD_GENJOB_LEASE_S; docs/datasets.md).
    "resume-generation-jobs": {"task": "datasets.generation_resume", "schedule": 30.0},
    "accrue-run-costs": {"task": "spend.accrue", "schedule": settings.TRIAD_SPEND_ACCRUE_S},
    # Alert rules on silence ("no new point for N minutes"; docs/alerts.md).
    "check-alert-silence": {"task": "alerts.check_silence", "schedule": 30.0},
    # Successive halving of sweeps, off the ingest path (docs/sweeps.md).
    "halve-sweeps": {"task": "sweeps.halve", "schedule": 15.0},
}
# Each app's tasks.py, and the sandbox node's task (workers/tasks.py).
app.autodiscover_tasks(
    ["runs", "runs.review", "runs.spend", "runs.registry", "runs.evals", "datasets_app", "workers"]
)
app.autodiscover_tasks(["runs.alerts"])  # alerts: evaluation and delivery (docs/alerts.md)
app.autodiscover_tasks(["runs.sweeps"])  # a line of its own: apps added in parallel merge cleanly

# What a publish raises when the broker is down, refuses or hangs past TRIAD_BROKER_TIMEOUT_S.
BROKER_ERRORS: tuple[type[BaseException], ...] = (OperationalError, OSError)


def broker_unreachable(exc: BaseException) -> str:
    """Why a publish failed, for people: which broker (its host, never its credentials) and the error."""
    conn = app.connection_for_write()
    where = f"{conn.hostname}:{conn.port}" if conn.port else conn.transport_cls
    return f"the task broker at {where} is unreachable: {str(exc).rstrip('.')}"


@worker_ready.connect
def _node_agent_start(sender: Any, **_: Any) -> None:
    """A worker on a gpu.<pool> queue registers itself as a node and heartbeats (controlplane.node_agent)."""
    from controlplane import node_agent

    queues = [q.name for q in sender.task_consumer.queues] if sender.task_consumer else []
    node_agent.start(app, sender.hostname, queues)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _log_runs(logger: logging.Logger, **_: Any) -> None:
    """Celery's handlers, as settings.LOGGING's: the run on every line, one JSON object when asked."""
    for handler in logger.handlers:
        handler.addFilter(logs.RunIdFilter())
        if settings.TRIAD_LOG_FORMAT == "json":
            handler.setFormatter(logs.JsonFormatter())


# A task that takes a run id runs in that run's log context (the launcher's lines included).
_task_run_tokens: dict[str, Token[int | None]] = {}


@task_prerun.connect
def _task_run_context(task_id: str, task: Any, args: Any = (), kwargs: Any = None, **_: Any) -> None:
    run_id = logs.task_run_id(task.run, tuple(args or ()), dict(kwargs or {}))
    if run_id is not None:
        _task_run_tokens[task_id] = logs.run_id_var.set(run_id)


@task_postrun.connect
def _task_run_context_end(task_id: str, **_: Any) -> None:
    token = _task_run_tokens.pop(task_id, None)
    if token is not None:
        logs.run_id_var.reset(token)
