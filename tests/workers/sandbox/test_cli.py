from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]


def cli(stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.sandbox", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_cli_runs_a_batch_and_writes_results_in_order() -> None:
    # given a batch of a passing and a failing item
    batch: dict[str, Any] = {
        "limits": {"timeout_s": 2, "memory_mb": 512},
        "items": [
            {
                "id": "a",
                "code": "def f(x):\n    return x\n",
                "tests": "assert f(1) == 1\n",
                "entry_point": "",
            },
            {
                "id": "b",
                "code": "def f(x):\n    return 0\n",
                "tests": "def check(candidate):\n    assert candidate(1) == 1\n",
                "entry_point": "f",
            },
        ],
    }
    # when it is piped through the CLI
    done = cli(json.dumps(batch), "--backend", "process")
    # then every result carries the contract's fields, in input order
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    assert [r["id"] for r in results] == ["a", "b"]
    assert [r["error_class"] for r in results] == ["passed", "wrong_answer"]
    assert set(results[0]) == {
        "id", "passed", "error_class", "tests_passed", "tests_total", "duration_ms",
        "stdout", "stderr", "exception_type", "failing_test", "cpu_ms", "custom_score", "cases",
    }  # fmt: skip
    assert results[0]["custom_score"] is None  # no verifier


def test_cli_runs_an_items_verifier() -> None:
    item = {
        "id": "v",
        "code": "def f(x):\n    return x\n",
        "tests": "assert f(1) == 1\n",
        "entry_point": "f",
        "verifier": "def reward(c, problem):\n    return (c(2) == 2) / 4 + len(problem['prompt'])\n",
        "task_id": "T/1",
        "prompt": "",
    }
    done = cli(json.dumps({"items": [item]}), "--backend", "process")
    assert done.returncode == 0, done.stderr
    [result] = json.loads(done.stdout)["results"]
    assert result["custom_score"] == 0.25


def test_cli_rejects_invalid_json_with_exit_2() -> None:
    done = cli("{not json")
    assert done.returncode == 2
    assert "invalid JSON" in done.stderr and done.stdout == ""


def test_cli_names_the_item_and_field_that_is_missing() -> None:
    batch = {"items": [{"id": "a", "code": "", "tests": "assert True"}, {"id": "b", "tests": "assert True"}]}
    done = cli(json.dumps(batch))
    assert done.returncode == 2
    assert "items[1].code" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_cli_names_the_item_and_field_of_the_wrong_type() -> None:
    batch = {"items": [{"id": 7, "code": "", "tests": "assert True"}]}
    done = cli(json.dumps(batch))
    assert done.returncode == 2 and "items[0].id" in done.stderr


def test_cli_rejects_a_bad_limit() -> None:
    done = cli(json.dumps({"limits": {"timeout_s": "soon"}, "items": []}))
    assert done.returncode == 2 and "limits.timeout_s" in done.stderr
