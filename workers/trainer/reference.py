"""The KL reference: the policy as RL starts (after the SFT warm-up), pinned once on disk.

The reference is written once, at the first RL step, to `<workdir>/checkpoints/reference/` (beside the
attempts' directories), and every rank of every attempt loads it from there: a resumed attempt never
re-derives it from its own, since moved, policy. The directory holds the weights (`weights.pt`, the
policy's full state dict in the training precision — gathered from the ranks' shards under ZeRO-3, the
base weights and the adapters with LoRA) and `meta.json` (the step, the precision and the weights'
sha256, checked on every load)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

WEIGHTS = "weights.pt"
META = "meta.json"


@dataclass(frozen=True)
class PinnedReference:
    path: Path  # the directory
    step: int  # the first RL step: the reference is the policy before it
    precision: str
    sha256: str


def reference_dir(checkpoints_root: Path) -> Path:
    return checkpoints_root / "reference"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_pin(directory: Path) -> PinnedReference | None:
    """The pinned reference in `directory`, or None when none was pinned. A directory only ever appears
    complete (it is renamed into place), so a meta.json there means the weights are there too."""
    meta_path = directory / META
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    try:
        step, precision, sha256 = int(meta["step"]), str(meta["precision"]), str(meta["sha256"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"pinned KL reference {meta_path}: unreadable ({exc!r})") from None
    return PinnedReference(path=directory, step=step, precision=precision, sha256=sha256)


def gathered_state_dict(module: torch.nn.Module, *, rank: int) -> dict[str, torch.Tensor] | None:
    """The module's full state dict on the CPU on rank 0 (None elsewhere). Every rank must call it: under
    ZeRO-3 each parameter is sharded across the ranks and gathering it is a collective. Outside ZeRO-3
    the gather is a no-op."""
    import deepspeed

    with deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None):
        if rank != 0:
            return None
        return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def write_pin(
    state: dict[str, torch.Tensor], directory: Path, *, step: int, precision: str
) -> PinnedReference:
    """Write the reference atomically (a temporary directory renamed into place). If another attempt
    pinned one first, keep theirs: a run has exactly one reference."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(state, tmp / WEIGHTS)
    meta = {"step": step, "precision": precision, "sha256": file_sha256(tmp / WEIGHTS)}
    (tmp / META).write_text(json.dumps(meta, indent=1))
    try:
        os.rename(tmp, directory)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if read_pin(directory) is None:
            raise
    pin = read_pin(directory)
    assert pin is not None
    return pin


def load_pin(pin: PinnedReference, shape: torch.nn.Module, *, dtype: torch.dtype) -> torch.nn.Module:
    """The frozen reference: `shape` (a copy of the policy's module, the same class and parameter names)
    with the pinned weights loaded, in `dtype`, in eval mode, without gradients. Weights that do not
    match meta.json's sha256 are refused rather than silently used."""
    weights = pin.path / WEIGHTS
    actual = file_sha256(weights)
    if actual != pin.sha256:
        raise ValueError(
            f"pinned KL reference {weights}: sha256 {actual} does not match {pin.sha256} in {META}"
        )
    state = torch.load(weights, map_location="cpu", weights_only=True)
    shape.load_state_dict(state)
    ref: Any = shape.to(dtype)
    if hasattr(ref, "merge_and_unload"):  # a PeftModel: one merged forward instead of base + adapters
        ref = ref.merge_and_unload()
    ref.eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    module: torch.nn.Module = ref
    return module
