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


def test_a_node_without_isolation_answers_every_item_sandbox_error_with_the_reason(
    bwrap_missing, monkeypatch
):
    """The fleet client sends such items once more (another worker may isolate): nothing is scored."""
    from workers import tasks

    monkeypatch.setattr(tasks, "FAILURES", tasks._Failures())
    batch = {"items": [{"id": "a", "code": "x = 1\n", "tests": "assert x == 1\n"}]}

    out = sandbox_run_batch_task(batch)

    (result,) = out["results"]
    assert (result["id"], result["error_class"]) == ("a", "sandbox_error")
    assert result["stderr"].startswith("sandbox unavailable on this node: ")
    assert tasks.FAILURES.in_a_row == 1


def test_two_whole_batches_of_sandbox_error_in_a_row_stop_a_worker_once_and_a_verdict_resets_the_count():
    from workers.tasks import _Failures

    failures = _Failures()

    assert [failures.note(failed) for failed in (True, False, True, True, True, False, True, True)] == [
        False,
        False,
        False,
        True,  # two in a row: stop, and say so
        False,  # once
        False,
        False,
        False,
    ]
