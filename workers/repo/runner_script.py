"""The test runner that runs inside the sandbox (its source is passed with ``python -c``; nothing of
it is in the workspace). Standard library only; pytest is imported only for runner "pytest".

Its first stdin line is JSON: {"nonce", "runner", "ids" (a list, or null: discover everything)}.
Report lines go to the original stdout, each "<nonce> <json>", the json being ["start", null],
["id", [test_id, outcome]] (one per test, as soon as it is known) or ["end", null]. The tests'
own output (fd 1 and 2) goes to stderr, so a test's print cannot interleave with a report line, and
one without the nonce is ignored. The code under test runs in this process, as SWE-bench's runners
do: it could find the nonce in memory and forge results; the grade does not depend on this process
alone for that reason (the test patch is applied on a fresh workspace, see grading.py).
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from typing import Any

RANK = {"passed": 0, "skipped": 0, "failed": 1, "error": 2}
_REPORT_FD = -1
_NONCE = ""


def report(kind: str, payload: Any) -> None:
    data = (_NONCE + " " + json.dumps([kind, payload]) + "\n").encode()
    while data:
        data = data[os.write(_REPORT_FD, data) :]


def worst(outcomes: list[str]) -> str:
    if not outcomes:
        return "missing"
    if all(o == "skipped" for o in outcomes):
        return "skipped"
    return max(outcomes, key=lambda o: RANK[o])


# --------------------------------------------------------------------------- unittest


def run_unittest(ids: list[str] | None) -> None:
    import unittest

    class Result(unittest.TestResult):
        """Per test id, the worst outcome seen; failures' tracebacks go to the output."""

        def __init__(self, stream_each: bool) -> None:
            super().__init__()
            self.outcomes: dict[str, str] = {}
            self.stream_each = stream_each

        def _set(self, test: Any, outcome: str, err: Any = None) -> None:
            tid = test.id()
            if err is not None:
                sys.stderr.write(f"{outcome.upper()}: {tid}\n{''.join(traceback.format_exception(*err))}\n")
            before = self.outcomes.get(tid)
            if before is None or RANK[outcome] > RANK[before]:
                self.outcomes[tid] = outcome

        def addSuccess(self, test: Any) -> None:
            self._set(test, "passed")

        def addFailure(self, test: Any, err: Any) -> None:
            self._set(test, "failed", err)

        def addError(self, test: Any, err: Any) -> None:
            self._set(test, "error", err)

        def addSkip(self, test: Any, reason: str) -> None:
            self._set(test, "skipped")

        def addExpectedFailure(self, test: Any, err: Any) -> None:
            self._set(test, "passed")

        def addUnexpectedSuccess(self, test: Any) -> None:
            self._set(test, "failed")

        def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
            if err is not None:
                failed = issubclass(err[0], test.failureException)
                self._set(test, "failed" if failed else "error", err)

        def stopTest(self, test: Any) -> None:
            super().stopTest(test)
            tid = test.id()
            if self.stream_each and tid in self.outcomes:
                report("id", [tid, self.outcomes[tid]])

    loader = unittest.TestLoader()
    if ids is None:
        suite = loader.discover(os.getcwd(), pattern="test*.py", top_level_dir=os.getcwd())
        suite.run(Result(stream_each=True))
        return
    for tid in ids:
        before = len(loader.errors)
        try:
            suite = loader.loadTestsFromName(tid)
        except Exception as e:
            sys.stderr.write(f"ERROR: {tid}\n{''.join(traceback.format_exception(e))}\n")
            report("id", [tid, _load_failure(tid, f"{type(e).__name__}: {e}")])
            continue
        if len(loader.errors) > before:
            text = str(loader.errors[-1])
            sys.stderr.write(f"ERROR: {tid}\n{text}\n")
            report("id", [tid, _load_failure(tid, text)])
            continue
        tests = list(_flatten(suite))
        if not tests:
            report("id", [tid, "missing"])
            continue
        result = Result(stream_each=False)
        suite.run(result)
        report("id", [tid, worst([result.outcomes.get(t.id(), "error") for t in tests])])


def _flatten(suite: Any) -> Any:
    if hasattr(suite, "__iter__"):
        for item in suite:
            yield from _flatten(item)
    else:
        yield suite


def _load_failure(tid: str, text: str) -> str:
    """ "missing" when the id names nothing there (no such module, class or method), else "error"
    (the module is there but does not import: a failure of the code under test)."""
    if "Failed to access attribute" in text or text.startswith("AttributeError"):
        return "missing"
    m = re.search(r"No module named '([^']+)'", text)
    if m and (tid == m.group(1) or tid.startswith(m.group(1) + ".")):
        return "missing"
    return "error"


# --------------------------------------------------------------------------- pytest


def run_pytest(ids: list[str] | None) -> None:
    import pytest

    wanted = None if ids is None else set(ids)
    outcomes: dict[str, str] = {}
    args: list[str] = []
    if ids is None:
        args.append("tests" if os.path.isdir("tests") else ".")
    else:
        for tid in ids:
            path = tid.split("::", 1)[0]
            if not os.path.isfile(path):
                report("id", [tid, "missing"])
            elif path not in args:
                args.append(path)
        if not args:
            return

    class Plugin:
        def pytest_collection_modifyitems(self, session: Any, config: Any, items: list[Any]) -> None:
            if wanted is None:
                return
            keep = [item for item in items if item.nodeid in wanted]
            dropped = [item for item in items if item.nodeid not in wanted]
            if dropped:
                config.hook.pytest_deselected(items=dropped)
            items[:] = keep

        def pytest_collectreport(self, report: Any) -> None:
            if report.failed and wanted is not None:
                for tid in wanted:
                    if tid.split("::", 1)[0] == report.nodeid and tid not in outcomes:
                        outcomes[tid] = "error"
                        _send(tid)

        def pytest_runtest_logreport(self, report: Any) -> None:
            if report.when == "call":
                outcome = "passed" if report.passed else "failed" if report.failed else "skipped"
            elif report.failed:
                outcome = "error"
            elif report.skipped:
                outcome = "skipped"
            else:
                return
            before = outcomes.get(report.nodeid)
            if before is None or RANK[outcome] > RANK[before]:
                outcomes[report.nodeid] = outcome

        def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
            _send(nodeid)

    def _send(nodeid: str) -> None:
        if nodeid in outcomes:
            report("id", [nodeid, outcomes[nodeid]])

    pytest.main(
        ["-q", "-p", "no:cacheprovider", "--continue-on-collection-errors", *args], plugins=[Plugin()]
    )


def main() -> None:
    global _REPORT_FD, _NONCE
    config = json.loads(sys.stdin.readline())
    _NONCE = config["nonce"]
    _REPORT_FD = os.dup(1)
    os.dup2(2, 1)  # the tests' output: stderr
    sys.stdout = sys.stderr
    sys.path.insert(0, os.getcwd())
    report("start", None)
    if config["runner"] == "pytest":
        run_pytest(config["ids"])
    else:
        run_unittest(config["ids"])
    sys.stderr.flush()
    report("end", None)
    os._exit(0)  # the code under test's atexit handlers and threads have no say in the report


if __name__ == "__main__":
    main()
