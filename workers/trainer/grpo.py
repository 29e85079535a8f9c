"""GRPO maths: group-relative advantages, the clipped token-level policy loss and the k3 KL estimate."""

from __future__ import annotations

from dataclasses import dataclass

import torch

ADV_EPS = 1e-4


def group_advantages(rewards: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """rewards, valid: (G, n). Returns (advantages (G, n), zero_std (G,) bool).

    Advantage = (r - mean) / (std + 1e-4) over the valid members of each group (population std).
    Invalid members (sandbox_error) get advantage 0. A group whose valid rewards all agree (or with
    fewer than two valid members) carries no signal: its advantages are 0 and it is flagged zero_std.
    """
    valid_f = valid.to(rewards.dtype)
    count = valid_f.sum(dim=1, keepdim=True)
    safe = count.clamp(min=1.0)
    mean = (rewards * valid_f).sum(dim=1, keepdim=True) / safe
    var = (((rewards - mean) ** 2) * valid_f).sum(dim=1, keepdim=True) / safe
    std = var.sqrt()
    zero_std = (std.squeeze(1) == 0) | (count.squeeze(1) < 2)
    adv = (rewards - mean) / (std + ADV_EPS) * valid_f
    adv = torch.where(zero_std.unsqueeze(1), torch.zeros_like(adv), adv)
    return adv, zero_std


def k3_kl(logp_new: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(new || ref): exp(ref - new) - (ref - new) - 1 (always >= 0)."""
    d = logp_ref - logp_new
    return torch.exp(d) - d - 1.0


@dataclass(frozen=True)
class LossOut:
    loss: torch.Tensor  # scalar, differentiable
    n_tokens: int
    clip_frac: float
    kl: float
    policy_loss: float


def grpo_loss(
    logp_new: torch.Tensor,
    logp_old: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_eps: float,
    beta: float = 0.0,
    logp_ref: torch.Tensor | None = None,
) -> LossOut:
    """Token-level clipped GRPO loss.

    logp_new, logp_old, mask, logp_ref: (B, T); advantages: (B,). The loss is averaged over every
    unmasked completion token in the batch. clip_frac is the share of tokens where the clipped branch
    is the active one (the gradient through the ratio is zero there).
    """
    mask_f = mask.to(logp_new.dtype)
    n_tokens = int(mask_f.sum().item())
    denom = mask_f.sum().clamp(min=1.0)
    ratio = torch.exp(logp_new - logp_old.detach())
    adv = advantages.detach().unsqueeze(1).to(logp_new.dtype)
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv
    per_token = -torch.min(unclipped, clipped)
    policy = (per_token * mask_f).sum() / denom
    loss = policy
    kl_value = 0.0
    if beta > 0.0:
        if logp_ref is None:
            raise ValueError("logp_ref is required when beta > 0")
        kl_tok = k3_kl(logp_new, logp_ref.detach())
        kl = (kl_tok * mask_f).sum() / denom
        loss = loss + beta * kl
        kl_value = float(kl.detach())
    with torch.no_grad():
        is_clipped = ((ratio < 1.0 - clip_eps) & (adv < 0)) | ((ratio > 1.0 + clip_eps) & (adv > 0))
        clip_frac = float((is_clipped.to(mask_f.dtype) * mask_f).sum() / denom)
    if n_tokens == 0:
        # Keep the graph connected so every rank still takes part in the gradient all-reduce.
        loss = logp_new.sum() * 0.0
    return LossOut(
        loss=loss, n_tokens=n_tokens, clip_frac=clip_frac, kl=kl_value, policy_loss=float(policy.detach())
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
