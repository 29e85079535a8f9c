"""Celery tasks are tested by calling them, like services."""

import pytest

from workers.tasks import sandbox_run_batch_task


def test_the_sandbox_task_takes_and_returns_the_cli_json():
    batch = {
        "limits": {"timeout_s": 5, "memory_mb": 512},
        "items": [
            {"id": "ok", "code": "def f(x):\n    return x\n", "tests": "assert f(1) == 1\n"},
            {"id": "bad", "code": "def f(x):\n    return 0\n", "tests": "assert f(1) == 1\n"},
        ],
    }

    out = sandbox_run_batch_task(batch)

    assert [(r["id"], r["passed"], r["error_class"]) for r in out["results"]] == [
        ("ok", True, "passed"),
        ("bad", False, "wrong_answer"),
    ]


def test_a_run_start_is_acknowledged_early_and_redis_redelivers_a_lost_one_within_the_hour():
    """docs/runs.md, "Acknowledgements and redelivery": a redelivered start is refused by the claim."""
    from controlplane.celery import app
    from runs.tasks import run_execute_task

    assert run_execute_task.acks_late is False
    if not str(app.conf.broker_url).startswith("redis"):
        pytest.skip("the embedded broker has no visibility timeout")
    assert app.conf.broker_transport_options["visibility_timeout"] == 3600
