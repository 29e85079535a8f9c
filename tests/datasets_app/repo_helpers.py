"""A tiny real repository for repository-task tests: a package with a bug, its unittest tests, the fix
as a git-style diff, and lines of the triad-repo format built from them."""

from __future__ import annotations

import base64
import gzip
import io
import json
import tarfile
from typing import Any

CALC_BUGGY = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
TESTS = (
    "import unittest\n\nfrom calc import add, mul\n\n\n"
    "class TestCalc(unittest.TestCase):\n"
    "    def test_add(self):\n        self.assertEqual(add(2, 3), 5)\n\n"
    "    def test_mul(self):\n        self.assertEqual(mul(2, 3), 6)\n"
)
FIX = (
    "diff --git a/calc/__init__.py b/calc/__init__.py\n"
    "--- a/calc/__init__.py\n+++ b/calc/__init__.py\n"
    "@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
)
NOT_A_FIX = (
    "diff --git a/calc/__init__.py b/calc/__init__.py\n"
    "--- a/calc/__init__.py\n+++ b/calc/__init__.py\n"
    "@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a * b\n"
)
F2P = ["tests.test_calc.TestCalc.test_add"]
P2P = ["tests.test_calc.TestCalc.test_mul"]


def make_snapshot(files: dict[str, str | bytes], *, extra: list[tarfile.TarInfo] | None = None) -> bytes:
    """A gzip'd tar of these files (with fixed times, so the same files make the same bytes)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
        for info in extra or []:
            info.mtime = 1_700_000_000
            tar.addfile(info)
    return gzip.compress(out.getvalue(), mtime=0)


def calc_files(source: str = CALC_BUGGY) -> dict[str, str | bytes]:
    return {"calc/__init__.py": source, "tests/__init__.py": "", "tests/test_calc.py": TESTS}


def calc_snapshot(source: str = CALC_BUGGY) -> bytes:
    return make_snapshot(calc_files(source))


def repo_record(task_id: str = "calc__add-1", **overrides: Any) -> dict[str, Any]:
    """A triad-repo line (as a dict) for the calc repository's add bug."""
    record: dict[str, Any] = {
        "instance_id": task_id,
        "repo": "triad/calc",
        "problem_statement": "add(2, 3) returns -1 instead of 5.",
        "snapshot": base64.b64encode(calc_snapshot()).decode(),
        "FAIL_TO_PASS": list(F2P),
        "PASS_TO_PASS": list(P2P),
        "patch": FIX,
        "test_patch": "",
        "runner": "unittest",
    }
    record.update(overrides)
    return record


def jsonl_bytes(*records: dict[str, Any]) -> io.BytesIO:
    return io.BytesIO("".join(json.dumps(r) + "\n" for r in records).encode())
