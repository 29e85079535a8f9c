"""Deleting a deleted run's checkpoints on its pool's storage (docs/runs.md, "Organizing runs").

Plain Python, no Django: a node of the run's pool (which mounts TRIAD_CHECKPOINT_DIR) removes the run's
checkpoint root — `<shared>/run-<id>`, and the work dir's `checkpoints` of runs from before it — but
keeps every `export-step<N>` directory in it: those are registered models (workers/export.py writes them
next to the checkpoints), which outlive the run they came from."""

import shutil
from dataclasses import dataclass, field
from pathlib import Path

EXPORT_PREFIX = "export-step"


@dataclass
class CheckpointsDeleted:
    removed: list[str] = field(default_factory=list)  # paths removed
    kept: list[str] = field(default_factory=list)  # exported models left in place
    bytes: int = 0  # what the removed files held


def _size(path: Path) -> int:
    if path.is_symlink() or path.is_file():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def checkpoints_delete(run_id: int, *, shared: Path, workdir: Path) -> CheckpointsDeleted:
    """Remove run `run_id`'s checkpoints under both roots, keeping exported models; a root already gone
    is nothing to do (a repeated delivery removes nothing more)."""
    if isinstance(run_id, bool) or not isinstance(run_id, int) or run_id < 1:
        raise ValueError(f"run_id: must be a positive integer, got {run_id!r}")
    done = CheckpointsDeleted()
    for root in (shared / f"run-{run_id}", workdir / "checkpoints"):
        if root.is_symlink() or not root.is_dir():  # never follow a link out of the storage
            continue
        for child in sorted(root.iterdir()):
            if child.name.startswith(EXPORT_PREFIX) and child.is_dir() and not child.is_symlink():
                done.kept.append(str(child))
                continue
            done.bytes += _size(child)
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
            done.removed.append(str(child))
        if not any(root.iterdir()):
            root.rmdir()
    return done
