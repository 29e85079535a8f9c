"""The Celery app and its queues.

Queues: "control" (database work: reaping, validation fan-out), "sandbox" (code execution batches) and
"gpu.<pool>" (one long task per run: the launcher that supervises `deepspeed`).
"""

import os

from celery import Celery
from kombu import Queue  # type: ignore[attr-defined]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")

app = Celery("triad")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_default_queue = "control"
app.conf.task_queues = (Queue("control"), Queue("sandbox"))  # type: ignore[no-untyped-call]
app.conf.task_create_missing_queues = True
# Runs are routed per call (gpu.<their pool>); everything else has a fixed queue.
app.conf.task_routes = {"sandbox.run_batch": {"queue": "sandbox"}, "runs.reap_lost": {"queue": "control"}}
app.conf.beat_schedule = {
    "reap-lost-runs": {"task": "runs.reap_lost", "schedule": 15.0},
}
app.autodiscover_tasks(["workers"])
