"""A small, real repository task built in code, for tests (and other helpers' tests) to reuse.

The repository is a tiny package, ``calc``, with unittest tests. Its ``clamp`` has a bug: above the
upper bound it returns the lower one. The reference patch fixes it; the test patch adds
tests/test_clamp.py. ``sample_task()`` is the verified task; the variants make the gate's other
verdicts (``weak_tests_task``, ``failing_task``, ``flaky_task``) and the pytest runner's ids.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from workers.repo.patching import diff_trees
from workers.repo.task import RepoTask
from workers.repo.workspace import make_snapshot

FIXED_OPS = '''"""Small arithmetic helpers."""


def add(a, b):
    return a + b


def sub(a, b):
    return a - b


def clamp(x, low, high):
    """x limited to the range [low, high]."""
    if x < low:
        return low
    if x > high:
        return high
    return x


def mean(values):
    if not values:
        raise ValueError("mean of nothing")
    return sum(values) / len(values)
'''
BUGGY_OPS = FIXED_OPS.replace("    if x > high:\n        return high", "    if x > high:\n        return low")

TEST_OPS = """import unittest

from calc import ops


class TestOps(unittest.TestCase):
    def test_add(self):
        self.assertEqual(ops.add(2, 3), 5)

    def test_sub(self):
        self.assertEqual(ops.sub(2, 3), -1)

    def test_clamp_inside(self):
        self.assertEqual(ops.clamp(5, 0, 10), 5)

    def test_clamp_below(self):
        self.assertEqual(ops.clamp(-3, 0, 10), 0)

    def test_clamp_above(self):
        self.assertEqual(ops.clamp(15, 0, 10), 10)

    def test_mean(self):
        self.assertEqual(ops.mean([1, 2, 3]), 2)
"""
TEST_CLAMP = """import unittest

from calc.ops import clamp


class TestClamp(unittest.TestCase):
    def test_far_above(self):
        self.assertEqual(clamp(100, -5, 5), 5)
"""
FLAKY_TEST = """import os
import unittest


class TestClamp(unittest.TestCase):
    def test_far_above(self):
        self.assertEqual(os.urandom(1)[0] % 2, 0)  # a coin toss
"""

BASE_FILES = {
    "README.md": "# calc\n\nSmall arithmetic helpers.\n",
    "calc/__init__.py": '"""calc: small arithmetic helpers."""\n',
    "calc/ops.py": BUGGY_OPS,
    "tests/__init__.py": "",
    "tests/test_ops.py": TEST_OPS,
}
STATEMENT = (
    "clamp(x, low, high) returns the wrong value when x is above high: clamp(15, 0, 10) gives 0, "
    "it should give 10."
)
F2P = ("tests.test_ops.TestOps.test_clamp_above", "tests.test_clamp.TestClamp.test_far_above")
P2P = (
    "tests.test_ops.TestOps.test_add",
    "tests.test_ops.TestOps.test_sub",
    "tests.test_ops.TestOps.test_clamp_inside",
    "tests.test_ops.TestOps.test_clamp_below",
    "tests.test_ops.TestOps.test_mean",
)


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def snapshot_of(files: dict[str, str]) -> bytes:
    """The deterministic .tar.gz of a tree of these files."""
    with tempfile.TemporaryDirectory() as top:
        write_tree(Path(top), files)
        return make_snapshot(Path(top))


def diff_of(before: dict[str, str], after: dict[str, str]) -> str:
    """The git-style diff from one tree of files to another."""
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        write_tree(Path(a), before)
        write_tree(Path(b), after)
        return diff_trees(Path(a), Path(b))


def sample_task(**changes: object) -> RepoTask:
    """The verified task: a real bug, its fix, and a test patch adding a test of the fix."""
    task = RepoTask(
        task_id="triad__calc-1",
        statement=STATEMENT,
        snapshot=snapshot_of(BASE_FILES),
        fail_to_pass=F2P,
        pass_to_pass=P2P,
        patch=diff_of(BASE_FILES, {**BASE_FILES, "calc/ops.py": FIXED_OPS}),
        test_patch=diff_of(BASE_FILES, {**BASE_FILES, "tests/test_clamp.py": TEST_CLAMP}),
        runner="unittest",
        repo="triad/calc",
    )
    return dataclasses.replace(task, **changes) if changes else task


def weak_tests_task() -> RepoTask:
    """FAIL_TO_PASS names a test that passes without the fix."""
    return sample_task(
        task_id="triad__calc-weak", fail_to_pass=("tests.test_ops.TestOps.test_add",), pass_to_pass=()
    )


def failing_task() -> RepoTask:
    """The reference patch does not fix the bug (it edits the README)."""
    readme = {**BASE_FILES, "README.md": "# calc\n\nSmall helpers.\n"}
    return sample_task(task_id="triad__calc-failing", patch=diff_of(BASE_FILES, readme))


def flaky_task() -> RepoTask:
    """A FAIL_TO_PASS test that is a coin toss."""
    flaky = diff_of(BASE_FILES, {**BASE_FILES, "tests/test_clamp.py": FLAKY_TEST})
    return sample_task(task_id="triad__calc-flaky", test_patch=flaky)


def pytest_task() -> RepoTask:
    """The same task with pytest node ids and the pytest runner."""

    def node(test_id: str) -> str:
        module, cls, name = test_id.rsplit(".", 2)
        return f"{module.replace('.', '/')}.py::{cls}::{name}"

    return sample_task(
        task_id="triad__calc-pytest",
        runner="pytest",
        fail_to_pass=tuple(node(t) for t in F2P),
        pass_to_pass=tuple(node(t) for t in P2P),
    )
