"""The agent's tools in a repository episode: one JSON object per turn, parsed strictly.

``{"tool": "<name>", "args": {...}}`` — exactly those two keys, a known tool, exactly its arguments
with their types. Anything else is an ActionError whose message becomes the observation (the
episode never crashes on a model's text). Paths are relative to the repository root and confined
to it (no "..", no absolute path, no link out of it). Every observation is capped at OBS_CAP
characters and says when it was cut.
"""

from __future__ import annotations

import fnmatch
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from workers.spec import REPO_TOOLS

from .workspace import IGNORED_NAMES

OBS_CAP = 4000  # characters; a cut observation ends "[cut: N more characters]"
MAX_ACTION_CHARS = 200_000  # a create's content included
MAX_READ_BYTES = 2 << 20  # files larger than this are not viewed or searched
MAX_HITS = 50
MAX_FOUND = 200
MAX_PATTERN_CHARS = 200

# tool -> {arg: (types, required)}; bool is never an int here.
_STR, _INT, _BOOL, _NUM, _LIST = (str,), (int,), (bool,), (int, float), (list,)
SPECS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "view": {"path": (_STR, True), "start": (_INT, False), "end": (_INT, False)},
    "search": {"pattern": (_STR, True), "path": (_STR, False), "regex": (_BOOL, False)},
    "find": {"pattern": (_STR, True)},
    "replace": {"path": (_STR, True), "old": (_STR, True), "new": (_STR, True)},
    "create": {"path": (_STR, True), "content": (_STR, True), "overwrite": (_BOOL, False)},
    "run_tests": {"tests": (_LIST, False), "timeout_s": (_NUM, False)},
    "submit": {},
}
assert tuple(SPECS) == REPO_TOOLS  # one list of names: workers/spec.py

_DOC = {
    "view": (
        "show a file with numbered lines (optionally lines start..end), or list a directory",
        {"path": "calc/ops.py", "start": 1, "end": 40},
    ),
    "search": (
        "find lines containing a text (or a Python regex with regex=true) under a path (default: all)",
        {"pattern": "def clamp", "path": "calc"},
    ),
    "find": ("list files whose path or name matches a glob", {"pattern": "*.py"}),
    "replace": (
        "replace a text that occurs exactly once in a file by a new text",
        {"path": "calc/ops.py", "old": "return low\n", "new": "return high\n"},
    ),
    "create": (
        "create a file (overwrite=true to replace an existing one)",
        {"path": "calc/util.py", "content": "X = 1\n"},
    ),
    "run_tests": (
        "run the named tests (all tests without 'tests'); timeout_s is capped",
        {"tests": ["tests.test_ops.TestOps.test_add"]},
    ),
    "submit": ("end the episode; your changes to the repository are the answer", {}),
}


class ActionError(ValueError):
    """The text is not a valid action; the message says why (it is the observation)."""


@dataclass(frozen=True)
class Action:
    tool: str
    args: dict[str, Any]


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ActionError(f"error: the key {key!r} appears twice")
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise ActionError(f"error: {name} is not JSON")


def parse_action(text: str) -> Action:
    """The action in text: exactly one JSON object {"tool", "args"}; ActionError otherwise."""
    if not isinstance(text, str):
        raise ActionError("error: an action is a JSON object")
    if len(text) > MAX_ACTION_CHARS:
        raise ActionError(f"error: the action is longer than {MAX_ACTION_CHARS} characters")
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as e:
        raise ActionError(
            f"error: not a JSON object ({e.msg} at line {e.lineno} column {e.colno}); "
            'reply with exactly one object like {"tool": "view", "args": {"path": "README.md"}}'
        ) from None
    if not isinstance(value, dict):
        raise ActionError(f"error: the action must be a JSON object, not {type(value).__name__}")
    if set(value) != {"tool", "args"}:
        extra = sorted(set(value) - {"tool", "args"})
        missing = sorted({"tool", "args"} - set(value))
        detail = f"missing {', '.join(missing)}" if missing else f"unexpected key {extra[0]!r}"
        raise ActionError(f'error: the action must have exactly the keys "tool" and "args" ({detail})')
    tool, args = value["tool"], value["args"]
    if not isinstance(tool, str) or tool not in SPECS:
        raise ActionError(f"error: unknown tool {tool!r}; the tools are {', '.join(REPO_TOOLS)}")
    if not isinstance(args, dict):
        raise ActionError(f"error: {tool}: args must be an object")
    spec = SPECS[tool]
    for name in args:
        if name not in spec:
            known = ", ".join(spec) or "none"
            raise ActionError(f"error: {tool}: unexpected argument {name!r} (its arguments: {known})")
    for name, (types, required) in spec.items():
        if name not in args:
            if required:
                raise ActionError(f"error: {tool}: missing argument {name!r}")
            continue
        value = args[name]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            want = " or ".join(t.__name__ for t in types)
            raise ActionError(f"error: {tool}: argument {name!r} must be {want}, not {type(value).__name__}")
    return Action(tool, dict(args))


def tool_doc() -> str:
    """The tools, their arguments and one example each (part of an episode's first observation)."""
    lines = [
        'Act with exactly one JSON object per turn: {"tool": <name>, "args": {...}}. Paths are '
        "relative to the repository root. The tools:"
    ]
    for name in REPO_TOOLS:
        what, example = _DOC[name]
        args = ", ".join(
            f"{a}{'' if req else '?'}: {types[0].__name__}" for a, (types, req) in SPECS[name].items()
        )
        lines.append(f"- {name}({args}): {what}. Example: {json.dumps({'tool': name, 'args': example})}")
    return "\n".join(lines)


def cap(text: str, limit: int = OBS_CAP) -> str:
    """text, or its first part and "[cut: N more characters]" so that the whole fits in limit."""
    if len(text) <= limit:
        return text
    notice_room = 40
    keep = limit - notice_room
    return f"{text[:keep]}\n[cut: {len(text) - keep} more characters]"


# --------------------------------------------------------------------------- running tools


class ToolError(ValueError):
    """A valid action that cannot be done (no such file, text not unique, ...): its message is
    the observation; the action still counts as valid."""


def confine(root: Path, rel: str) -> Path:
    """root/rel, refusing absolute paths, "..", ignored directories and links out of root."""
    if not rel or rel.startswith("/") or "\0" in rel or "\\" in rel:
        raise ToolError(f"error: {rel!r} is not a path relative to the repository root")
    parts = PurePosixPath(rel).parts
    if ".." in parts:
        raise ToolError(f"error: {rel!r} leaves the repository ('..' is not allowed)")
    if any(p in IGNORED_NAMES for p in parts):
        raise ToolError(f"error: {rel!r} is in a directory the workspace ignores")
    target = root.joinpath(*[p for p in parts if p != "."]) if parts else root
    real_root = os.path.realpath(root)
    if os.path.commonpath([real_root, os.path.realpath(target)]) != real_root:
        raise ToolError(f"error: {rel!r} leaves the repository (through a link)")
    return target


def read_text(path: Path, rel: str) -> str:
    """A regular file's text (never a FIFO or device a test may have made; never a huge file)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ToolError(f"error: {rel}: no such file") from None
    if not stat.S_ISREG(st.st_mode):
        raise ToolError(f"error: {rel}: not a regular file")
    if st.st_size > MAX_READ_BYTES:
        raise ToolError(f"error: {rel}: {st.st_size} bytes, too large to read here")
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        data = f.read(MAX_READ_BYTES + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ToolError(f"error: {rel}: not UTF-8 text") from None


def _files(root: Path, top: Path) -> list[tuple[str, Path]]:
    """Regular files under top as (path relative to root, path), sorted; ignored dirs and links out."""
    out: list[tuple[str, Path]] = []
    if top.is_file():
        return [(top.relative_to(root).as_posix(), top)]
    for here, dirs, files in os.walk(top):
        dirs[:] = sorted(
            d for d in dirs if d not in IGNORED_NAMES and not os.path.islink(os.path.join(here, d))
        )
        for name in sorted(files):
            full = Path(here, name)
            if name.endswith(".pyc") or full.is_symlink():
                continue
            out.append((full.relative_to(root).as_posix(), full))
    return out


def numbered(lines: list[str], first: int) -> str:
    return "".join(
        f"{first + i:6d}| {line if line.endswith(chr(10)) else line + chr(10)}"
        for i, line in enumerate(lines)
    )


def view(root: Path, path: str, start: int = 1, end: int | None = None) -> str:
    target = confine(root, path)
    if target.is_dir():
        entries = sorted(
            p.name + ("/" if p.is_dir() else "") for p in target.iterdir() if p.name not in IGNORED_NAMES
        )
        return f"{path}/ holds {len(entries)} entries:\n" + "\n".join(entries)
    lines = read_text(target, path).splitlines(keepends=True)
    if start < 1 or (end is not None and end < start):
        raise ToolError("error: view: start must be >= 1 and end >= start")
    stop = len(lines) if end is None else min(end, len(lines))
    if lines and start > len(lines):
        raise ToolError(f"error: {path} has {len(lines)} lines; start {start} is past its end")
    head = f"{path} (lines {start}-{stop} of {len(lines)}):\n"
    return head + numbered(lines[start - 1 : stop], start)


def search_fixed(root: Path, pattern: str, path: str = ".") -> str:
    """Lines containing pattern (a fixed string) under path, "file:line: text", capped."""
    if not pattern:
        raise ToolError("error: search: the pattern is empty")
    top = confine(root, path)
    if not top.exists():
        raise ToolError(f"error: {path}: no such file or directory")
    hits: list[str] = []
    more = 0
    for rel, full in _files(root, top):
        try:
            text = read_text(full, rel)
        except ToolError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if pattern in line:
                if len(hits) < MAX_HITS:
                    hits.append(f"{rel}:{number}: {line[:200]}")
                else:
                    more += 1
    if not hits:
        return f"no line contains {pattern!r} under {path}"
    return "\n".join(hits) + (f"\n[{more} more hits]" if more else "")


# A regex search runs in the sandbox (a pattern can take exponential time; never on the host).
REGEX_SEARCH = """
import json, os, re, sys
cfg = json.loads(sys.stdin.read())
rx = re.compile(cfg["pattern"])
hits, more = [], 0
top = cfg["path"]
walk = [(os.path.dirname(top), [], [os.path.basename(top)])] if os.path.isfile(top) else os.walk(top)
for here, dirs, files in walk:
    dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", ".pytest_cache", ".git"))
    for name in sorted(files):
        full = os.path.join(here, name)
        if os.path.islink(full) or name.endswith(".pyc") or not os.path.isfile(full):
            continue
        try:
            lines = open(full, encoding="utf-8").read().splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for number, line in enumerate(lines, 1):
            if rx.search(line):
                if len(hits) < cfg["max"]:
                    hits.append(f"{os.path.normpath(full)}:{number}: {line[:200]}")
                else:
                    more += 1
print(json.dumps([hits, more]))
"""


@dataclass
class Tools:
    """The tools bound to one workspace. run_tests is given by the episode (it knows the runner
    and the limits)."""

    root: Path
    run_tests: Callable[[list[str] | None, float | None], str]
    search_regex: Callable[[str, str], str]

    def run(self, action: Action) -> tuple[str, bool]:
        """(observation, done). ToolError messages are observations too."""
        args = action.args
        try:
            if action.tool == "submit":
                return "submitted", True
            if action.tool == "view":
                return view(self.root, args["path"], args.get("start", 1), args.get("end")), False
            if action.tool == "search":
                path = args.get("path", ".")
                if len(args["pattern"]) > MAX_PATTERN_CHARS:
                    raise ToolError(
                        f"error: search: the pattern is longer than {MAX_PATTERN_CHARS} characters"
                    )
                if args.get("regex", False):
                    return self.search_regex(args["pattern"], path), False
                return search_fixed(self.root, args["pattern"], path), False
            if action.tool == "find":
                return self.find(args["pattern"]), False
            if action.tool == "replace":
                return self.replace(args["path"], args["old"], args["new"]), False
            if action.tool == "create":
                return self.create(args["path"], args["content"], args.get("overwrite", False)), False
            if action.tool == "run_tests":
                tests = args.get("tests")
                if tests is not None and not all(isinstance(t, str) and t for t in tests):
                    raise ToolError("error: run_tests: tests must be a list of test ids (strings)")
                timeout = args.get("timeout_s")
                if timeout is not None and not timeout > 0:
                    raise ToolError("error: run_tests: timeout_s must be > 0")
                return self.run_tests(tests, timeout), False
        except ToolError as e:
            return str(e), False
        raise AssertionError(action.tool)  # pragma: no cover — parse_action knows only these

    def find(self, pattern: str) -> str:
        if not pattern:
            raise ToolError("error: find: the pattern is empty")
        found = [
            rel
            for rel, _ in _files(self.root, self.root)
            if fnmatch.fnmatchcase(rel, pattern) or fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], pattern)
        ]
        if not found:
            return f"no file matches {pattern!r}"
        more = len(found) - MAX_FOUND
        return "\n".join(found[:MAX_FOUND]) + (f"\n[{more} more files]" if more > 0 else "")

    def replace(self, path: str, old: str, new: str) -> str:
        target = confine(self.root, path)
        text = read_text(target, path)
        if not old:
            raise ToolError("error: replace: old is empty")
        count = text.count(old)
        if count != 1:
            where = "does not occur" if count == 0 else f"occurs {count} times"
            raise ToolError(
                f"error: replace: old {where} in {path}; it must occur exactly once (add lines around it)"
            )
        at = text.index(old)
        updated = text[:at] + new + text[at + len(old) :]
        target.write_text(updated, encoding="utf-8")
        first = text.count("\n", 0, at) + 1
        lines = updated.splitlines(keepends=True)
        shown = lines[max(first - 3, 0) : first + new.count("\n") + 2]
        return f"replaced in {path}; now:\n" + numbered(shown, max(first - 2, 1))

    def create(self, path: str, content: str, overwrite: bool) -> str:
        target = confine(self.root, path)
        if target.is_dir():
            raise ToolError(f"error: create: {path} is a directory")
        if os.path.lexists(target) and not overwrite:
            raise ToolError(f"error: create: {path} exists; pass overwrite=true to replace it")
        if len(content.encode()) > MAX_READ_BYTES:
            raise ToolError(f"error: create: the content is larger than {MAX_READ_BYTES} bytes")
        if os.path.lexists(target) and not stat.S_ISREG(os.lstat(target).st_mode):
            raise ToolError(f"error: create: {path} is not a regular file")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise ToolError(f"error: create: a parent of {path} is a file") from None
        confine(self.root, path)  # the parents just made are ours, but check again
        target.write_text(content, encoding="utf-8")
        return f"created {path} ({len(content.splitlines())} lines)"
