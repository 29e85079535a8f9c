"""Verification by execution of program problems (stdin/stdout), as one Celery chunk runs it.

48 problems (the default chunk, TRIAD_VERIFY_CHUNK) with 5 cases each, imported from a CodeContests-style
file by the parser, then ``datasets_app.verification.verify``: each reference run once per case, the
constant-output and echo stand-ins in the same batch, failures re-run. Anchor, same run: every case of
every reference (and of the stand-ins) run as a bare ``python3 -c`` subprocess on a thread pool of the
same size, no isolation: what the sandbox's isolation and the verdict rules cost over bare execution.

    .venv/bin/python bench/program_verify.py [--problems 48] [--cases 5] [--workers N] [--mode warm|cold]

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datasets_app.parsing import parse_jsonl
from datasets_app.verification import Spec, trivial_programs, verify
from workers.sandbox.batch import resolve_backend


def contests(n: int, cases: int) -> list[bytes]:
    lines = []
    for i in range(n):
        inputs = [f"{i} {k}\n" for k in range(cases)]
        outputs = [f"{i * k + i}\n" for k in range(cases)]
        record = {
            "name": f"{i}_A. Affine",
            "description": f"Given a and b print a * b + a. ({i})",
            "public_tests": {"input": inputs[:1], "output": outputs[:1]},
            "private_tests": {"input": inputs[1:], "output": outputs[1:]},
            "solutions": {
                "language": [3],
                "solution": ["a, b = map(int, input().split())\nprint(a * b + a)\n"],
            },
            "difficulty": 1,
        }
        lines.append(json.dumps(record).encode() + b"\n")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=48)
    parser.add_argument("--cases", type=int, default=5)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3, help="best of N for each side")
    parser.add_argument("--mode", default="warm")
    args = parser.parse_args()
    parsed = parse_jsonl(contests(args.problems, args.cases))
    assert not parsed.errors, parsed.errors
    specs = [
        Spec(
            i,
            p.prompt,
            "",
            p.solution,
            "",
            kind="program",
            cases=[{"input": a, "output": b} for a, b in p.cases],
            compare=p.compare,
        )
        for i, p in enumerate(parsed.problems)
    ]
    verify(specs[:1], workers=args.workers, mode=args.mode)  # the sandbox's one-time probe
    runs = [
        (code, case["input"])
        for s in specs
        for code in (s.solution, *(c for _, c in trivial_programs(s.cases)))
        for case in s.cases
    ]

    def bare(job: tuple[str, str]) -> None:
        subprocess.run(
            [sys.executable, "-c", job[0]], input=job[1], capture_output=True, text=True, timeout=10
        )

    ours, anchor, statuses = [], [], {}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        verdicts = verify(specs, workers=args.workers, mode=args.mode)
        ours.append(time.perf_counter() - t0)
        statuses = {}
        for v in verdicts:
            key = v.status if v else "undecided"
            statuses[key] = statuses.get(key, 0) + 1
        t0 = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            list(pool.map(bare, runs))
        anchor.append(time.perf_counter() - t0)
    figures = {
        "problems": len(specs),
        "cases_each": args.cases,
        "executions": len(runs),
        "workers": args.workers,
        "backend": resolve_backend(None),
        "mode": args.mode,
        "verify_s": round(min(ours), 2),
        "verify_s_runs": [round(x, 2) for x in ours],
        "ms_per_problem": round(1000 * min(ours) / len(specs), 1),
        "statuses": statuses,
        "anchor_bare_subprocess_s": round(min(anchor), 2),
        "ratio_anchor_over_ours": round(min(anchor) / min(ours), 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
