"""A repository task's snapshot (a gzip'd tar of the repository), checked and listed without extracting it.

Plain Python, standard library only: the importer checks every snapshot with `snapshot_files` before
anything is stored, and the problem page lists one with it. It reads the tar's headers only (the stream
is decompressed to skip each file's data; nothing is written to disk) and refuses what the episode's
workspace (workers/repo/workspace.py, `extract`) would refuse, by the same rules: anything but regular
files and directories, an absolute or odd path or one that climbs out with "..", a file where a
directory is, and more files or bytes than its limits (what it skips, __pycache__ and .git, is skipped).
"""

from __future__ import annotations

import io
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

# The workspace's limits (workers.repo.workspace.WorkspaceLimits' defaults); parsing passes ENV's own.
MAX_FILES = 2000
MAX_BYTES = 32 << 20
MAX_FILE_BYTES = 2 << 20
IGNORED_NAMES = frozenset({"__pycache__", ".pytest_cache", ".git"})  # the workspace skips these


class SnapshotInvalid(ValueError):
    """Why a snapshot is refused: a sentence for the person who made it."""


@dataclass(frozen=True)
class SnapshotFile:
    name: str  # relative to the repository root, no leading "./"
    size: int


def _name(member: tarfile.TarInfo) -> str:
    """The member's path relative to the root ("" for the root itself), as the workspace reads it."""
    path = member.name
    while path.startswith("./"):
        path = path[2:]
    path = path.rstrip("/")
    if not path or path == ".":
        return ""
    if path.startswith("/") or "\\" in path or "\0" in path:
        raise SnapshotInvalid(f"member {member.name!r}: an absolute or odd path")
    if any(part in ("..", ".") for part in PurePosixPath(path).parts) or "//" in path:
        raise SnapshotInvalid(f"member {member.name!r}: a path outside the repository")
    return path


def snapshot_files(
    data: bytes,
    *,
    max_files: int = MAX_FILES,
    max_bytes: int = MAX_BYTES,
    max_file_bytes: int = MAX_FILE_BYTES,
) -> list[SnapshotFile]:
    """The snapshot's regular files (name, size), in archive order; raises SnapshotInvalid saying what
    is wrong with it."""
    if data[:2] != b"\x1f\x8b":
        raise SnapshotInvalid("not a gzip'd tar (.tar.gz): it does not start with gzip's magic bytes")
    files: list[SnapshotFile] = []
    names: set[str] = set()
    dirs: set[str] = set()
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive:
                name = _name(member)
                if not name or any(part in IGNORED_NAMES for part in PurePosixPath(name).parts):
                    continue
                parents = {str(p) for p in PurePosixPath(name).parents if str(p) != "."}
                if parents & names or (member.isdir() and name in names) or (member.isreg() and name in dirs):
                    raise SnapshotInvalid(f"member {member.name!r}: a file where a directory is")
                dirs |= parents
                if member.isdir():
                    dirs.add(name)
                    continue
                if not member.isreg():
                    what = "a link" if member.issym() or member.islnk() else "not a regular file"
                    raise SnapshotInvalid(f"member {name!r} is {what}: only files and directories")
                if member.size > max_file_bytes:
                    raise SnapshotInvalid(
                        f"member {name!r} is {member.size} bytes; the limit is {max_file_bytes} per file"
                    )
                total += member.size
                names.add(name)
                files.append(SnapshotFile(name=name, size=member.size))
                if len(files) > max_files:
                    raise SnapshotInvalid(f"more than {max_files} files")
                if total > max_bytes:
                    raise SnapshotInvalid(f"more than {max_bytes} bytes once unpacked")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise SnapshotInvalid(f"not a readable gzip'd tar: {exc}") from None
    if not files:
        raise SnapshotInvalid("the archive holds no files")
    return files
