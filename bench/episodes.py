"""Repository episodes with the real sandbox (see docs/benchmarks.md, "Repository episodes").

    .venv/bin/python bench/episodes.py [--episodes 12] [--setups 41]

- episodes_per_min: whole episodes, one after another: workspace set-up, tests_before, the replayed
  reference trajectory (replace, run_tests, submit), the diff against a pristine extract and grading
  (a fresh workspace, the patches, FAIL_TO_PASS + PASS_TO_PASS). The sample task of
  tests/workers/repo/sample_repo.py, on the unittest runner and on the pinned pytest.
- setup_ratio: a workspace's set-up (``Workspace.create``: the safe extract of the .tar.gz) ÷ a bare
  ``cp -r`` of an already extracted copy, interleaved in the same run; medians. Also for a larger
  repository (the sample plus 300 modules of ~2 KB: ``setup_ratio_300_files``).
- grade_s_p50: ``grade()`` of the reference patch, median seconds.

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.workers.repo.sample_repo import BASE_FILES, pytest_task, sample_task, snapshot_of
from workers.repo.env import RepoEpisode
from workers.repo.grading import grade
from workers.repo.reference import reference_actions
from workers.repo.task import RepoTask
from workers.repo.workspace import Workspace
from workers.sandbox.batch import resolve_backend


def episodes_per_min(task: RepoTask, n: int) -> tuple[float, list[str]]:
    actions = reference_actions(task)
    outcomes = []
    t0 = time.perf_counter()
    for _ in range(n):
        with RepoEpisode(task) as episode:
            for text in actions:
                if episode.step(text).done:
                    break
            outcomes.append(episode.finish().outcome)
    return n / (time.perf_counter() - t0) * 60, outcomes


def setup_ratio(snapshot: bytes, n: int) -> tuple[float, float, float]:
    """(median set-up s, median cp -r s, median of the per-round ratios)."""
    setups, copies, ratios = [], [], []
    with Workspace.create(snapshot) as extracted, tempfile.TemporaryDirectory() as scratch:
        for i in range(n):
            t0 = time.perf_counter()
            with Workspace.create(snapshot):
                t1 = time.perf_counter()
            dest = Path(scratch, f"copy{i}")
            t2 = time.perf_counter()
            subprocess.run(["cp", "-r", str(extracted.root), str(dest)], check=True)
            t3 = time.perf_counter()
            shutil.rmtree(dest)
            setups.append(t1 - t0)
            copies.append(t3 - t2)
            ratios.append((t1 - t0) / (t3 - t2))
    return statistics.median(setups), statistics.median(copies), statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=12)
    parser.add_argument("--setups", type=int, default=41)
    parser.add_argument("--grades", type=int, default=9)
    args = parser.parse_args()
    resolve_backend(None)  # fail closed, here as everywhere

    task = sample_task()
    per_min, outcomes = episodes_per_min(task, args.episodes)
    per_min_pytest, outcomes_pytest = episodes_per_min(pytest_task(), max(args.episodes // 2, 1))
    setup_s, cp_s, ratio = setup_ratio(task.snapshot, args.setups)
    padded = {**BASE_FILES}
    for i in range(300):
        padded[f"calc/gen/mod{i:03d}.py"] = "".join(
            f"def f{j}(x):\n    return x + {j}\n\n\n" for j in range(60)
        )
    big = snapshot_of(padded)
    setup_big_s, cp_big_s, ratio_big = setup_ratio(big, max(args.setups // 2, 5))
    grades = []
    for _ in range(args.grades):
        t0 = time.perf_counter()
        g = grade(task, task.patch)
        grades.append(time.perf_counter() - t0)
        assert g.outcome == "resolved", g
    figures = {
        "episodes_per_min": round(per_min, 1),
        "episodes_per_min_pytest": round(per_min_pytest, 1),
        "resolved_frac": sum(o == "resolved" for o in outcomes + outcomes_pytest)
        / len(outcomes + outcomes_pytest),
        "setup_ratio": round(ratio, 2),
        "setup_ms_p50": round(setup_s * 1000, 2),
        "cp_r_ms_p50": round(cp_s * 1000, 2),
        "setup_ratio_300_files": round(ratio_big, 2),
        "setup_ms_p50_300_files": round(setup_big_s * 1000, 2),
        "cp_r_ms_p50_300_files": round(cp_big_s * 1000, 2),
        "snapshot_bytes_300_files": len(big),
        "grade_s_p50": round(statistics.median(grades), 3),
        "episodes": args.episodes,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
