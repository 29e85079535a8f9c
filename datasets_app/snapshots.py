"""A repository task's snapshot (a gzip'd tar of the repository), checked and listed without extracting it.

The importer checks every snapshot with `snapshot_files` before anything is stored, and the problem page
lists one with it. Both go through the episode workspace's own reading of a snapshot
(workers/repo/workspace.py, `extract` with nothing written), so the importer refuses exactly what an
episode could not unpack: anything but regular files and directories, an absolute or odd path or one
that climbs out with "..", a file where a directory is, and more files or bytes than the limits.
"""

from __future__ import annotations

from dataclasses import dataclass

from workers.repo.workspace import SnapshotError, WorkspaceLimits, snapshot_listing

_DEFAULT = WorkspaceLimits()
MAX_FILES = _DEFAULT.max_files
MAX_BYTES = _DEFAULT.max_bytes
MAX_FILE_BYTES = _DEFAULT.max_file_bytes


class SnapshotInvalid(ValueError):
    """Why a snapshot is refused: a sentence for the person who made it."""


@dataclass(frozen=True)
class SnapshotFile:
    name: str  # relative to the repository root, no leading "./"
    size: int


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
    limits = WorkspaceLimits(max_files=max_files, max_bytes=max_bytes, max_file_bytes=max_file_bytes)
    try:
        listing = snapshot_listing(data, limits)
    except SnapshotError as exc:
        raise SnapshotInvalid(str(exc).removeprefix("snapshot ")) from None
    if not listing:
        raise SnapshotInvalid("the archive holds no files")
    return [SnapshotFile(name=name, size=size) for name, size in listing]
