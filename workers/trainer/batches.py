"""A step's batch structure, defined once (docs/trainer.md, "One step").

A step samples a rollout batch: `prompts_per_step` groups of `group_size` completions, shared out between
the ranks. The update splits each rank's groups into `mini_batches` parts, and each part of every rank
together makes one global mini-batch: one optimizer step. `ppo_epochs` passes go over the whole batch.
A rank's part of a mini-batch runs in micro-batches of `micro_batch_size` completions whose gradients
accumulate. Every rank runs the same number of micro-batches per optimizer step (`micro_batches_per_step`,
fixed by the settings), with empty ones where it has run out: under ZeRO every backward is a collective.
The loss is normalised by the token (or completion) count of the whole global mini-batch, which the ranks
all-reduce before the first micro-batch (grpo.token_weights).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from workers.spec import TrainConfig

T = TypeVar("T")


@dataclass(frozen=True)
class Row:
    """One completion as the update trains on it."""

    prompt: list[int]
    completion: list[int]
    old_logprobs: list[float]  # the sampling policy's, one per completion token
    advantage: float
    in_loss: bool = True  # False: in its group's baseline, out of the loss (a masked overlong one)
    # Which completion tokens are the policy's own (empty: all): an episode's observations are 0
    # (workers/trainer/episodes.py), and carry no gradient and no share of the loss's normalisation.
    loss_mask: tuple[bool, ...] = ()

    @property
    def loss_tokens(self) -> int:
        return sum(self.loss_mask) if self.loss_mask else len(self.completion)


def split_even(items: Sequence[T], parts: int) -> list[list[T]]:
    """items in `parts` contiguous chunks whose sizes differ by at most one (the first ones larger);
    chunks are empty where there are fewer items than parts."""
    base, extra = divmod(len(items), parts)
    out: list[list[T]] = []
    start = 0
    for i in range(parts):
        size = base + (1 if i < extra else 0)
        out.append(list(items[start : start + size]))
        start += size
    return out


def max_rank_groups(train: TrainConfig, world: int) -> int:
    """The most groups a rank holds in one step (problems are dealt out round-robin)."""
    return math.ceil(train.prompts_per_step / world)


def micro_batches_per_step(train: TrainConfig, world: int) -> int:
    """Micro-batches every rank runs per optimizer step: enough for the largest part of a mini-batch
    any rank can hold. DeepSpeed's gradient_accumulation_steps."""
    if not train.micro_batch_size:
        return 1
    rows = math.ceil(max_rank_groups(train, world) / train.mini_batches) * train.group_size
    return max(1, math.ceil(rows / train.micro_batch_size))


def mini_batches(groups: Sequence[Sequence[Row]], train: TrainConfig) -> list[list[Row]]:
    """A rank's groups as its part of each mini-batch: whole groups, as even as the count allows."""
    return [[row for group in part for row in group] for part in split_even(groups, train.mini_batches)]


def micro_batches(rows: Sequence[T], *, size: int, count: int) -> list[list[T]]:
    """rows in exactly `count` micro-batches of at most `size` (0: no limit), the last ones empty where
    rows run out."""
    if size:
        chunks = [list(rows[i : i + size]) for i in range(0, len(rows), size)]
    else:
        chunks = [list(rows)] if rows else []
    if len(chunks) > count:
        raise ValueError(f"{len(rows)} rows need {len(chunks)} micro-batches of {size}, more than {count}")
    return chunks + [[] for _ in range(count - len(chunks))]


def loss_rows(rows: Sequence[Row]) -> tuple[int, int]:
    """(tokens, completions) this rank adds to the mini-batch's loss normalisation."""
    kept = [r for r in rows if r.in_loss and r.loss_tokens]
    return sum(r.loss_tokens for r in kept), len(kept)


def lr_at(train: TrainConfig, update: int) -> float:
    """The RL learning rate of optimizer update `update` (0-based, counted from the first RL step):
    linear warm-up over lr_warmup_steps, then constant or cosine down to lr × lr_min_ratio at the
    last update (Loshchilov & Hutter 2017, without restarts)."""
    if train.lr_warmup_steps and update < train.lr_warmup_steps:
        return train.lr * (update + 1) / train.lr_warmup_steps
    if train.lr_schedule == "constant":
        return train.lr
    total = (train.steps - train.sft_warmup_steps) * train.mini_batches * train.ppo_epochs
    span = max(1, total - 1 - train.lr_warmup_steps)
    progress = min(1.0, max(0.0, (update - train.lr_warmup_steps) / span))
    floor = train.lr * train.lr_min_ratio
    return floor + (train.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
