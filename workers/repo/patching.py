"""Unified diffs, git style, in pure Python: apply one to a tree, make one from two trees, and tell
test changes from code changes (grading drops an episode's edits to tests).

``apply_patch`` modifies, creates (``--- /dev/null``) and deletes (``+++ /dev/null``) files. Each
hunk's context and removed lines must match the file exactly; a hunk may sit at another line than
its header says (the nearest match wins), as ``git apply`` allows, but there is no fuzz. Every file
is patched in memory first: on any PatchError (naming file and hunk) nothing is written.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .workspace import IGNORED_NAMES

DEV_NULL = "/dev/null"
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
NO_NEWLINE = "\\ No newline at end of file"


class PatchError(ValueError):
    """A diff that does not parse or does not apply; the message names the file and the hunk."""


@dataclass
class Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    lines: list[tuple[str, str]] = field(default_factory=list)  # (" " | "-" | "+", text with its end)

    @property
    def old(self) -> list[str]:
        return [text for op, text in self.lines if op in " -"]

    @property
    def new(self) -> list[str]:
        return [text for op, text in self.lines if op in " +"]


@dataclass
class FilePatch:
    old_path: str  # relative, or DEV_NULL for a created file
    new_path: str  # relative, or DEV_NULL for a deleted file
    hunks: list[Hunk] = field(default_factory=list)
    text: str = ""  # this file's part of the diff, as given
    binary: bool = False

    @property
    def path(self) -> str:
        return self.new_path if self.new_path != DEV_NULL else self.old_path


def _strip_prefix(name: str, prefix: str) -> str:
    name = name.split("\t", 1)[0].rstrip("\r")
    if name == DEV_NULL:
        return DEV_NULL
    if name.startswith(prefix):
        name = name[len(prefix) :]
    return name


def check_path(path: str, where: str) -> str:
    """A path relative to the repository root, or PatchError: no absolute paths, no "..", nothing
    in a directory Triad ignores (.git, __pycache__)."""
    if path == DEV_NULL:
        return path
    parts = PurePosixPath(path).parts
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\0" in path
        or any(p in ("..", ".") for p in parts)
    ):
        raise PatchError(f"{where}: {path!r} is not a path inside the repository")
    if any(p in IGNORED_NAMES for p in parts):
        raise PatchError(f"{where}: {path!r} is in a directory the workspace ignores")
    return path


def parse_patch(diff: str) -> list[FilePatch]:
    """The diff's files in order; PatchError naming the line where it does not parse."""
    lines = diff.splitlines(keepends=True)
    files: list[FilePatch] = []
    current: FilePatch | None = None
    start = 0  # where the current file's text began
    git_header = False
    i = 0

    def close(end: int) -> None:
        if current is not None:
            current.text = "".join(lines[start:end])
            files.append(current)

    while i < len(lines):
        line = lines[i]
        bare = line.rstrip("\n").rstrip("\r")
        if bare.startswith("diff --git "):
            close(i)
            m = re.match(r"^diff --git a/(.+) b/(.+)$", bare)
            if m is None:
                raise PatchError(f"line {i + 1}: a 'diff --git' header without a/ and b/ paths")
            current = FilePatch(m.group(1), m.group(2))
            start, git_header = i, True
            i += 1
            continue
        if bare.startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ "):
            if current is None or not git_header or current.hunks:
                close(i)
                current = FilePatch("", "")
                start = i
            old = _strip_prefix(bare[4:], "a/")
            new = _strip_prefix(lines[i + 1].rstrip("\n")[4:], "b/")
            current.old_path, current.new_path = old, new
            git_header = False
            i += 2
            continue
        if current is None:
            i += 1  # text before the first file (a commit message, say) is ignored
            continue
        if bare.startswith(("new file mode", "deleted file mode")) and git_header:
            if bare.startswith("new"):
                current.old_path = DEV_NULL
            else:
                current.new_path = DEV_NULL
            i += 1
            continue
        if bare.startswith(("rename from", "rename to", "copy from", "copy to")):
            raise PatchError(
                f"{current.path}: renames and copies are not supported; delete and create instead"
            )
        if bare.startswith(("GIT binary patch", "Binary files ")):
            current.binary = True
            i += 1
            continue
        m = _HUNK.match(bare)
        if m is None:
            i += 1  # index lines, modes, and other git metadata
            continue
        hunk = Hunk(
            int(m.group(1)),
            int(m.group(2)) if m.group(2) is not None else 1,
            int(m.group(3)),
            int(m.group(4)) if m.group(4) is not None else 1,
        )
        i += 1
        old_seen = new_seen = 0
        while i < len(lines) and (old_seen < hunk.old_len or new_seen < hunk.new_len):
            line = lines[i]
            op = line[:1]
            if line.rstrip("\n") == NO_NEWLINE:
                _drop_newline(hunk, current.path, len(current.hunks) + 1)
                i += 1
                continue
            if op == "\n" or op == "":
                op, line = " ", " \n"  # an empty context line whose space was stripped
            if op not in " -+":
                raise PatchError(
                    f"{current.path}: hunk {len(current.hunks) + 1}: line {i + 1} starts with {op!r}, "
                    "not ' ', '-' or '+' (the hunk is shorter than its header says)"
                )
            hunk.lines.append((op, line[1:]))
            old_seen += op in " -"
            new_seen += op in " +"
            i += 1
        if old_seen != hunk.old_len or new_seen != hunk.new_len:
            raise PatchError(f"{current.path}: hunk {len(current.hunks) + 1}: the diff ends inside it")
        if i < len(lines) and lines[i].rstrip("\n") == NO_NEWLINE:
            _drop_newline(hunk, current.path, len(current.hunks) + 1)
            i += 1
        current.hunks.append(hunk)
    close(len(lines))
    for fp in files:
        if not fp.old_path or not fp.new_path:
            raise PatchError(f"{fp.path or 'a file'}: no '---' and '+++' lines")
        where = fp.path
        check_path(fp.old_path, where)
        check_path(fp.new_path, where)
        if DEV_NULL not in (fp.old_path, fp.new_path) and fp.old_path != fp.new_path:
            raise PatchError(f"{where}: a rename ({fp.old_path} -> {fp.new_path}) is not supported")
    return files


def _drop_newline(hunk: Hunk, path: str, number: int) -> None:
    if not hunk.lines:
        raise PatchError(f"{path}: hunk {number}: '{NO_NEWLINE}' before any line")
    op, text = hunk.lines[-1]
    hunk.lines[-1] = (op, text[:-1] if text.endswith("\n") else text)


def find_block(lines: list[str], block: list[str], hint: int) -> int:
    """Where block occurs in lines, the occurrence nearest to hint; -1 if nowhere."""
    if not block:
        return min(max(hint, 0), len(lines))
    best = -1
    for at in range(len(lines) - len(block) + 1):
        if lines[at : at + len(block)] == block and (best < 0 or abs(at - hint) < abs(best - hint)):
            best = at
    return best


def _resolve(root: Path, rel: str) -> Path:
    """root/rel, refusing a path that leaves root through a link."""
    target = root / rel
    real_root = os.path.realpath(root)
    real = os.path.realpath(target)
    if os.path.commonpath([real_root, real]) != real_root or os.path.islink(target):
        raise PatchError(f"{rel}: leaves the repository (a link)")
    return target


def apply_patch(root: Path, diff: str) -> None:
    """Apply a git-style unified diff to the tree at root; PatchError, writing nothing, if any part
    of it does not apply."""
    root = Path(root)
    planned: dict[str, str | None] = {}  # path -> new text, or None to delete
    for fp in parse_patch(diff):
        where = fp.path
        if fp.binary:
            raise PatchError(f"{where}: a binary change; only text files can be patched")
        target = _resolve(root, where)
        if fp.old_path == DEV_NULL:
            if (where in planned and planned[where] is not None) or (
                where not in planned and target.exists()
            ):
                raise PatchError(f"{where}: created by the diff but it exists already")
            original: list[str] = []
        elif where in planned:
            text = planned[where]
            if text is None:
                raise PatchError(f"{where}: changed after the diff deleted it")
            original = text.splitlines(keepends=True)
        else:
            if not target.is_file():
                raise PatchError(f"{where}: no such file to patch")
            try:
                original = target.read_text(encoding="utf-8").splitlines(keepends=True)
            except UnicodeDecodeError:
                raise PatchError(f"{where}: not a UTF-8 text file") from None
        lines = list(original)
        shift = 0
        for number, hunk in enumerate(fp.hunks, 1):
            hint = max(hunk.old_start - 1, 0) + shift
            at = find_block(lines, hunk.old, hint)
            if at < 0:
                first = next((t for op, t in hunk.lines if op in " -"), "").rstrip("\n")
                raise PatchError(
                    f"{where}: hunk {number} (@@ -{hunk.old_start},{hunk.old_len}): its context and removed "
                    f"lines are not in the file (first: {first[:80]!r})"
                )
            lines[at : at + len(hunk.old)] = hunk.new
            shift += len(hunk.new) - len(hunk.old)
        if fp.new_path == DEV_NULL:
            if lines:
                raise PatchError(f"{where}: deleted by the diff but lines would remain")
            planned[where] = None
        else:
            planned[where] = "".join(lines)
    for rel, content in planned.items():
        target = _resolve(root, rel)
        if content is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")


# --------------------------------------------------------------------------- making diffs


def tree_files(root: Path) -> dict[str, Path]:
    """Regular files under root by relative POSIX path (ignored directories, .pyc and links left out)."""
    found: dict[str, Path] = {}
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d for d in dirs if d not in IGNORED_NAMES and not os.path.islink(os.path.join(here, d))
        )
        for name in files:
            full = Path(here, name)
            if name.endswith(".pyc") or full.is_symlink() or not full.is_file():
                continue
            found[full.relative_to(root).as_posix()] = full
    return found


def _text(path: Path | None) -> list[str] | None:
    """A file's lines, [] for none, None if it is not UTF-8 text."""
    if path is None:
        return []
    try:
        return path.read_text(encoding="utf-8").splitlines(keepends=True)
    except (UnicodeDecodeError, OSError):  # not text, or made unreadable by the code under test
        return None


def file_diff(
    rel: str, before: list[str] | None, after: list[str] | None, created: bool, deleted: bool
) -> str:
    """One file's git-style diff (before/after None: binary)."""
    header = f"diff --git a/{rel} b/{rel}\n"
    if created:
        header += "new file mode 100644\n"
    elif deleted:
        header += "deleted file mode 100644\n"
    if before is None or after is None:
        return header + f"Binary files a/{rel} and b/{rel} differ\n"
    old_name = DEV_NULL if created else f"a/{rel}"
    new_name = DEV_NULL if deleted else f"b/{rel}"
    body = []
    for line in difflib.unified_diff(before, after, old_name, new_name, n=3):
        if not line.endswith("\n"):
            line += "\n" + NO_NEWLINE + "\n"
        body.append(line)
    if not body:  # an empty file created or deleted
        body = [f"--- {old_name}\n", f"+++ {new_name}\n"]
    return header + "".join(body)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.read_bytes() == b.read_bytes()
    except OSError:
        return False


def diff_trees(before: Path, after: Path) -> str:
    """The git-style unified diff from the tree `before` to the tree `after`, files in sorted order;
    created and deleted files against /dev/null. "" when they are the same."""
    old, new = tree_files(before), tree_files(after)
    parts = []
    for rel in sorted(old.keys() | new.keys()):
        a, b = old.get(rel), new.get(rel)
        if a is not None and b is not None and _same(a, b):
            continue
        parts.append(file_diff(rel, _text(a), _text(b), created=a is None, deleted=b is None))
    return "".join(parts)


# --------------------------------------------------------------------------- tests versus code


def is_test_path(path: str) -> bool:
    """Is this a test file? Anything under a tests/ (or test/, testing/) directory, test_*.py,
    *_test.py and conftest.py."""
    parts = PurePosixPath(path).parts
    if not parts:
        return False
    name = parts[-1]
    if any(p in ("tests", "test", "testing") for p in parts[:-1]):
        return True
    return (
        name == "conftest.py"
        or (name.startswith("test_") and name.endswith(".py"))
        or name.endswith("_test.py")
    )


def split_test_changes(diff: str) -> tuple[str, str]:
    """(the code part, the test part) of a diff, by file: a file is a test file if its old or new path
    is (is_test_path)."""
    code: list[str] = []
    tests: list[str] = []
    for fp in parse_patch(diff):
        paths = [p for p in (fp.old_path, fp.new_path) if p != DEV_NULL]
        (tests if any(is_test_path(p) for p in paths) else code).append(fp.text)
    return "".join(code), "".join(tests)
