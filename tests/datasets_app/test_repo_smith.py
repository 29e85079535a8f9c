"""The SWE-smith-style generator: mutations, snapshots, the keep/drop judge and statements (pure), and
generated tasks checked in the real sandbox (workers.repo)."""

from __future__ import annotations

import gzip
import io
import json
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from datasets_app import repo_smith
from datasets_app.repo_smith import (
    FailedCheck,
    StatementContext,
    failed_checks,
    failure_messages,
    file_diff,
    judge,
    make_snapshot,
    mutations,
    write_statement,
)
from workers.repo.grading import grade
from workers.repo.patching import apply_patch
from workers.repo.task import RepoTask
from workers.repo.testrun import run_tests
from workers.repo.verify import verify_task
from workers.repo.workspace import Workspace
from workers.sandbox.batch import bwrap_available

needs_bwrap = pytest.mark.skipif(not bwrap_available(), reason="bwrap does not work on this machine")

CLAMP = '''\
def clamp(x, lo, hi):
    """Keep x between lo and hi (a docstring is never mutated: 1 < 2)."""
    if x < lo:
        return lo
    return min(x, hi)


LIMIT = 10 + 1  # module level: not a function, left alone
'''


def _mutated_lines(source: str) -> dict[str, set[str]]:
    """{operator: {the changed or removed lines of each mutant}}."""
    found: dict[str, set[str]] = {}
    before = source.splitlines()
    for mutant in mutations("pkg/clamp.py", source):
        after = mutant.source.splitlines()
        changed = {a for a in after if a not in before} or {f"-{b}" for b in before if b not in after}
        found.setdefault(mutant.operator, set()).update(changed)
    return found


def test_mutations_of_a_hand_example_are_the_edits_a_person_would_make():
    found = _mutated_lines(CLAMP)

    assert found["comparison"] == {"    if x <= lo:"}
    assert found["swap_operands"] == {"    if lo < x:"}
    assert found["negate_condition"] == {"    if not (x < lo):"}
    assert found["swap_name"] == {"    return max(x, hi)"}
    assert found["return_none"] == {"        return None", "    return None"}
    # The if statement (lines 3-4) dropped whole.
    assert found["drop_statement"] == {"-    if x < lo:", "-        return lo"}
    # The docstring and module-level code are never touched.
    assert not any("1 < 2" in line or "LIMIT" in line for lines in found.values() for line in lines)


def test_each_mutant_compiles_changes_one_spot_and_keeps_the_rest_of_the_file_as_written():
    source = (repo_smith.package_dir("spans") / "spans" / "interval.py").read_text()

    found = mutations("spans/interval.py", source)

    assert len(found) > 50
    assert len({m.source for m in found}) == len(found)  # equal mutants listed once
    for mutant in found:
        compile(mutant.source, mutant.path, "exec")
        diff = file_diff(mutant.path, source, mutant.source)
        removed = [line for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]
        added = [line for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
        assert 1 <= len(removed) + len(added) <= 2 * repo_smith.MAX_DROPPED_LINES, mutant.description
        assert diff.count("@@ -") == 1, mutant.description  # one hunk: one place in the file


def test_constants_are_off_by_one_both_ways_and_booleans_flip():
    source = "def f(items, flag=True):\n    total = 3\n    done = False\n    return items[total:], done\n"

    lines = _mutated_lines(source)["constant"]

    assert lines == {"    total = 4", "    total = 2", "    done = True"}


def test_operators_and_boolean_swaps_touch_only_the_operator():
    source = "def f(a, b):\n    if a and b:\n        return a - b\n    return (a // b) % 2\n"

    found = _mutated_lines(source)

    assert "    if a or b:" in found["boolean"]
    assert "        return a + b" in found["operator"]
    assert "        return b - a" in found["swap_operands"]
    assert "    return (a * b) % 2" in found["operator"]


def test_mutations_are_the_same_every_time_and_the_seed_only_reorders_them():
    a = repo_smith.package_mutations("tinycsv", seed=1)
    b = repo_smith.package_mutations("tinycsv", seed=1)
    c = repo_smith.package_mutations("tinycsv", seed=2)

    assert a == b
    assert a != c and sorted(a, key=repr) == sorted(c, key=repr)
    assert not any(m.path.startswith("tests/") for m in a)


def test_the_packages_offer_enough_mutants_for_hundreds_of_tasks():
    counts = {name: len(repo_smith.package_mutations(name)) for name in repo_smith.PACKAGES}

    assert all(n >= 300 for n in counts.values()), counts


def test_a_snapshot_is_deterministic_sorted_and_owned_by_nobody():
    files = {"pkg/b.py": b"B = 2\n", "pkg/a.py": b"A = 1\n", "README.md": b"hi\n"}

    first, second = make_snapshot(files), make_snapshot(dict(reversed(files.items())))

    assert first == second
    assert first[4:8] == b"\0\0\0\0"  # the gzip header's mtime
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["README.md", "pkg", "pkg/a.py", "pkg/b.py"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}
    assert {m.name: m.mode for m in members} == {
        "README.md": 0o644,
        "pkg": 0o755,
        "pkg/a.py": 0o644,
        "pkg/b.py": 0o644,
    }
    assert gzip.decompress(first).count(b"A = 1\n") == 1


def test_a_package_snapshot_leaves_out_caches(tmp_path):
    files = repo_smith.package_files("spans")

    assert "spans/interval.py" in files and "tests/test_sets.py" in files
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in files)


def test_file_diff_is_git_style_and_empty_for_equal_texts():
    diff = file_diff("pkg/a.py", "x = 1\ny = 2\n", "x = 1\ny = 3\n")

    assert diff.splitlines()[:3] == ["diff --git a/pkg/a.py b/pkg/a.py", "--- a/pkg/a.py", "+++ b/pkg/a.py"]
    assert "-y = 2" in diff and "+y = 3" in diff
    assert file_diff("pkg/a.py", "x\n", "x\n") == ""


@dataclass(frozen=True)
class Run:
    outcomes: dict[str, str]
    output: str = ""
    timed_out: bool = False
    error_class: str = ""


SUITE = tuple(f"tests.test_m.T.test_{i}" for i in range(10))


def _run(failing=(), **states):
    outcomes = {t: ("failed" if t in failing else "passed") for t in SUITE}
    outcomes.update({f"tests.test_m.T.{k}": v for k, v in states.items()})
    return Run(outcomes)


def test_judge_keeps_a_mutant_when_some_tests_fail_the_same_way_twice_and_the_rest_pass():
    failing = SUITE[2:4]

    assert judge(SUITE, _run(failing), _run(failing)) == ("", failing)
    assert judge(SUITE, _run(failing), _run(SUITE[2:3]))[0] == "flaky"
    assert judge(SUITE, _run(()))[0] == "survived"


def test_judge_drops_blunt_broken_and_infrastructure_runs():
    assert judge(SUITE, _run(SUITE[:6]))[0] == "too_broad"  # more than half the suite
    assert judge(SUITE, _run(SUITE[:3]), max_fail_to_pass=2)[0] == "too_broad"
    assert judge(SUITE, _run(SUITE[:1], test_5="skipped"))[0] == "broken_suite"
    assert judge(SUITE, Run({}, timed_out=True))[0] == "timeout"
    assert judge(SUITE, Run({}, error_class="sandbox_error"))[0] == "sandbox_error"
    errors = Run({t: ("error" if t == SUITE[0] else "passed") for t in SUITE})
    assert judge(SUITE, errors, errors) == ("", SUITE[:1])


TEST_MODULE = '''\
import unittest


def parse_row(line):
    return line.split(",")


def to_int(text):
    return int(text)


class TestRows(unittest.TestCase):
    def test_quoted(self):
        """A quoted field keeps its delimiter."""
        self.assertEqual(parse_row('a,"b,c"'), ["a", "b,c"])

    def test_refused(self):
        """Words are not integers."""
        with self.assertRaises(TypeError):
            to_int("ten")

    def test_fine(self):
        self.assertEqual(parse_row("a"), ["a"])
'''


def test_statements_come_from_the_failing_tests_in_the_users_words(tmp_path):
    # Real unittest output, from a real run of a small module of tests (our own code: no sandbox needed).
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "__init__.py").write_text("")
    (tmp_path / "tests" / "test_rows.py").write_text(TEST_MODULE)
    ran = subprocess.run(
        [sys.executable, "-m", "unittest", "-v"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    files = {"tests/test_rows.py": TEST_MODULE.encode()}
    failing = ("tests.test_rows.TestRows.test_quoted", "tests.test_rows.TestRows.test_refused")

    seen = failure_messages(ran.stderr)
    checks = failed_checks(files, failing, ran.stderr, {"parse_row", "to_int"})
    statement = write_statement(StatementContext("rows", checks, failing))

    assert set(seen) == set(failing)
    assert seen[failing[0]] == (15, "AssertionError: Lists differ: ['a', '\"b', 'c\"'] != ['a', 'b,c']")
    assert checks[0].expression == "parse_row('a,\"b,c\"')" and checks[0].functions == ("parse_row",)
    assert checks[1].assertion == "assertRaises" and checks[1].expression == 'to_int("ten")'
    assert statement.startswith("`parse_row`, `to_int` in rows does not behave as documented.")
    assert "- A quoted field keeps its delimiter. Here `parse_row('a,\"b,c\"')` gives `['a'," in statement
    assert "`, but `['a', 'b,c']` is expected." in statement
    assert '- Words are not integers. Here `to_int("ten")` raises `ValueError' in statement
    assert "python -m unittest " + " ".join(failing) in statement


def test_a_statement_describes_a_few_checks_and_counts_the_rest():
    checks = tuple(
        FailedCheck(
            f"tests.t.T.test_{i}", f"Check {i}.", f"f({i})", "assertEqual", "AssertionError: 1 != 2", ("f",)
        )
        for i in range(5)
    )

    statement = write_statement(StatementContext("pkg", checks, tuple(c.test_id for c in checks)))

    assert statement.count("gives `1`, but `2` is expected") == repo_smith.STATEMENT_CHECKS
    assert "...and 2 more checks of the same kind fail." in statement


def test_the_packages_are_real_code_of_the_promised_size():
    for name in repo_smith.PACKAGES:
        files = repo_smith.package_files(name)
        code = sum(data.count(b"\n") for rel, data in files.items() if rel.startswith(f"{name}/"))
        tests = sum(data.count(b"    def test_") for rel, data in files.items() if rel.startswith("tests/"))
        assert 300 <= code <= 600, (name, code)
        assert 50 <= tests <= 120, (name, tests)


def test_unknown_package_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown package 'nope'; the packages are tinycsv, spans"):
        repo_smith.package_files("nope")


def test_packages_live_in_the_repository(tmp_path):
    assert (Path(repo_smith.PACKAGES_DIR) / "tinycsv" / "tests" / "__init__.py").is_file()


# --- in the real sandbox ------------------------------------------------------------------------------


@needs_bwrap
@pytest.mark.parametrize("name", repo_smith.PACKAGES)
def test_the_packages_own_suites_pass_in_the_sandbox(name):
    files = repo_smith.package_files(name)
    expected = sum(data.count(b"    def test_") for rel, data in files.items() if rel.startswith("tests/"))

    run = repo_smith.sandbox_runner()(make_snapshot(files))

    assert run.error_class == "" and not run.timed_out
    assert len(run.outcomes) == expected
    assert set(run.outcomes.values()) == {"passed"}


@pytest.fixture(scope="module")
def tinycsv_tasks():
    if not bwrap_available():
        pytest.skip("bwrap does not work on this machine")
    return repo_smith.generate("tinycsv", count=3, seed=11)


@needs_bwrap
def test_a_generated_tasks_fail_to_pass_fails_on_its_snapshot_and_passes_with_its_patch(tinycsv_tasks):
    report = tinycsv_tasks

    assert len(report.tasks) == 3 and report.tried >= 3
    for task in report.tasks:
        assert RepoTask.from_record(task.to_record()) == task
        assert 1 <= len(task.fail_to_pass) <= repo_smith.MAX_FAIL_TO_PASS
        assert len(task.fail_to_pass) + len(task.pass_to_pass) == report.suite_size
        assert task.test_patch == "" and task.runner == "unittest" and task.repo == "triad/tinycsv"
        with Workspace.create(task.snapshot) as buggy:
            before = run_tests(
                buggy.root, task.fail_to_pass + task.pass_to_pass, runner="unittest", timeout_s=60
            )
            apply_patch(buggy.root, task.patch)
            after = run_tests(
                buggy.root, task.fail_to_pass + task.pass_to_pass, runner="unittest", timeout_s=60
            )
        assert {before.outcomes[t] for t in task.fail_to_pass} <= {"failed", "error"}
        assert {before.outcomes[t] for t in task.pass_to_pass} == {"passed"}
        assert set(after.outcomes.values()) == {"passed"}


@needs_bwrap
def test_generated_tasks_pass_the_dataset_gate_and_grade_resolved_with_their_patch(tinycsv_tasks):
    for task in tinycsv_tasks.tasks:
        verdict = verify_task(task, runs=1)
        assert verdict.status == "verified", (task.task_id, verdict.evidence)

        assert grade(task, task.patch).outcome == "resolved"
        assert grade(task, "").outcome == "no_patch"


@needs_bwrap
def test_a_statement_names_the_behaviour_not_the_mutated_line(tinycsv_tasks):
    for task in tinycsv_tasks.tasks:
        buggy_lines = [
            line[1:].strip()
            for line in task.patch.splitlines()
            if line.startswith("-") and not line.startswith("---") and len(line.strip()) > 12
        ]
        assert re.fullmatch(r"triad__tinycsv-[0-9a-f]{10}", task.task_id)  # the id names no function
        assert "does not behave as documented" in task.statement
        assert "\n- " in task.statement and " Here `" in task.statement  # what a failing check saw
        assert " ".join(task.fail_to_pass) in task.statement
        assert not any(line in task.statement for line in buggy_lines), task.task_id


@needs_bwrap
def test_generation_is_deterministic_for_a_seed():
    first = repo_smith.generate("spans", count=2, seed=3)
    again = repo_smith.generate("spans", count=2, seed=3)
    other = repo_smith.generate("spans", count=2, seed=4)

    assert [t.to_record() for t in first.tasks] == [t.to_record() for t in again.tasks]
    assert first.tried == again.tried and first.dropped == again.dropped
    assert [t.task_id for t in first.tasks] != [t.task_id for t in other.tasks]


@needs_bwrap
def test_the_command_writes_triad_repo_lines_and_a_summary(tmp_path, capsys):
    out = tmp_path / "tasks.jsonl"

    call_command("repo_tasks_generate", "--out", str(out), "--count", "3", "--seed", "2", "--verify")

    lines = out.read_text().splitlines()
    tasks = [RepoTask.from_record(json.loads(line)) for line in lines]
    assert len(tasks) == 3
    assert [t.repo for t in tasks] == ["triad/tinycsv", "triad/tinycsv", "triad/spans"]
    printed = capsys.readouterr().out
    assert "tinycsv: 2 tasks kept of " in printed and "spans: 1 tasks kept of " in printed
    assert f"wrote 3 tasks to {out}: kept 3 / tried " in printed


def test_the_command_refuses_bad_arguments_by_name(tmp_path):
    with pytest.raises(CommandError, match="--count must be at least 1"):
        call_command("repo_tasks_generate", "--out", str(tmp_path / "a.jsonl"), "--count", "0")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("repo_tasks_generate", "--out", str(tmp_path / "no" / "a.jsonl"), "--count", "1")
    with pytest.raises(CommandError, match="invalid choice: 'nope'"):
        call_command("repo_tasks_generate", "--out", str(tmp_path / "a.jsonl"), "--package", "nope")
    assert list(tmp_path.iterdir()) == []


def test_the_command_fails_closed_without_isolation_and_writes_nothing(tmp_path, bwrap_missing):
    out = tmp_path / "tasks.jsonl"

    with pytest.raises(CommandError, match="the sandbox is not available, nothing written"):
        call_command("repo_tasks_generate", "--out", str(out), "--count", "1", "--package", "spans")

    assert list(tmp_path.iterdir()) == []
