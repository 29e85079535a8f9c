"""A repository task's snapshot (a gzip'd tar of the repository), checked and listed without extracting it.

Plain Python, standard library only: the importer checks every snapshot with `snapshot_files` before
anything is stored, and the problem page lists one with it. It reads the tar's headers only (the stream
is decompressed to skip each file's data; nothing is written to disk) and refuses what the episode's
workspace (workers/repo/workspace.py) would refuse: anything but regular files and directories, an
absolute path or one that climbs out with "..", and more files or bytes than its limits.
"""

from __future__ import annotations

import io
import tarfile
import zlib
from dataclasses import dataclass

# The workspace's limits (workers.repo.workspace.WorkspaceLimits' defaults); parsing passes ENV's own.
MAX_FILES = 2000
MAX_BYTES = 32 << 20
MAX_FILE_BYTES = 2 << 20


class SnapshotInvalid(ValueError):
    """Why a snapshot is refused: a sentence for the person who made it."""


@dataclass(frozen=True)
class SnapshotFile:
    name: str  # relative to the repository root, no leading "./"
    size: int


def _name(member: tarfile.TarInfo) -> str:
    name = member.name
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


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
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive:
                name = _name(member)
                if member.isdir() and name in ("", "."):
                    continue
                if not name or name.startswith("/") or ".." in name.split("/"):
                    raise SnapshotInvalid(f"member {member.name!r}: a path outside the repository")
                if member.isdir():
                    continue
                if not member.isreg():
                    what = "a link" if member.issym() or member.islnk() else "not a regular file"
                    raise SnapshotInvalid(f"member {name!r} is {what}: only files and directories")
                if member.size > max_file_bytes:
                    raise SnapshotInvalid(
                        f"member {name!r} is {member.size} bytes; the limit is {max_file_bytes} per file"
                    )
                total += member.size
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
