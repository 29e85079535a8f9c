"""GRPO maths: group-relative advantages, the clipped token-level policy loss and the k3 KL estimate."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

ADV_EPS = 1e-4
# Rewards are float sums of weighted components: two that agree may differ in the last bits.
ZERO_STD_TOL = 1e-6


def group_advantages(
    rewards: torch.Tensor,
    valid: torch.Tensor,
    *,
    scale: str = "group",
    unbiased: bool = False,
    batch_std: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """rewards, valid: (G, n). Returns (advantages (G, n), zero_std (G,) bool).

    Advantage = (r - the group's mean over its valid members) / scale, where scale is the group's std
    (`scale="group"`, GRPO: Shao et al. 2024), `batch_std` (`"batch"`: the std of the whole batch's
    rewards, as Lite PPO, Liu et al. 2025) or 1 (`"none"`: Dr. GRPO, Liu et al. 2025), plus ADV_EPS.
    The std is the population one, or with `unbiased` Bessel's (n - 1). Invalid members (sandbox_error)
    get advantage 0. A group whose valid rewards all agree within ZERO_STD_TOL (or with fewer than two
    valid members) carries no signal: its advantages are 0 and it is flagged zero_std.
    """
    if scale not in ("group", "batch", "none"):
        raise ValueError(f"scale must be group, batch or none (got {scale!r})")
    if scale == "batch" and batch_std is None:
        raise ValueError("scale='batch' needs batch_std")
    valid_f = valid.to(rewards.dtype)
    count = valid_f.sum(dim=1, keepdim=True)
    safe = count.clamp(min=1.0)
    mean = (rewards * valid_f).sum(dim=1, keepdim=True) / safe
    centered = (rewards - mean) * valid_f
    high = torch.where(valid, rewards, torch.full_like(rewards, -math.inf)).amax(dim=1)
    low = torch.where(valid, rewards, torch.full_like(rewards, math.inf)).amin(dim=1)
    zero_std = ((high - low) <= ZERO_STD_TOL) | (count.squeeze(1) < 2)
    if scale == "group":
        ddof = 1.0 if unbiased else 0.0
        std = ((centered**2).sum(dim=1, keepdim=True) / (count - ddof).clamp(min=1.0)).sqrt()
        adv = centered / (std + ADV_EPS)
    elif scale == "batch":
        adv = centered / (float(batch_std or 0.0) + ADV_EPS)
    else:
        adv = centered
    adv = torch.where(zero_std.unsqueeze(1), torch.zeros_like(adv), adv)
    return adv, zero_std


def informative(scores: Sequence[Any]) -> bool:
    """Do a group's valid rewards disagree (beyond ZERO_STD_TOL), so that it has advantages to learn
    from? scores: objects with .reward and .valid (rewards.Score)."""
    rewards = [s.reward for s in scores if s.valid]
    return len(rewards) >= 2 and max(rewards) - min(rewards) > ZERO_STD_TOL


def moments_std(total: float, total_sq: float, count: float, *, unbiased: bool) -> float:
    """The std of values known by their sum, sum of squares and count (what ranks all-reduce)."""
    if count < 2:
        return 0.0
    mean = total / count
    var = max(0.0, total_sq / count - mean * mean) * (count / (count - 1) if unbiased else 1.0)
    return math.sqrt(var)


def overlong_penalty(length: int, truncated: bool, *, max_new_tokens: int, buffer: int) -> float:
    """DAPO's soft overlong punishment (Yu et al. 2025, eq. 13), added to the reward: 0 up to
    max_new_tokens - buffer tokens, then falling linearly to -1 at max_new_tokens; -1 for a completion
    cut at max_new_tokens (it would have run past it)."""
    if truncated:
        return -1.0
    free = max_new_tokens - buffer
    if length <= free:
        return 0.0
    return max(-1.0, (free - length) / buffer)


def k3_kl(logp_new: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(new || ref): exp(ref - new) - (ref - new) - 1 (always >= 0)."""
    d = logp_ref - logp_new
    return torch.exp(d) - d - 1.0


LOSS_AGGS = ("token_mean", "seq_mean", "constant")


def token_weights(
    mask: torch.Tensor, *, agg: str, tokens: float, sequences: float, max_new_tokens: int
) -> torch.Tensor:
    """Each token's weight in the loss (B, T), for a loss that is a weighted sum of token losses.

    tokens and sequences count the whole global mini-batch (every rank's rows, every micro-batch), so
    a micro-batch's weighted sum is its exact share of the mini-batch's loss:
    - token_mean: 1 / tokens (DAPO, Yu et al. 2025: every token counts alike);
    - seq_mean: 1 / (the row's length × sequences) (GRPO as in DeepSeekMath, Shao et al. 2024);
    - constant: 1 / (sequences × max_new_tokens) (Dr. GRPO, Liu et al. 2025: no length bias).
    """
    mask_f = mask.to(torch.float32)
    if agg == "token_mean":
        return mask_f / max(tokens, 1.0)
    if agg == "seq_mean":
        lengths = mask_f.sum(dim=1, keepdim=True).clamp(min=1.0)
        return mask_f / lengths / max(sequences, 1.0)
    if agg == "constant":
        return mask_f / (max(sequences, 1.0) * max_new_tokens)
    raise ValueError(f"agg must be one of {', '.join(LOSS_AGGS)} (got {agg!r})")


@dataclass(frozen=True)
class LossOut:
    loss: torch.Tensor  # scalar, differentiable
    n_tokens: int
    clip_frac: float  # share of the unmasked tokens clipped, low and high together
    kl: float  # token mean of k3 over the unmasked tokens (0 without a reference)
    policy_loss: float
    clip_low: int = 0  # tokens where ratio < 1 - clip_eps and the advantage is negative
    clip_high: int = 0  # tokens where ratio > 1 + clip_eps_high and the advantage is positive
    log_ratio_sum: float = 0.0  # over the unmasked tokens, of log(π / π_old)
    log_ratio_sq_sum: float = 0.0
    log_ratio_max: float = 0.0  # the largest |log(π / π_old)|


def grpo_loss(
    logp_new: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_eps: float,
    clip_eps_high: float | None = None,
    beta: float = 0.0,
    logp_ref: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> LossOut:
    """Token-level clipped GRPO loss.

    logp_new, logp_old, mask, logp_ref: (B, T); advantages: (B,). The ratio is clipped to
    [1 - clip_eps, 1 + clip_eps_high] (clip_eps_high None: clip_eps; DAPO's clip-higher when larger).
    The loss is the sum of the token losses times `weights` (token_weights); without weights, the
    average over every unmasked token of this batch. clip_frac is the share of tokens where the clipped
    branch is the active one (the gradient through the ratio is zero there).
    """
    high_eps = clip_eps if clip_eps_high is None else clip_eps_high
    mask_f = mask.to(logp_new.dtype)
    n_tokens = int(mask_f.sum().item())
    if weights is None:
        weights = mask_f / mask_f.sum().clamp(min=1.0)
    weights = weights.to(logp_new.dtype) * mask_f
    log_ratio = logp_new - logp_old.detach()
    ratio = torch.exp(log_ratio)
    adv = advantages.detach().unsqueeze(1).to(logp_new.dtype)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + high_eps) * adv
    per_token = -torch.min(unclipped, clipped)
    policy = (per_token * weights).sum()
    loss = policy
    kl_value = 0.0
    if beta > 0.0:
        if logp_ref is None:
            raise ValueError("logp_ref is required when beta > 0")
        kl_tok = k3_kl(logp_new, logp_ref.detach())
        loss = loss + beta * (kl_tok * weights).sum()
        kl_value = float((kl_tok.detach() * mask_f).sum() / mask_f.sum().clamp(min=1.0))
    with torch.no_grad():
        on = mask.bool()
        low_hit = int(((ratio < 1.0 - clip_eps) & (adv < 0) & on).sum())
        high_hit = int(((ratio > 1.0 + high_eps) & (adv > 0) & on).sum())
        lr_on = log_ratio.detach()[on]
        lr_sum = float(lr_on.sum()) if n_tokens else 0.0
        lr_sq = float((lr_on**2).sum()) if n_tokens else 0.0
        lr_max = float(lr_on.abs().max()) if n_tokens else 0.0
    if n_tokens == 0:
        # Keep the graph connected so every rank still takes part in the gradient all-reduce.
        loss = logp_new.sum() * 0.0
    return LossOut(
        loss=loss,
        n_tokens=n_tokens,
        clip_frac=(low_hit + high_hit) / n_tokens if n_tokens else 0.0,
        kl=kl_value,
        policy_loss=float(policy.detach()),
        clip_low=low_hit,
        clip_high=high_hit,
        log_ratio_sum=lr_sum,
        log_ratio_sq_sum=lr_sq,
        log_ratio_max=lr_max,
    )


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c passed (Chen et al. 2021, "Evaluating Large Language
    Models Trained on Code"): 1 - C(n - c, k) / C(n, k), computed as a stable running product."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n (got n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def shuffle_within_groups(
    rewards: Sequence[Sequence[float]], valid: Sequence[Sequence[bool]], seed: int
) -> list[list[float]]:
    """Each group's rewards permuted at random among its valid members (invalid ones keep theirs, so
    sandbox_error samples stay out of the update). The control run of a learning measure: every group
    keeps its rewards' mean and spread, but a reward no longer belongs to the completion that earned
    it, so any gain left is not learning from execution."""
    rng = random.Random(seed)
    out: list[list[float]] = []
    for row, ok in zip(rewards, valid, strict=True):
        if len(row) != len(ok):
            raise ValueError(f"a group of {len(row)} rewards has {len(ok)} valid flags")
        slots = [j for j, v in enumerate(ok) if v]
        moved = [row[j] for j in slots]
        rng.shuffle(moved)
        new = list(row)
        for j, r in zip(slots, moved, strict=True):
            new[j] = r
        out.append(new)
    return out
