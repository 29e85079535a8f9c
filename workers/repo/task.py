"""A repository task and its JSONL line (Triad's "triad-repo" format, SWE-bench's field names).

A task carries its repository: `snapshot` is a gzip'd tar of the repository at the base commit, so
nothing is ever cloned. SWE-bench-style lines that carry a snapshot are the same format; one without
is refused. Every error is a `RepoTaskError` naming the field, so an importer can name line and field.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

RUNNERS = ("unittest", "pytest")
# A compressed snapshot above this is refused before anything is decoded further; the extracted size
# is bounded separately (workers.repo.workspace.WorkspaceLimits).
MAX_SNAPSHOT_BYTES = 32 << 20
MAX_TEST_IDS = 5000
MAX_TEST_ID_CHARS = 500

# SWE-bench fields Triad accepts and ignores (no network: base_commit is never checked out).
IGNORED_FIELDS = frozenset(
    {
        "base_commit",
        "created_at",
        "version",
        "hints_text",
        "environment_setup_commit",
        "difficulty",
    }
)
KNOWN_FIELDS = frozenset(
    {
        "instance_id",
        "repo",
        "problem_statement",
        "snapshot",
        "FAIL_TO_PASS",
        "PASS_TO_PASS",
        "patch",
        "test_patch",
        "runner",
    }
)

_UNITTEST_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_GZIP_MAGIC = b"\x1f\x8b"


class RepoTaskError(ValueError):
    """A task or line that is not valid; `field` names the field at fault ("FAIL_TO_PASS",
    "snapshot", ...), and the message begins with it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _check_test_ids(field: str, ids: tuple[str, ...], runner: str) -> None:
    if len(ids) > MAX_TEST_IDS:
        raise RepoTaskError(field, f"{len(ids)} test ids; at most {MAX_TEST_IDS}")
    seen: set[str] = set()
    for i, test_id in enumerate(ids):
        if not isinstance(test_id, str) or not test_id:
            raise RepoTaskError(field, f"item {i} must be a non-empty string")
        if len(test_id) > MAX_TEST_ID_CHARS:
            raise RepoTaskError(field, f"item {i} is longer than {MAX_TEST_ID_CHARS} characters")
        if any(c in test_id for c in "\n\r\t\0") or test_id.startswith(("-", "/")):
            # Ids reach a runner's command line: no options, no absolute paths, one line each.
            raise RepoTaskError(field, f"item {i} ({test_id[:80]!r}) is not a test id")
        if runner == "unittest" and not _UNITTEST_ID.fullmatch(test_id):
            raise RepoTaskError(
                field,
                f"item {i} ({test_id[:80]!r}) is not a unittest id "
                "(dotted, e.g. tests.test_reader.TestReader.test_quotes)",
            )
        if runner == "pytest" and ".py" not in test_id.split("::", 1)[0]:
            raise RepoTaskError(
                field,
                f"item {i} ({test_id[:80]!r}) is not a pytest node id "
                "(e.g. tests/test_reader.py::TestReader::test_quotes)",
            )
        if test_id in seen:
            raise RepoTaskError(field, f"item {i} ({test_id[:80]!r}) is repeated")
        seen.add(test_id)


@dataclass(frozen=True)
class RepoTask:
    """One repository task. Built in code or by `from_record`; either way it is checked on creation."""

    task_id: str
    statement: str
    snapshot: bytes  # a gzip'd tar of the repository at the base commit (tests as of the base)
    fail_to_pass: tuple[str, ...]  # test ids that must go from failing to passing
    pass_to_pass: tuple[str, ...]  # test ids that must keep passing
    patch: str  # the reference fix: a git-style unified diff, paths relative to the repository root
    test_patch: str = ""  # a unified diff adding or changing tests; applied at grading only
    runner: str = "unittest"  # "unittest" | "pytest"
    repo: str = ""  # a name for people, e.g. "triad/tinycsv"

    def __post_init__(self) -> None:
        if not isinstance(self.task_id, str) or not self.task_id.strip():
            raise RepoTaskError("instance_id", "must be a non-empty string")
        if len(self.task_id) > 200:
            raise RepoTaskError("instance_id", "must be at most 200 characters")
        if not isinstance(self.repo, str) or len(self.repo) > 200:
            raise RepoTaskError("repo", "must be a string of at most 200 characters")
        if not isinstance(self.statement, str) or not self.statement.strip():
            raise RepoTaskError("problem_statement", "must be a non-empty string")
        if not isinstance(self.snapshot, bytes) or not self.snapshot:
            raise RepoTaskError("snapshot", "must be the bytes of a .tar.gz")
        if len(self.snapshot) > MAX_SNAPSHOT_BYTES:
            raise RepoTaskError(
                "snapshot", f"{len(self.snapshot)} bytes compressed; at most {MAX_SNAPSHOT_BYTES}"
            )
        if not self.snapshot.startswith(_GZIP_MAGIC):
            raise RepoTaskError("snapshot", "is not gzip data (a .tar.gz is expected)")
        if self.runner not in RUNNERS:
            raise RepoTaskError("runner", f"must be one of {', '.join(RUNNERS)}, not {self.runner!r}")
        for name, ids in (("FAIL_TO_PASS", self.fail_to_pass), ("PASS_TO_PASS", self.pass_to_pass)):
            if not isinstance(ids, tuple):
                raise RepoTaskError(name, "must be a tuple of test ids")
            _check_test_ids(name, ids, self.runner)
        if not self.fail_to_pass:
            raise RepoTaskError("FAIL_TO_PASS", "must name at least one test")
        both = set(self.fail_to_pass) & set(self.pass_to_pass)
        if both:
            raise RepoTaskError("PASS_TO_PASS", f"also in FAIL_TO_PASS: {sorted(both)[0]!r}")
        if not isinstance(self.patch, str) or not self.patch.strip():
            raise RepoTaskError("patch", "must be a non-empty unified diff")
        if not isinstance(self.test_patch, str):
            raise RepoTaskError("test_patch", "must be a string (a unified diff, or empty)")

    @property
    def snapshot_sha256(self) -> str:
        """The snapshot's content hash: tasks of one repository state share it (and its storage)."""
        return hashlib.sha256(self.snapshot).hexdigest()

    def to_record(self) -> dict[str, Any]:
        """The JSONL line, as a dict (json.dumps it); `from_record(to_record())` gives the task back."""
        return {
            "instance_id": self.task_id,
            "repo": self.repo,
            "problem_statement": self.statement,
            "snapshot": base64.b64encode(self.snapshot).decode("ascii"),
            "FAIL_TO_PASS": list(self.fail_to_pass),
            "PASS_TO_PASS": list(self.pass_to_pass),
            "patch": self.patch,
            "test_patch": self.test_patch,
            "runner": self.runner,
        }

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> RepoTask:
        """Parse one line's object. Raises RepoTaskError(field, message) on the first fault."""
        if not isinstance(rec, Mapping):
            raise RepoTaskError("line", "must be a JSON object")
        unknown = sorted(str(k) for k in rec if k not in KNOWN_FIELDS and k not in IGNORED_FIELDS)
        if unknown:
            raise RepoTaskError(unknown[0], "is not a field of a repository task")
        if "snapshot" not in rec:
            raise RepoTaskError(
                "snapshot",
                "missing — Triad never clones; carry the repository as a base64 .tar.gz",
            )
        for name in ("instance_id", "problem_statement", "patch", "FAIL_TO_PASS"):
            if name not in rec:
                raise RepoTaskError(name, "missing")
        text = {}
        for name in ("instance_id", "problem_statement", "patch", "test_patch", "repo", "runner"):
            value = rec.get(name, "")
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise RepoTaskError(name, f"must be a string, not {type(value).__name__}")
            text[name] = value
        runner = text["runner"] or "unittest"
        return cls(
            task_id=text["instance_id"],
            statement=text["problem_statement"],
            snapshot=_decode_snapshot(rec["snapshot"]),
            fail_to_pass=_test_ids("FAIL_TO_PASS", rec["FAIL_TO_PASS"]),
            pass_to_pass=_test_ids("PASS_TO_PASS", rec.get("PASS_TO_PASS", [])),
            patch=text["patch"],
            test_patch=text["test_patch"],
            runner=runner,
            repo=text["repo"],
        )


def _decode_snapshot(value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise RepoTaskError("snapshot", "must be a base64 string of a .tar.gz")
    if len(value) > MAX_SNAPSHOT_BYTES * 4 // 3 + 4:
        raise RepoTaskError("snapshot", f"larger than {MAX_SNAPSHOT_BYTES} bytes compressed")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RepoTaskError("snapshot", f"is not valid base64 ({exc})") from None
    return data


def _test_ids(field: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        # SWE-bench ships these lists JSON-encoded inside a string.
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise RepoTaskError(field, f"is a string that is not a JSON list ({exc.msg})") from None
    if not isinstance(value, list):
        raise RepoTaskError(field, f"must be a list of test ids, not {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise RepoTaskError(field, f"item {i} must be a string, not {type(item).__name__}")
    return tuple(value)
