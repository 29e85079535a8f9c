"""Celery tasks are tested by calling them, like services."""

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
