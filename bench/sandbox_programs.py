"""What a program item's case costs, against the bare start of the interpreter it runs, in one run
(see docs/benchmarks.md, "Program items").

    .venv/bin/python bench/sandbox_programs.py [--cases 50] [--rounds 3]

- per_case_ms: one program item (``print(int(input()) * 2)``) with ``--cases`` cases, wall time / cases,
  best of ``--rounds``, on process, bwrap cold and bwrap warm.
- bare_start_ms: ``python -S -s -B -P -c`` reading stdin and printing, the same real interpreter, in a
  loop of ``--cases`` runs, best of the rounds: what each case's fresh interpreter costs at least.
- ratio: per_case_ms / bare_start_ms per backend (the judge's share on top: memfds, fork, the
  comparison, the kill of the slot uid's leftovers).

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time

from workers.sandbox import Item, Limits, run_batch
from workers.sandbox.batch import bwrap_available
from workers.sandbox.payload import PYTHON_FLAGS, python_executable


def bare_start_ms(n: int) -> float:
    argv = [python_executable(), *PYTHON_FLAGS, "-c", "import sys; sys.stdin.read(); print(1)"]
    t = time.monotonic()
    for i in range(n):
        subprocess.run(argv, input=f"{i}\n", capture_output=True, text=True, check=True)
    return (time.monotonic() - t) * 1000 / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cases = tuple((f"{i}\n", f"{2 * i}\n") for i in range(args.cases))
    item = Item(id="p", code="print(int(input()) * 2)\n", tests="", kind="program", cases=cases)
    variants = [("process", "cold")]
    if bwrap_available():
        variants += [("bwrap", "cold"), ("bwrap", "warm")]
    out: dict[str, object] = {"cases": args.cases, "load_avg_1m": round(os.getloadavg()[0], 2)}
    bare = min(bare_start_ms(args.cases) for _ in range(args.rounds))
    out["bare_start_ms"] = round(bare, 2)
    for backend, mode in variants:
        best = float("inf")
        for _ in range(args.rounds):
            t = time.monotonic()
            [r] = run_batch([item], Limits(), backend=backend, mode=mode, cache=False)
            best = min(best, time.monotonic() - t)
            if not r.passed:
                raise SystemExit(f"{backend}/{mode}: {r.error_class}: {r.stderr[:300]}")
        per_case = best * 1000 / args.cases
        out[f"per_case_ms_{backend}_{mode}"] = round(per_case, 2)
        out[f"ratio_{backend}_{mode}"] = round(per_case / bare, 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
