"""Per-token log-probs of completions under a model: what the GRPO update and the SFT warm-up train on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from workers.trainer.rollout import LogitsFn, left_pad


def completion_logprobs(
    logits_fn: LogitsFn,
    prompt_rows: Sequence[Sequence[int]],
    completion_rows: Sequence[Sequence[int]],
    *,
    pad_id: int,
    temperature: float,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Log-probs of each completion token under the model, at the sampling temperature.

    Returns (logp (B, C), mask (B, C), entropy (B, C)) where C is the longest completion.
    """
    p_ids, p_mask = left_pad(prompt_rows, pad_id)
    width = max(1, max(len(c) for c in completion_rows))
    c_ids = torch.full((len(completion_rows), width), pad_id, dtype=torch.long)
    c_mask = torch.zeros((len(completion_rows), width), dtype=torch.bool)
    for i, c in enumerate(completion_rows):
        if c:
            c_ids[i, : len(c)] = torch.tensor(list(c), dtype=torch.long)
            c_mask[i, : len(c)] = True
    ids = torch.cat([p_ids, c_ids], dim=1).to(device)
    attn = torch.cat([p_mask, c_mask], dim=1).to(device)
    start = p_ids.shape[1] - 1
    logits = logits_fn(ids, attn)[:, start : start + width, :].float() / temperature
    logp_all = torch.log_softmax(logits, dim=-1)
    c_ids, c_mask = c_ids.to(device), c_mask.to(device)
    logp = logp_all.gather(2, c_ids.unsqueeze(2)).squeeze(2)
    with torch.no_grad():
        entropy = -(logp_all.exp() * logp_all).sum(-1)
    return logp, c_mask, entropy


def tiny_logits_fn(model: Callable[..., Any], *, hf: bool) -> LogitsFn:
    """The model (or the DeepSpeed engine around it) as a LogitsFn: a transformers model takes keyword
    arguments and answers an output object, the tiny model takes (ids, mask) and answers the logits."""

    def fn(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if hf:
            out: torch.Tensor = model(input_ids=ids, attention_mask=mask.long()).logits
            return out
        res: torch.Tensor = model(ids, mask)
        return res

    return fn


def apply_loss_masks(mask: torch.Tensor, loss_masks: Sequence[Sequence[bool]]) -> torch.Tensor:
    """mask (B, C) of completion tokens, and with each row's loss mask where it has one (an episode's:
    its observations are 0); an empty loss mask leaves the row as it is."""
    out = mask.clone()
    for i, row in enumerate(loss_masks):
        if row:
            keep = torch.zeros(out.shape[1], dtype=torch.bool, device=out.device)
            keep[: len(row)] = torch.tensor(list(row), dtype=torch.bool, device=out.device)
            out[i] &= keep
    return out
