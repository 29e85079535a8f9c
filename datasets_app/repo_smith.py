"""Repository tasks made by injecting bugs into small real packages, in the spirit of SWE-smith.

Plain Python, no Django: the management command ``repo_tasks_generate`` and ``bench/repo_smith.py``
call it, and so could a node without a database.

The packages live in ``datasets_app/data/repos/<name>/`` (a package directory, ``tests/`` with
unittest tests, a README). For each function of the package (methods included, tests excluded)
``mutations`` makes small source edits with ``ast`` — a comparison flipped, an arithmetic or boolean
operator swapped, operands swapped, an integer constant off by one, a boolean constant flipped, a
statement dropped, a return value replaced by None, a sibling name called (``min``/``max``,
``lstrip``/``rstrip``...) or a condition negated — each edit confined to its own span of the source
so that the diff is one or a few lines, as a person's bug would be. The edit is made on the text, not by
re-printing the whole module, so comments and layout stay as written.

For each mutant ``generate`` builds the buggy snapshot (a deterministic .tar.gz: sorted members,
mtime 0, uid/gid 0, modes 0644/0755), runs the WHOLE suite in the real sandbox (``workers.repo``:
a ``Workspace`` and ``run_tests``), and keeps it when some tests fail and every other test passes —
twice, with the same failing set (a mutant whose outcome changes between runs is flaky and dropped) —
and when the reference patch (the reverse diff) applied to the buggy snapshot gives back the original
files byte for byte (the original passes the whole suite: ``generate`` checks that first, twice).
FAIL_TO_PASS is the failing tests, PASS_TO_PASS the rest; ``test_patch`` is empty because the tests
are already in the snapshot, as SWE-smith does it. A mutant that breaks more than ``max_share`` of
the suite, or more than ``max_fail_to_pass`` tests, is too blunt to be a task and is dropped; so is
a mutant whose mutated file equals one already tried (equivalent edits).

The statement is written from the failing tests only, in the user's words: the function called by
each failing check, what it returned (or raised) and what was expected, taken from the test's
docstring, the asserting line and the assertion message. It never names the mutated line.
``statement_writer`` is the hook for a teacher's rewrite (unused by default; the teacher's writer is
``repo_statements.TeacherStatementWriter``): it receives the ``StatementContext`` and returns the text.
"""

from __future__ import annotations

import ast
import difflib
import gzip
import hashlib
import io
import random
import re
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from datasets_app.mutants import _BINOPS, _CMPOPS, _SYMBOL
from workers.repo.patching import PatchError, apply_patch
from workers.repo.task import RepoTask
from workers.repo.testrun import run_tests
from workers.repo.verify import verify_task
from workers.repo.workspace import Workspace

PACKAGES_DIR = Path(__file__).resolve().parent / "data" / "repos"
PACKAGES = ("tinycsv", "spans")
RUNNER = "unittest"
MAX_FAIL_TO_PASS = 10  # a bug that fails more tests than this is too blunt to be a task
MAX_SHARE = 0.5  # nor one that fails more than this share of the suite
SUITE_TIMEOUT_S = 20.0
MAX_DROPPED_LINES = 4  # a dropped statement spans at most this many lines
MAX_NOTES = 20
STATEMENT_CHECKS = 3  # the failing checks a statement describes (the rest are only counted)

# Reasons a mutant is dropped (the command's summary counts them).
DROP_REASONS = (
    "survived",  # every test still passes
    "too_broad",  # more than MAX_SHARE of the suite or MAX_FAIL_TO_PASS tests fail
    "flaky",  # the second run's failing set differs
    "timeout",  # the suite ran out of time (a loop the edit made endless)
    "sandbox_error",  # the sandbox could not run it (infrastructure)
    "broken_suite",  # tests missing from the run or in another state than passed/failed/error
    "duplicate",  # the same mutated file as a mutant already tried
    "patch_mismatch",  # the reverse patch does not restore the original files
    "not_verified",  # with verify=True: the dataset gate (workers.repo.verify) did not say verified
)

# Names a bug may call instead (the sibling a hurried person might type).
_NAME_SWAPS = {
    "min": "max",
    "max": "min",
    "any": "all",
    "all": "any",
    "startswith": "endswith",
    "endswith": "startswith",
    "lstrip": "rstrip",
    "rstrip": "lstrip",
    "lower": "upper",
    "upper": "lower",
    "find": "rfind",
    "rfind": "find",
    "index": "rindex",
    "rindex": "index",
    "append": "insert",  # only through the arity check below: append(x) has one argument
    "extend": "append",
}
_SWAPPABLE_BINOPS = (ast.Sub, ast.Div, ast.FloorDiv, ast.Mod)
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
OPERATORS = (
    "comparison",
    "operator",
    "swap_operands",
    "boolean",
    "constant",
    "drop_statement",
    "return_none",
    "swap_name",
    "negate_condition",
)


# --- snapshots ------------------------------------------------------------------------------------


def package_dir(name: str) -> Path:
    if name not in PACKAGES:
        raise ValueError(f"unknown package {name!r}; the packages are {', '.join(PACKAGES)}")
    return PACKAGES_DIR / name


def package_files(name: str) -> dict[str, bytes]:
    """The package's repository as {relative path: bytes}, sorted (caches and bytecode left out)."""
    root = package_dir(name)
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part == "__pycache__" or part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and path.suffix != ".pyc":
            files[rel.as_posix()] = path.read_bytes()
    return files


def make_snapshot(files: Mapping[str, bytes]) -> bytes:
    """A deterministic .tar.gz of ``files``: the same files always give the same bytes (sorted
    members, directories included, mtime 0, uid/gid 0, no owner names, modes 0644 and 0755, and a
    gzip header with no name and no time)."""
    dirs: set[str] = set()
    for rel in files:
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(dirs | set(files)):
            info = tarfile.TarInfo(name)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if name in files:
                info.type = tarfile.REGTYPE
                info.mode = 0o644
                info.size = len(files[name])
                tar.addfile(info, io.BytesIO(files[name]))
            else:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def file_diff(path: str, old: str, new: str) -> str:
    """A git-style unified diff turning ``old`` into ``new`` for the file at ``path``."""
    body = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}", n=3
    )
    text = "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in body
    )
    return f"diff --git a/{path} b/{path}\n{text}" if text else ""


# --- mutations ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    path: str  # the file, relative to the repository root ("tinycsv/rows.py")
    function: str  # the function or method at fault ("parse_row", "Table.sort_by")
    operator: str  # one of OPERATORS
    line: int  # where the edit starts (for people and logs; never in a statement)
    description: str  # "line 41: '<' -> '<='"
    source: str  # the whole mutated file


def _functions(tree: ast.Module) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(qualified name, node) for every function and method, outermost first."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                yield name, child
                yield from walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")

    yield from walk(tree, "")


def _body_nodes(func: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.AST]:
    """The nodes of ``func``'s body, without its docstring and without nested functions (those are
    mutated as functions of their own)."""
    body = list(func.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        yield node
        children = [
            c for c in ast.iter_child_nodes(node) if not isinstance(c, ast.FunctionDef | ast.AsyncFunctionDef)
        ]
        stack.extend(reversed(children))


class _Text:
    """The source as lines of UTF-8 bytes: ast's column offsets count bytes."""

    def __init__(self, source: str) -> None:
        self.lines = [line.encode() for line in source.splitlines(keepends=True)]

    def segment(self, node: Any) -> str:
        line = self.lines[node.lineno - 1]
        return str(line[node.col_offset : node.end_col_offset].decode())

    def replace_span(self, node: Any, text: str) -> str:
        """The source with the one-line ``node`` replaced by ``text``."""
        lines = list(self.lines)
        line = lines[node.lineno - 1]
        lines[node.lineno - 1] = line[: node.col_offset] + text.encode() + line[node.end_col_offset :]
        return b"".join(lines).decode()

    def source(self) -> str:
        return b"".join(self.lines).decode()

    def edit_gap(self, left: Any, right: Any, old: str, new: str) -> str | None:
        """The source with the operator between ``left`` and ``right`` (one line) changed."""
        if left.end_lineno != right.lineno or left.lineno != right.lineno:
            return None
        line = self.lines[left.lineno - 1]
        gap = line[left.end_col_offset : right.col_offset].decode()
        edited = _swap_symbol(gap, old, new)
        if edited is None:
            return None
        lines = list(self.lines)
        lines[left.lineno - 1] = line[: left.end_col_offset] + edited.encode() + line[right.col_offset :]
        return b"".join(lines).decode()

    def swap(self, left: Any, right: Any) -> str | None:
        """The source with two operands on one line swapped (None when parentheses sit between)."""
        if not (left.lineno == left.end_lineno == right.lineno == right.end_lineno):
            return None
        line = self.lines[left.lineno - 1]
        gap = line[left.end_col_offset : right.col_offset]
        if b"(" in gap or b")" in gap:
            return None
        a, b = line[left.col_offset : left.end_col_offset], line[right.col_offset : right.end_col_offset]
        if isinstance(left, _LOW_PRECEDENCE) or isinstance(right, _LOW_PRECEDENCE):
            return None  # swapping would regroup the expression, not just reorder it
        lines = list(self.lines)
        lines[left.lineno - 1] = line[: left.col_offset] + b + gap + a + line[right.end_col_offset :]
        return b"".join(lines).decode()

    def rename_call(self, func: Any, name: str) -> str:
        """The source with the called name (``min``, or ``.strip`` of an attribute) renamed."""
        lines = list(self.lines)
        line = lines[func.end_lineno - 1]
        old = func.id if isinstance(func, ast.Name) else func.attr
        end = func.end_col_offset
        lines[func.end_lineno - 1] = line[: end - len(old.encode())] + name.encode() + line[end:]
        return b"".join(lines).decode()

    def own_lines(self, stmt: ast.stmt) -> bool:
        """Whether ``stmt`` alone occupies its lines (nothing before it, only a comment after)."""
        first = self.lines[stmt.lineno - 1]
        last = self.lines[(stmt.end_lineno or stmt.lineno) - 1]
        before = first[: stmt.col_offset]
        after = last[stmt.end_col_offset or 0 :].strip()
        return not before.strip() and (not after or after.startswith(b"#"))

    def drop_lines(self, stmt: ast.stmt, replacement: str | None) -> str:
        """The source without ``stmt``'s lines (or with them replaced by ``replacement`` at its indent)."""
        lines = list(self.lines)
        start, end = stmt.lineno - 1, stmt.end_lineno or stmt.lineno
        new: list[bytes] = []
        if replacement is not None:
            indent = lines[start][: stmt.col_offset].decode()
            new = [f"{indent}{replacement}\n".encode()]
        lines[start:end] = new
        return b"".join(lines).decode()


# How each operator is written: mutants.py's table, and the boolean operators it does not swap.
_SYMBOLS: dict[type[ast.AST], str] = {**_SYMBOL, ast.And: "and", ast.Or: "or"}
_LOW_PRECEDENCE = (ast.BinOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.UnaryOp, ast.Lambda, ast.NamedExpr)


def _swap_symbol(gap: str, old: str, new: str) -> str | None:
    """``gap`` (the text between two operands) with its operator ``old`` written as ``new``."""
    pattern = r"\b" + r"\s+".join(map(re.escape, old.split())) + r"\b" if old[0].isalpha() else re.escape(old)
    # A symbol must not be read inside a longer one ("<" in "<=", "/" in "//").
    if not old[0].isalpha():
        pattern = r"(?<![<>=!/*])" + pattern + r"(?![<>=/*])"
    found = list(re.finditer(pattern, gap))
    if len(found) != 1:
        return None
    match = found[0]
    return gap[: match.start()] + new + gap[match.end() :]


def _expr_edits(node: ast.expr, text: _Text) -> Iterator[tuple[str, str, str]]:
    """(operator, the mutated source, description) for a one-line expression node. The edit touches
    only the operator, operand or name it changes: the rest of the line stays as written."""
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        for i, op in enumerate(node.ops):
            if type(op) in _CMPOPS:
                old, new = _SYMBOLS[type(op)], _SYMBOLS[_CMPOPS[type(op)]]
                edited = text.edit_gap(operands[i], operands[i + 1], old, new)
                if edited:
                    yield "comparison", edited, f"'{old}' -> '{new}'"
        if len(node.ops) == 1 and isinstance(node.ops[0], _ORDERING):
            edited = text.swap(node.left, node.comparators[0])
            if edited:
                yield "swap_operands", edited, "comparison operands swapped"
    elif isinstance(node, ast.BinOp):
        if type(node.op) in _BINOPS:
            old, new = _SYMBOLS[type(node.op)], _SYMBOLS[_BINOPS[type(node.op)]]
            edited = text.edit_gap(node.left, node.right, old, new)
            if edited:
                yield "operator", edited, f"'{old}' -> '{new}'"
        if isinstance(node.op, _SWAPPABLE_BINOPS):
            edited = text.swap(node.left, node.right)
            if edited:
                yield "swap_operands", edited, "operands swapped"
    elif isinstance(node, ast.BoolOp) and len(node.values) == 2:
        old, new = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
        edited = text.edit_gap(node.values[0], node.values[1], old, new)
        if edited:
            yield "boolean", edited, f"'{old}' -> '{new}'"
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "boolean", text.replace_span(node, text.segment(node.operand)), "'not' removed"
    elif isinstance(node, ast.Constant) and type(node.value) is bool:
        yield "constant", text.replace_span(node, repr(not node.value)), "boolean constant flipped"
    elif isinstance(node, ast.Constant) and type(node.value) is int and abs(node.value) < 1 << 31:
        if text.segment(node).isdigit():  # written in decimal: an edit a person would make
            yield "constant", text.replace_span(node, str(node.value + 1)), "constant off by one (+1)"
            if node.value != 0:
                yield "constant", text.replace_span(node, str(node.value - 1)), "constant off by one (-1)"
    elif isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        other = _NAME_SWAPS.get(name)
        if other and not (name == "append" or (name == "extend" and len(node.args) != 1)):
            yield "swap_name", text.rename_call(func, other), f"'{name}' -> '{other}'"


_DROPPABLE = (ast.Assign, ast.AugAssign, ast.Expr, ast.If, ast.Raise, ast.Continue, ast.Break, ast.For)


def _statement_lists(
    func: ast.FunctionDef | ast.AsyncFunctionDef, nodes: list[ast.AST]
) -> list[list[ast.stmt]]:
    """The function's body and every statement list inside it (if/else, for, while, with, try)."""
    lists: list[list[ast.stmt]] = [func.body]
    for node in nodes:
        if isinstance(node, ast.stmt):
            for name in ("body", "orelse", "finalbody"):
                value = getattr(node, name, None)
                if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                    lists.append(value)
        elif isinstance(node, ast.ExceptHandler):
            lists.append(node.body)
    return lists


def _parents(tree: ast.AST) -> dict[int, ast.AST]:
    return {id(child): parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def mutations(path: str, source: str) -> list[Mutation]:
    """Every mutant of ``source`` (the file at ``path``), in source order, deterministic. Each compiles
    and differs from the original's syntax tree; equal mutated files are listed once."""
    tree = ast.parse(source)
    text = _Text(source)
    parents = _parents(tree)
    baseline = ast.dump(tree)
    found: list[Mutation] = []
    seen: set[str] = set()

    def add(function: str, operator: str, line: int, description: str, mutated: str) -> None:
        if mutated in seen:
            return
        try:
            new_tree = ast.parse(mutated)
            compile(new_tree, path, "exec", dont_inherit=True)
        except (SyntaxError, ValueError):
            return
        if ast.dump(new_tree) == baseline:
            return
        seen.add(mutated)
        found.append(Mutation(path, function, operator, line, f"line {line}: {description}", mutated))

    for function, func in _functions(tree):
        nodes = list(_body_nodes(func))
        for body in _statement_lists(func, nodes):
            for stmt in body:
                if not isinstance(stmt, _DROPPABLE) or not text.own_lines(stmt):
                    continue
                if (stmt.end_lineno or stmt.lineno) - stmt.lineno >= MAX_DROPPED_LINES:
                    continue  # a whole block gone is not a small bug
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                    continue  # a docstring or a bare constant
                kind = type(stmt).__name__.lower()
                # A body of one statement keeps a `pass`, so the file still compiles.
                replacement = None if len(body) > 1 else "pass"
                add(
                    function,
                    "drop_statement",
                    stmt.lineno,
                    f"{kind} statement dropped",
                    text.drop_lines(stmt, replacement),
                )
        for node in nodes:
            if isinstance(node, ast.expr) and node.lineno == node.end_lineno:
                parent = parents.get(id(node))
                if isinstance(parent, ast.JoinedStr | ast.FormattedValue):
                    continue  # inside an f-string the text is not Python syntax
                for operator, mutated, description in _expr_edits(node, text):
                    add(function, operator, node.lineno, description, mutated)
            if (
                isinstance(node, ast.AugAssign)
                and type(node.op) in _BINOPS
                and node.lineno == node.end_lineno
            ):
                old, new = _SYMBOLS[type(node.op)], _SYMBOLS[_BINOPS[type(node.op)]]
                edited = text.edit_gap(node.target, node.value, f"{old}=", f"{new}=")
                if edited:
                    add(function, "operator", node.lineno, f"'{old}=' -> '{new}='", edited)
            returns_none = isinstance(node, ast.Return) and (
                node.value is None or (isinstance(node.value, ast.Constant) and node.value.value is None)
            )
            if isinstance(node, ast.Return) and not returns_none and text.own_lines(node):
                add(
                    function,
                    "return_none",
                    node.lineno,
                    "return value replaced by None",
                    text.drop_lines(node, "return None"),
                )
            if isinstance(node, ast.If) and node.test.lineno == node.test.end_lineno:
                test = text.segment(node.test)
                negated = f"not ({test})" if isinstance(node.test, _LOW_PRECEDENCE) else f"not {test}"
                add(
                    function,
                    "negate_condition",
                    node.lineno,
                    "condition negated",
                    text.replace_span(node.test, negated),
                )
    return found


# --- running the suite ----------------------------------------------------------------------------


class SuiteRun(Protocol):
    """What a suite runner returns (``workers.repo.testrun.TestRun`` has these fields)."""

    @property
    def outcomes(self) -> dict[str, str]: ...
    @property
    def output(self) -> str: ...
    @property
    def timed_out(self) -> bool: ...
    @property
    def error_class(self) -> str: ...


SuiteRunner = Callable[[bytes], SuiteRun]


def sandbox_runner(timeout_s: float = SUITE_TIMEOUT_S) -> SuiteRunner:
    """Runs a snapshot's whole unittest suite in the real sandbox: a fresh ``Workspace`` of the
    snapshot and ``run_tests`` in it (fail closed: SandboxUnavailable where isolation is missing)."""

    def run(snapshot: bytes) -> SuiteRun:
        with Workspace.create(snapshot) as workspace:
            result: SuiteRun = run_tests(workspace.root, None, runner=RUNNER, timeout_s=timeout_s)
            return result

    return run


def judge(
    suite: Sequence[str],
    first: SuiteRun,
    second: SuiteRun | None = None,
    *,
    max_fail_to_pass: int = MAX_FAIL_TO_PASS,
    max_share: float = MAX_SHARE,
) -> tuple[str, tuple[str, ...]]:
    """("", FAIL_TO_PASS) for a mutant to keep, else (the reason it is dropped, the failing ids).

    ``suite`` is every test id of the clean package; ``first`` (and ``second``, the repeat run) the
    mutant's whole-suite runs. Kept: some tests failed or errored, every other one passed, no more
    than ``max_fail_to_pass`` nor ``max_share`` of the suite failed, and the repeat agrees."""
    if first.error_class == "sandbox_error":
        return "sandbox_error", ()
    if first.timed_out:
        return "timeout", ()
    failing = tuple(sorted(t for t in suite if first.outcomes.get(t) in ("failed", "error")))
    if any(first.outcomes.get(t) not in ("passed", "failed", "error") for t in suite):
        return "broken_suite", failing
    if not failing:
        return "survived", ()
    if len(failing) > max_fail_to_pass or len(failing) > max_share * len(suite):
        return "too_broad", failing
    if second is not None:
        if second.error_class == "sandbox_error":
            return "sandbox_error", failing
        if second.timed_out:
            return "timeout", failing
        again = tuple(sorted(t for t in suite if second.outcomes.get(t) in ("failed", "error")))
        others_pass = all(second.outcomes.get(t) == "passed" for t in suite if t not in again)
        if again != failing or not others_pass:
            return "flaky", failing
    return "", failing


# --- statements -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailedCheck:
    test_id: str
    doc: str  # the test's docstring, first line ("" when it has none)
    expression: str  # the asserted expression as written in the test, e.g. "parse_row('a,\"b,c\"')"
    assertion: str  # the assert method ("assertEqual", "assertRaises", ...) or ""
    message: str  # the exception line, e.g. "AssertionError: ['a'] != ['a', 'b']"
    functions: tuple[str, ...]  # the package's functions the asserting line calls


@dataclass(frozen=True)
class StatementContext:
    """What a statement writer gets: the repository and what its failing tests saw. The bug itself is
    there only as ``reference_patch``, for a writer's leak check (``repo_statements``): never shown to
    a teacher, never written into a statement."""

    package: str
    checks: tuple[FailedCheck, ...]  # one per FAIL_TO_PASS id, in id order
    fail_to_pass: tuple[str, ...]
    reference_patch: str = field(default="", repr=False)


StatementWriter = Callable[[StatementContext], str]

# unittest's own "FAIL: test_x (tests.m.C.test_x)" and workers.repo's runner's "FAILED: tests.m.C.test_x".
_FAILURE_HEAD = re.compile(r"^(?:FAIL|FAILED|ERROR): (?:\w+ \(([\w.]+)\)|([\w.]+))\s*$")
_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+), in (\w+)')


def failure_messages(output: str) -> dict[str, tuple[int, str]]:
    """From unittest's output: {test id: (the test file's line that failed, the exception line)}.

    The line is that of the innermost frame in a ``tests/`` file (0 when there is none); the exception
    line is the first line after the traceback (``AssertionError: 1 != 2``)."""
    found: dict[str, tuple[int, str]] = {}
    lines = output.splitlines()
    for i, line in enumerate(lines):
        head = _FAILURE_HEAD.match(line)
        if not head:
            continue
        test_id = head.group(1) or head.group(2)
        at, message, in_traceback = 0, "", False
        for follow in lines[i + 1 :]:
            if _FAILURE_HEAD.match(follow) or follow.startswith("=" * 20):
                break
            if follow.startswith("Traceback (most recent call last)"):
                in_traceback = True
                continue
            frame = _FRAME.match(follow)
            if frame:
                if "/tests/" in f"/{frame.group(1)}":
                    at = int(frame.group(2))
                continue
            if in_traceback and follow and not follow[0].isspace():
                message = follow.strip()
                break
        found[test_id] = (at, message)
    return found


def _test_sources(files: Mapping[str, bytes]) -> dict[str, tuple[str, ast.Module]]:
    """{module name ("tests.test_rows"): (source, tree)} for the test files of a repository."""
    sources: dict[str, tuple[str, ast.Module]] = {}
    for rel, data in files.items():
        if rel.startswith("tests/") and rel.endswith(".py"):
            text = data.decode()
            sources[rel[:-3].replace("/", ".")] = (text, ast.parse(text))
    return sources


def _method(tree: ast.Module, cls: str, name: str) -> ast.FunctionDef | None:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name == name:
                    return item
    return None


def _called(node: ast.AST, package_names: set[str]) -> tuple[str, ...]:
    names: list[str] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if name in package_names and name not in names:
                names.append(name)
    return tuple(names)


def _asserting(method: ast.FunctionDef, line: int) -> ast.stmt | None:
    """The statement of ``method`` at ``line`` (the innermost one), or its last statement."""
    best: ast.stmt | None = None
    for node in ast.walk(method):
        if (
            isinstance(node, ast.stmt)
            and node is not method
            and node.lineno <= line <= (node.end_lineno or node.lineno)
        ):
            best = node
    if best is None and method.body:
        best = method.body[-1]
    return best


def failed_checks(
    files: Mapping[str, bytes], fail_to_pass: Sequence[str], output: str, package_names: set[str]
) -> tuple[FailedCheck, ...]:
    """What each failing test checked and saw, from the test sources and unittest's output."""
    sources = _test_sources(files)
    messages = failure_messages(output)
    checks: list[FailedCheck] = []
    for test_id in fail_to_pass:
        module, _, rest = test_id.rpartition(".")
        module, _, cls = module.rpartition(".")
        line, message = messages.get(test_id, (0, ""))
        doc, expression, assertion = "", "", ""
        functions: tuple[str, ...] = ()
        if module in sources:
            text, tree = sources[module]
            method = _method(tree, cls, rest)
            if method is not None:
                doc = next(iter((ast.get_docstring(method) or "").strip().splitlines()), "")
                stmt = _asserting(method, line) if line else None
                if stmt is not None:
                    expression, assertion = _expression(stmt, text)
                    functions = _called(stmt, package_names)
                if not functions:
                    functions = _called(method, package_names)
        checks.append(FailedCheck(test_id, doc, expression, assertion, message, functions))
    return tuple(checks)


def _expression(stmt: ast.stmt, text: str) -> tuple[str, str]:
    """(the asserted expression's source, the assert method) for an asserting statement."""
    if isinstance(stmt, ast.With):
        for item in stmt.items:
            call = item.context_expr
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "assertRaises"
            ):
                inner = stmt.body[0] if stmt.body else stmt
                segment = ast.get_source_segment(text, inner.value if isinstance(inner, ast.Expr) else inner)
                return (segment or "").strip(), "assertRaises"
    if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
        call = stmt.value
        if isinstance(call.func, ast.Attribute) and call.func.attr.startswith("assert") and call.args:
            return (ast.get_source_segment(text, call.args[0]) or "").strip(), call.func.attr
        return (ast.get_source_segment(text, call) or "").strip(), ""
    return (ast.get_source_segment(text, stmt) or "").strip(), ""


def _short(value: str, limit: int = 160) -> str:
    value = re.sub(r"\s*\n\s*", " ", value.strip())  # one line; spaces inside literals kept
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _observed(check: FailedCheck) -> str:
    """One sentence: what the check's expression did, and what was expected."""
    expr = f"`{_short(check.expression, 120)}`" if check.expression else "the checked call"
    message = check.message
    kind, _, detail = message.partition(": ")
    if kind == "AssertionError":
        if check.assertion == "assertRaises" or detail.endswith(" not raised"):
            wanted = detail.removesuffix(" not raised") or "an error"
            return f"{expr} should raise `{wanted}` but returns normally."
        if check.assertion in ("assertEqual", "assertIs") and " != " in detail:
            got, _, want = (
                detail.removeprefix("Lists differ: ").removeprefix("Tuples differ: ").partition(" != ")
            )
            return f"{expr} gives `{_short(got)}`, but `{_short(want)}` is expected."
        if check.assertion in ("assertTrue", "assertFalse", "assertIsNone", "assertIsNotNone", "assertIn"):
            return f"{expr} fails its check: {_short(detail)}."
        return f"{expr}: {_short(detail) or 'the check fails'}."
    if message:
        if check.assertion == "assertRaises":
            return f"{expr} raises `{_short(message)}` instead of the expected error."
        return f"{expr} raises `{_short(message)}`."
    return f"{expr} does not behave as the test expects."


def write_statement(context: StatementContext) -> str:
    """The problem statement, as a user would file it, from the failing tests alone."""
    functions: list[str] = []
    for check in context.checks:
        functions.extend(f for f in check.functions if f not in functions)
    subject = ", ".join(f"`{f}`" for f in functions[:3]) if functions else f"`{context.package}`"
    lines = [f"{subject} in {context.package} does not behave as documented.", ""]
    shown = context.checks[:STATEMENT_CHECKS]
    for check in shown:
        said = f"{check.doc} " if check.doc else ""
        lines.append(f"- {said}Here {_observed(check)}")
    more = len(context.checks) - len(shown)
    if more > 0:
        lines.append(f"- ...and {more} more check{'s' if more > 1 else ''} of the same kind fail.")
    return "\n".join(lines) + "\n" + statement_footer(context)


def statement_footer(context: StatementContext) -> str:
    """The closing lines of every statement (a teacher's too): the command that runs the failing tests."""
    return (
        "\nFix the package so that these pass without changing the tests:\n\n"
        "    python -m unittest " + " ".join(context.fail_to_pass) + "\n"
    )


# --- generation -----------------------------------------------------------------------------------


@dataclass
class GenerationReport:
    package: str
    tasks: list[RepoTask] = field(default_factory=list)
    tried: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    suite_size: int = 0
    seconds: float = 0.0
    # What went wrong beyond the code (sandbox errors, timeouts): "<file> <description>: <output tail>",
    # the first MAX_NOTES of them, for whoever runs the generator to look into.
    notes: list[str] = field(default_factory=list)


class GenerationError(RuntimeError):
    """The clean package does not pass its own suite (twice) in the sandbox: nothing can be made."""


def package_mutations(name: str, *, seed: int = 0) -> list[Mutation]:
    """Every mutant of the package's code (tests excluded), shuffled deterministically by ``seed``."""
    files = package_files(name)
    found: list[Mutation] = []
    for rel, data in files.items():
        if rel.endswith(".py") and not rel.startswith("tests/") and "/" in rel:
            found.extend(mutations(rel, data.decode()))
    random.Random(f"{name}:{seed}").shuffle(found)
    return found


def _public_names(files: Mapping[str, bytes]) -> set[str]:
    """The package's public functions, methods and classes (what a failing test may call)."""
    names: set[str] = set()
    for rel, data in files.items():
        if rel.endswith(".py") and not rel.startswith("tests/"):
            for node in ast.walk(ast.parse(data.decode())):
                if isinstance(node, ast.FunctionDef | ast.ClassDef) and not node.name.startswith("_"):
                    names.add(node.name)
    return names


def _restores(buggy: Mapping[str, bytes], original: Mapping[str, bytes], patch: str) -> bool:
    """Whether ``patch`` applied to the buggy files gives the original files exactly."""
    with tempfile.TemporaryDirectory(prefix="repo-smith-") as tmp:
        root = Path(tmp)
        for rel, data in buggy.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        try:
            apply_patch(root, patch)
        except PatchError:
            return False
        return all((root / rel).read_bytes() == data for rel, data in original.items())


def generate(
    name: str,
    *,
    count: int | None = None,
    seed: int = 0,
    runner: SuiteRunner | None = None,
    statement_writer: StatementWriter | None = None,
    progress: Callable[[str], None] | None = None,
    max_tries: int | None = None,
    verify: bool = False,
) -> GenerationReport:
    """Up to ``count`` verified tasks (all there are when None) from package ``name``.

    ``runner`` runs a snapshot's whole suite (default: the real sandbox, ``sandbox_runner()``);
    ``statement_writer`` rewrites statements (default: ``write_statement``; the hook for a teacher);
    ``progress`` gets a line now and then; ``max_tries`` bounds the mutants tried. ``verify`` also puts
    each task through the dataset gate (``verify_task``: FAIL_TO_PASS fails without the patch, everything
    passes with it) and keeps only the verified ones — what an import would do anyway."""
    began = time.monotonic()
    run = runner or sandbox_runner()
    writer = statement_writer or write_statement
    report = GenerationReport(package=name)
    original = package_files(name)
    clean = make_snapshot(original)
    first, second = run(clean), run(clean)
    suite = tuple(sorted(first.outcomes))
    if not suite or any(first.outcomes[t] != "passed" or second.outcomes.get(t) != "passed" for t in suite):
        bad = sorted(t for t in suite if first.outcomes[t] != "passed")[:3]
        why = first.error_class or ("timed out" if first.timed_out else f"failing: {', '.join(bad)}")
        raise GenerationError(f"{name}: the clean package does not pass its suite in the sandbox ({why})")
    report.suite_size = len(suite)
    package_names = _public_names(original)
    seen: set[tuple[tuple[str, ...], str]] = set()
    for mutation in package_mutations(name, seed=seed):
        if count is not None and len(report.tasks) >= count:
            break
        if max_tries is not None and report.tried >= max_tries:
            break
        report.tried += 1
        buggy = dict(original)
        buggy[mutation.path] = mutation.source.encode()
        snapshot = make_snapshot(buggy)
        mutant_run = run(snapshot)
        if mutant_run.error_class == "sandbox_error":
            # The infrastructure's fault, not the mutant's: retried once, as sandbox errors are.
            mutant_run = run(snapshot)
        reason, failing = judge(suite, mutant_run)
        if not reason:
            reason, failing = judge(suite, mutant_run, run(snapshot))
        patch = file_diff(mutation.path, mutation.source, original[mutation.path].decode())
        if not reason and (failing, patch) in seen:
            reason = "duplicate"
        if not reason and not _restores(buggy, original, patch):
            reason = "patch_mismatch"
        if reason:
            report.dropped[reason] += 1
            if reason in ("sandbox_error", "timeout") and len(report.notes) < MAX_NOTES:
                tail = " ".join(mutant_run.output.strip().splitlines()[-3:])[-300:]
                report.notes.append(f"{mutation.path} {mutation.description} ({reason}): {tail}")
            continue
        seen.add((failing, patch))
        context = StatementContext(
            name, failed_checks(buggy, failing, mutant_run.output, package_names), failing, patch
        )
        digest = hashlib.sha256(patch.encode()).hexdigest()[:10]
        task = RepoTask(
            task_id=f"triad__{name}-{digest}",  # no function name: an id must not point at the bug
            statement=writer(context),
            snapshot=snapshot,
            fail_to_pass=failing,
            pass_to_pass=tuple(t for t in suite if t not in failing),
            patch=patch,
            test_patch="",
            runner=RUNNER,
            repo=f"triad/{name}",
        )
        if verify and verify_task(task, runs=1).status != "verified":
            report.dropped["not_verified"] += 1
            continue
        report.tasks.append(task)
        if progress and len(report.tasks) % 25 == 0:
            progress(f"{name}: {len(report.tasks)} kept of {report.tried} tried")
    report.seconds = time.monotonic() - began
    return report
