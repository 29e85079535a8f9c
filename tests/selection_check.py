"""That make test's runs, together, leave no test out and run each run_once test in one run only.

    python -m tests.selection_check RUN.json [RUN.json ...]

Each file is what one run wrote with --selection-to (tests/conftest.py). Every test a run collected must be
selected by some run, every test file under tests/ must have a test that some run selected (a file a run
--ignore'd is never collected), and no run_once test may be selected by two runs (it gives the same result
in each). Prints what is wrong and exits 1, else prints a one-line summary.
"""

import json
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def selection_problems(runs: dict[str, dict[str, list[str]]], test_files: list[str]) -> list[str]:
    """`runs`: each run's name and its selection; `test_files`: every test file, relative to the root."""
    ran: dict[str, list[str]] = {}
    for name, selection in runs.items():
        for nodeid in selection["selected"]:
            ran.setdefault(nodeid, []).append(name)
    collected = set(ran).union(*(selection["deselected"] for selection in runs.values()))
    problems = [f"{nodeid}: deselected by every run" for nodeid in sorted(collected - set(ran))]
    files_run = {nodeid.split("::")[0] for nodeid in ran}
    problems += [f"{path}: no run collected a test of it" for path in sorted(set(test_files) - files_run)]
    run_once = set().union(*(selection["run_once"] for selection in runs.values()))
    problems += [
        f"{nodeid}: a run_once test, selected by {' and '.join(ran[nodeid])}"
        for nodeid in sorted(run_once)
        if len(ran.get(nodeid, [])) > 1
    ]
    return problems


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    runs = {path: json.loads(Path(path).read_text()) for path in paths}
    root = TESTS.parent
    test_files = [str(path.relative_to(root)) for path in TESTS.rglob("test_*.py")]
    problems = selection_problems(runs, test_files)
    for problem in problems:
        print(f"selection_check: {problem}", file=sys.stderr)
    if problems:
        return 1
    counts = ", ".join(f"{path}: {len(selection['selected'])}" for path, selection in runs.items())
    print(f"selection_check: every test of {len(test_files)} files is selected by a run ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
