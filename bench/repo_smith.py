"""The SWE-smith-style generator: how many verified repository tasks the two shipped packages give,
and how fast, in the real sandbox.

Every mutant of both packages (or ``--count`` per package) is tried: its snapshot built, the whole suite
run in the sandbox (twice when it qualifies), the reverse patch checked, the statement written, and
each kept task put through the dataset gate (``workers.repo.verify.verify_task``) —
``datasets_app.repo_smith.generate(verify=True)``; ``--no-verify`` leaves the gate out.

Anchor, same run: one suite run of each clean package as a bare ``python -m unittest`` subprocess on
an extracted copy (no isolation), against the same suite through ``workers.repo`` (a Workspace and
run_tests under bwrap): what isolation costs per suite run.

    .venv/bin/python bench/repo_smith.py [--count N] [--seed S] [--repeat 5]

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datasets_app import repo_smith


def bare_suite_ms(snapshot: bytes) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(snapshot), mode="r:gz") as tar:
            tar.extractall(tmp, filter="data")
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "unittest", "-q"], cwd=tmp, capture_output=True, timeout=120
        )
        took = (time.perf_counter() - start) * 1000
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return took


def sandbox_suite_ms(snapshot: bytes) -> float:
    start = time.perf_counter()
    run = repo_smith.sandbox_runner()(snapshot)
    took = (time.perf_counter() - start) * 1000
    assert set(run.outcomes.values()) == {"passed"}, run.output[-2000:]
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=None, help="tasks per package (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5, help="suite runs per package for the anchor")
    parser.add_argument("--no-verify", action="store_true", help="leave out the dataset gate")
    args = parser.parse_args()

    bare: list[float] = []
    sandboxed: list[float] = []
    for name in repo_smith.PACKAGES:
        snapshot = repo_smith.make_snapshot(repo_smith.package_files(name))
        for _ in range(args.repeat):
            bare.append(bare_suite_ms(snapshot))
            sandboxed.append(sandbox_suite_ms(snapshot))

    per_package: dict[str, dict[str, object]] = {}
    tasks = tried = 0
    began = time.perf_counter()
    for name in repo_smith.PACKAGES:
        report = repo_smith.generate(
            name, count=args.count, seed=args.seed, verify=not args.no_verify, progress=print
        )
        f2p = [len(t.fail_to_pass) for t in report.tasks]
        per_package[name] = {
            "tasks": len(report.tasks),
            "tried": report.tried,
            "tests": report.suite_size,
            "dropped": dict(sorted(report.dropped.items())),
            "fail_to_pass_mean": round(statistics.fmean(f2p), 2) if f2p else 0,
            "seconds": round(report.seconds, 1),
        }
        tasks += len(report.tasks)
        tried += report.tried
        print(f"{name}: {per_package[name]}", flush=True)
    minutes = (time.perf_counter() - began) / 60
    bare_ms, sandbox_ms = statistics.median(bare), statistics.median(sandboxed)
    print(
        json.dumps(
            {
                "tasks": tasks,
                "verified_by_gate": not args.no_verify,
                "tried": tried,
                "keep_rate": round(tasks / tried, 3) if tried else 0,
                "tasks_per_min": round(tasks / minutes, 1),
                "mutants_per_min": round(tried / minutes, 1),
                "per_package": per_package,
                "suite_run_ms_sandbox_p50": round(sandbox_ms, 1),
                "suite_run_ms_bare_p50": round(bare_ms, 1),
                "sandbox_to_bare": round(sandbox_ms / bare_ms, 2),
                "seed": args.seed,
            }
        )
    )


if __name__ == "__main__":
    main()
