"""Where a run's checkpoints live, where an attempt of it writes its own and where it resumes from, and
how a checkpoint's weights are read back (an export, a standalone evaluation)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


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


def checkpoint_to_load(path: Path) -> tuple[Path, str]:
    """(attempt directory, tag) of the checkpoint `path` names: a checkpoint directory itself (it holds
    DeepSpeed's model states), an attempt directory (its `latest`), or a run's checkpoint root (the
    `latest` of its highest attempt that has one, else its own, as before attempts)."""
    if any(path.glob("*mp_rank_00_model_states.pt")):
        return path.parent, path.name
    attempts = sorted(
        (int(p.name.removeprefix("attempt-")), p)
        for p in path.glob("attempt-*")
        if p.name.removeprefix("attempt-").isdigit() and _resumable(p)
    )
    for directory in [p for _, p in attempts[-1:]] + [path]:
        if _resumable(directory):
            return directory, (directory / "latest").read_text().strip()
    raise ValueError(
        f"{path}: no checkpoint there (neither DeepSpeed model states, nor a `latest` naming one, "
        "nor attempt-<n>/latest)"
    )


def consolidated_weights(attempt_dir: Path, tag: str) -> dict[str, Any]:
    """The checkpoint's module weights in fp32, whole. ZeRO 1-3 keep fp32 master weights partitioned
    in the optimizer files, which DeepSpeed's zero_to_fp32 consolidates without a process group; ZeRO-0
    keeps none there, and its model states hold the whole module (in the precision it trained in).
    Raises ValueError saying what is missing."""
    import torch

    directory = attempt_dir / tag
    states = sorted(directory.glob("*mp_rank_00_model_states.pt"))
    if not states:
        raise ValueError(f"{directory} holds no DeepSpeed model states (*mp_rank_00_model_states.pt)")
    # weights_only=False: DeepSpeed pickles its config and client state next to the tensors; this is the
    # run's own checkpoint, written by the trainer on this pool's storage, not an upload.
    first = torch.load(states[0], map_location="cpu", weights_only=False)
    stage = int(((first.get("ds_config") or {}).get("zero_optimization") or {}).get("stage", 0))
    if stage == 0:
        module = first.get("module")
        if not isinstance(module, dict) or not module:
            raise ValueError(f"{states[0]} holds no module weights")
        return {k: v.float() for k, v in module.items()}
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    return dict(get_fp32_state_dict_from_zero_checkpoint(str(attempt_dir), tag=tag))
