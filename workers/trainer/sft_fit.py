"""What the SFT warm-up can train on within the model's context: rows cut or skipped to fit."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FittedRows:
    prompts: list[list[int]]
    targets: list[list[int]]
    kept: list[int]  # the input rows kept, by index
    skipped: list[int]  # the rows whose target alone cannot fit


def fit_sft_rows(
    prompts: Sequence[Sequence[int]], targets: Sequence[Sequence[int]], *, max_len: int
) -> FittedRows:
    """Rows that fit max_len tokens once batched (docs/trainer.md, "Each step").

    A batch is the left-padded prompts then the right-padded targets, so its width is the longest
    prompt plus the longest target. A target is the lesson and is never cut: a row whose target
    leaves no room for one prompt token (the one that predicts the target's first) is skipped. The
    kept prompts are cut from the left to max_len minus the longest kept target, so the end of the
    problem, nearest to the answer, is what stays."""
    if max_len < 2:
        raise ValueError(f"max_len: must be at least 2 (one prompt and one target token), got {max_len}")
    if len(prompts) != len(targets):
        raise ValueError(f"{len(prompts)} prompts for {len(targets)} targets")
    kept = [i for i, t in enumerate(targets) if len(t) <= max_len - 1]
    skipped = [i for i, t in enumerate(targets) if len(t) > max_len - 1]
    room = max_len - max((len(targets[i]) for i in kept), default=0)
    return FittedRows(
        prompts=[list(prompts[i])[-room:] for i in kept],
        targets=[list(targets[i]) for i in kept],
        kept=kept,
        skipped=skipped,
    )
