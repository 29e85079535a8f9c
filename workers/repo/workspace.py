"""A workspace: a fresh, writable extract of a task's snapshot, removed whatever happens.

bwrap 0.8 has no overlay option, so every episode (and every grading) extracts the snapshot again;
bench/episodes.py compares that with a bare `cp -r` of an extracted copy. The extract refuses what a
hostile archive could do to the host — absolute paths, "..", links, devices, too many files or bytes —
with a SnapshotError naming the member, and leaves nothing behind when it refuses.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import tarfile
import tempfile
import weakref
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType

# Written by the tests and Python themselves; never part of a repository's state (nor of a diff).
IGNORED_NAMES = frozenset({"__pycache__", ".pytest_cache", ".git"})


@dataclass(frozen=True)
class WorkspaceLimits:
    max_files: int = 2000  # regular files in the snapshot
    max_bytes: int = 32 << 20  # their total size, extracted
    max_file_bytes: int = 2 << 20  # the largest one


class SnapshotError(ValueError):
    """The snapshot cannot be extracted safely; the message names the member (or the archive)."""


def member_path(name: str) -> str:
    """A member's name as a relative POSIX path ("./" dropped), or SnapshotError."""
    path = name
    while path.startswith("./"):
        path = path[2:]
    path = path.rstrip("/")
    if not path or path == ".":
        return ""
    if path.startswith("/") or "\\" in path or "\0" in path:
        raise SnapshotError(f"snapshot member {name!r}: an absolute or odd path")
    parts = PurePosixPath(path).parts
    if any(part in ("..", ".") for part in parts) or "//" in path:
        raise SnapshotError(f"snapshot member {name!r}: a path outside the repository")
    return path


def extract(
    snapshot: bytes, dest: Path | None, limits: WorkspaceLimits, listing: list[tuple[str, int]] | None = None
) -> int:
    """Extract the .tar.gz into the empty directory dest (None: only check it, writing nothing);
    the number of files, each (path, size) appended to `listing` when given. SnapshotError on any
    member that is not a plain file or directory inside dest, a file where a directory is, or past a
    limit. The one reading of a snapshot: the importer's check and the problem page's file list
    (datasets_app/snapshots.py) come through here too, so they refuse exactly what an episode would."""
    files = 0
    total = 0
    names: set[str] = set()  # the files so far
    dirs: set[str] = set()  # the directories so far, named or implied by a path
    try:
        with tarfile.open(fileobj=io.BytesIO(snapshot), mode="r:gz") as tar:
            for member in tar:
                path = member_path(member.name)
                if not path:
                    continue
                if any(part in IGNORED_NAMES for part in PurePosixPath(path).parts):
                    continue
                parents = {str(p) for p in PurePosixPath(path).parents if str(p) != "."}
                if parents & names or (member.isdir() and path in names) or (member.isreg() and path in dirs):
                    raise SnapshotError(f"snapshot member {member.name!r}: a file where a directory is")
                dirs |= parents
                if member.isdir():
                    dirs.add(path)
                    if dest is not None:
                        (dest / path).mkdir(parents=True, exist_ok=True)
                    continue
                if not member.isreg():
                    kind = "a link" if member.issym() or member.islnk() else "not a regular file"
                    raise SnapshotError(
                        f"snapshot member {member.name!r} is {kind}: only files and directories"
                    )
                files += 1
                names.add(path)
                if listing is not None:
                    listing.append((path, member.size))
                total += member.size
                if files > limits.max_files:
                    raise SnapshotError(
                        f"snapshot member {member.name!r}: more than {limits.max_files} files"
                    )
                if member.size > limits.max_file_bytes:
                    raise SnapshotError(
                        f"snapshot member {member.name!r}: {member.size} bytes; "
                        f"at most {limits.max_file_bytes}"
                    )
                if total > limits.max_bytes:
                    raise SnapshotError(
                        f"snapshot member {member.name!r}: the files pass {limits.max_bytes} bytes in all"
                    )
                source = tar.extractfile(member)
                if source is None:  # pragma: no cover — a regular member always has data
                    raise SnapshotError(f"snapshot member {member.name!r}: no data")
                if dest is None:
                    while source.read(1 << 20):  # the data must be there and decompress
                        pass
                    continue
                target = dest / path
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_dir():
                    raise SnapshotError(f"snapshot member {member.name!r}: a file where a directory is")
                with open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
                os.chmod(target, 0o755 if member.mode & 0o100 else 0o644)
    except SnapshotError:
        raise
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise SnapshotError(f"snapshot: not a readable .tar.gz ({e})") from None
    except OSError as e:
        raise SnapshotError(f"snapshot: cannot extract it ({e.strerror or e}: {e.filename or ''})") from None
    return files


def check_snapshot(snapshot: bytes, limits: WorkspaceLimits = WorkspaceLimits()) -> int:
    """Check a snapshot as Workspace.create would, writing nothing (an importer's check); the number
    of files in it. SnapshotError naming the member otherwise."""
    return extract(snapshot, None, limits)


def snapshot_listing(snapshot: bytes, limits: WorkspaceLimits = WorkspaceLimits()) -> list[tuple[str, int]]:
    """The snapshot's files as (path, size), in archive order, checked as check_snapshot does."""
    listing: list[tuple[str, int]] = []
    extract(snapshot, None, limits, listing)
    return listing


def remove_tree(top: str) -> None:
    """Remove a directory tree, also one whose code made parts of it unreadable or unwritable."""
    if not os.path.lexists(top):
        return

    def make_writable(function: object, path: str, error: object) -> None:
        # Open every directory up to the root again (code in the sandbox may have chmod'ed them) and retry.
        for here, dirs, _ in os.walk(top):
            for name in dirs:
                full = os.path.join(here, name)
                if not os.path.islink(full):
                    os.chmod(full, stat.S_IRWXU)
        os.chmod(top, stat.S_IRWXU)
        parent = os.path.dirname(path)
        if os.path.isdir(parent) and not os.path.islink(parent):
            os.chmod(parent, stat.S_IRWXU)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)

    try:
        shutil.rmtree(top, onerror=make_writable)
    except OSError:
        shutil.rmtree(top, ignore_errors=True)


class Workspace:
    """A writable copy of a snapshot at `.root`; a context manager, removed on close or exit."""

    def __init__(self, top: str, files: int) -> None:
        self._top = top
        self.root = Path(top) / "repo"
        self.files = files
        # Removed also if the owner forgets to close it (garbage collection, interpreter exit).
        self._finalizer = weakref.finalize(self, remove_tree, top)

    @classmethod
    def create(cls, snapshot: bytes, limits: WorkspaceLimits = WorkspaceLimits()) -> Workspace:
        """Extract snapshot into a fresh temporary directory; SnapshotError (leaving nothing) if unsafe."""
        top = tempfile.mkdtemp(prefix="triad-workspace-")
        try:
            root = Path(top) / "repo"
            root.mkdir()
            files = extract(snapshot, root, limits)
        except BaseException:
            remove_tree(top)
            raise
        return cls(top, files)

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def close(self) -> None:
        self._finalizer()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def make_snapshot(root: Path) -> bytes:
    """A deterministic .tar.gz of the tree at root (sorted, no owners, no times, no "./"): the same
    tree gives the same bytes, so tasks of one repository state share one snapshot (its sha256).
    Links and other special files are refused; __pycache__ and the like are left out."""
    buf = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in sorted(_walk(root)):
            full = root / path
            info = tarfile.TarInfo(path)
            info.mtime = 0
            if full.is_dir():
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                data = full.read_bytes()
                info.size = len(data)
                info.mode = 0o755 if os.stat(full).st_mode & 0o100 else 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _walk(root: Path) -> list[str]:
    out: list[str] = []
    for here, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in IGNORED_NAMES]
        rel = os.path.relpath(here, root)
        for name in (*dirs, *files):
            full = os.path.join(here, name)
            if os.path.islink(full) or not (os.path.isdir(full) or os.path.isfile(full)):
                raise SnapshotError(
                    f"{os.path.join(rel, name)}: a link or special file; a snapshot holds neither"
                )
            if name.endswith(".pyc"):
                continue
            out.append(os.path.normpath(os.path.join(rel, name)))
    return out
