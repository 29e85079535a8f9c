"""Where a run's checkpoints live, where an attempt of it writes its own and where it resumes from."""

from __future__ import annotations

import os
from pathlib import Path


def run_attempt() -> int:
    """The attempt this trainer belongs to (TRIAD_RUN_ATTEMPT, set by the launcher; 1 when unset)."""
    raw = os.environ.get("TRIAD_RUN_ATTEMPT", "") or "1"
    try:
        attempt = int(raw)
    except ValueError:
        raise ValueError(f"TRIAD_RUN_ATTEMPT: expected an integer >= 1, got {raw!r}") from None
    if attempt < 1:
        raise ValueError(f"TRIAD_RUN_ATTEMPT: expected an integer >= 1, got {raw!r}")
    return attempt


def checkpoint_root(workdir: Path) -> Path:
    """The run's checkpoint root: TRIAD_CHECKPOINT_DIR when the launcher sets it (`<shared>/run-<id>`,
    on storage every node of the pool mounts, so that any node can resume the run), else
    `<workdir>/checkpoints` (one node, as before). The attempts' directories and the pinned KL reference
    sit under it."""
    shared = os.environ.get("TRIAD_CHECKPOINT_DIR", "").strip()
    return Path(shared) if shared else workdir / "checkpoints"


def _resumable(directory: Path) -> bool:
    """Whether `directory` holds a `latest` naming a checkpoint that is there (retention may have
    deleted what an earlier attempt's `latest` named)."""
    try:
        tag = (directory / "latest").read_text().strip()
    except OSError:
        return False
    return bool(tag) and (directory / tag).is_dir()


def checkpoint_dirs(root: Path, attempt: int) -> tuple[Path, Path | None]:
    """Where this attempt writes its checkpoints, and where it resumes from (None: from scratch).

    Each attempt writes only `root/attempt-<n>`, so two attempts — a fenced one whose trainer has not
    stopped yet and the one that resumed the run — never write the same files. It resumes from its own
    newest checkpoint if it has one, else from that of the latest earlier attempt that saved one (read
    only), else from a checkpoint of the layout before attempts (`root/latest`)."""
    own = root / f"attempt-{attempt}"
    for earlier in range(attempt, 0, -1):
        candidate = root / f"attempt-{earlier}"
        if _resumable(candidate):
            return own, candidate
    return own, root if _resumable(root) else None
