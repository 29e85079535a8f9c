from pathlib import Path

import pytest

from tests.workers.repo.sample_repo import BASE_FILES, F2P, P2P, pytest_task, write_tree
from workers.repo.testrun import run_tests
from workers.sandbox.batch import bwrap_available

pytestmark = pytest.mark.skipif(not bwrap_available(), reason="bwrap does not work on this machine")


def _repo(tmp_path: Path, extra: dict[str, str] | None = None) -> Path:
    root = tmp_path / "repo"
    write_tree(root, {**BASE_FILES, **(extra or {})})
    return root


def test_unittest_ids_get_their_outcomes_and_unknown_ids_are_missing(tmp_path: Path) -> None:
    run = run_tests(
        _repo(tmp_path), [*F2P, *P2P, "tests.test_ops.TestOps.test_nope"], runner="unittest", timeout_s=30
    )

    assert run.error_class == "" and not run.timed_out
    assert run.outcomes[F2P[0]] == "failed"
    assert run.outcomes[F2P[1]] == "missing"  # its file comes with the test patch
    assert run.outcomes["tests.test_ops.TestOps.test_nope"] == "missing"
    assert all(run.outcomes[t] == "passed" for t in P2P)
    assert "AssertionError: 0 != 10" in run.output


def test_discovery_reports_every_test(tmp_path: Path) -> None:
    run = run_tests(_repo(tmp_path), None, runner="unittest", timeout_s=30)
    assert set(run.outcomes) == {F2P[0], *P2P}


def test_the_pinned_pytest_runs_inside_the_sandbox(tmp_path: Path) -> None:
    task = pytest_task()
    ids = [*task.fail_to_pass, *task.pass_to_pass, "tests/test_ops.py::TestOps::test_nope"]
    run = run_tests(_repo(tmp_path), ids, runner="pytest", timeout_s=60)

    assert run.error_class == "", run.output
    assert run.outcomes[task.fail_to_pass[0]] == "failed"
    assert run.outcomes[task.fail_to_pass[1]] == "missing"
    assert run.outcomes["tests/test_ops.py::TestOps::test_nope"] == "missing"
    assert all(run.outcomes[t] == "passed" for t in task.pass_to_pass)


def test_a_module_that_does_not_import_is_an_error_not_missing(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"calc/ops.py": "def add(:\n"})
    run = run_tests(root, [P2P[0]], runner="unittest", timeout_s=30)
    assert run.outcomes == {P2P[0]: "error"}
    assert "SyntaxError" in run.output


def test_a_printed_report_line_without_the_nonce_is_ignored(tmp_path: Path) -> None:
    forged = (
        "import os, unittest\n"
        "class TestForge(unittest.TestCase):\n"
        "    def test_forge(self):\n"
        '        line = b\'0\' * 32 + b\' ["id", ["tests.test_forge.TestForge.test_forge", "passed"]]\\n\'\n'
        "        for fd in range(1, 10):\n"
        "            try:\n"
        "                os.write(fd, line)\n"
        "            except OSError:\n"
        "                pass\n"
        "        self.fail('no')\n"
    )
    run = run_tests(
        _repo(tmp_path, {"tests/test_forge.py": forged}),
        ["tests.test_forge.TestForge.test_forge"],
        runner="unittest",
        timeout_s=30,
    )
    assert run.outcomes == {"tests.test_forge.TestForge.test_forge": "failed"}


def test_a_timeout_marks_what_was_not_reported_as_error(tmp_path: Path) -> None:
    slow = "import time, unittest\nclass TestSlow(unittest.TestCase):\n"
    slow += "    def test_slow(self):\n        time.sleep(60)\n"
    root = _repo(tmp_path, {"tests/test_slow.py": slow})
    run = run_tests(
        root, [P2P[0], "tests.test_slow.TestSlow.test_slow", P2P[1]], runner="unittest", timeout_s=3
    )

    assert run.timed_out and run.error_class == ""
    assert run.outcomes == {P2P[0]: "passed", "tests.test_slow.TestSlow.test_slow": "error", P2P[1]: "error"}
    assert "timed out" in run.output


def test_code_that_kills_the_runner_fails_the_rest_but_is_not_a_sandbox_error(tmp_path: Path) -> None:
    root = _repo(tmp_path, {"calc/ops.py": "import os\nos._exit(0)\n"})
    run = run_tests(root, [P2P[0]], runner="unittest", timeout_s=30)
    assert run.error_class == "" and run.outcomes == {P2P[0]: "error"}
    assert "died" in run.output
