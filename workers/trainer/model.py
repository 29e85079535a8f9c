"""A tiny GPT-style causal LM in plain torch, built and seeded in code (no downloaded weights)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=-1)
        shape = (b, t, self.n_heads, c // self.n_heads)
        q, k, v = (z.view(shape).transpose(1, 2) for z in (q, k, v))
        if attn_mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        out: torch.Tensor = x + self.mlp(self.ln2(x))
        return out


class TinyCausalLM(nn.Module):
    """Embedding + learned positions, pre-norm blocks, final norm, output head tied to the embedding."""

    def __init__(self, vocab_size: int, d_model: int, n_layers: int, n_heads: int, max_len: int) -> None:
        super().__init__()
        self.max_len = max_len
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_heads) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.head.weight = self.tok.weight
        # train.gradient_checkpointing: each block's activations are recomputed in the backward pass
        # instead of kept (only while training with gradients: sampling keeps nothing anyway).
        self.gradient_checkpointing = False
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, ids: torch.Tensor, pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """ids: (B, T) -> logits (B, T, V). pad_mask (B, T) True for real tokens (left padding allowed)."""
        t = ids.shape[1]
        if t > self.max_len:
            raise ValueError(f"sequence length {t} exceeds model.max_len {self.max_len}")
        if pad_mask is None:
            positions = torch.arange(t, device=ids.device).unsqueeze(0)
            attn_mask = None
        else:
            positions = (pad_mask.long().cumsum(-1) - 1).clamp(min=0)
            causal = torch.ones(t, t, dtype=torch.bool, device=ids.device).tril()
            attn_mask = causal.unsqueeze(0) & pad_mask.unsqueeze(1)  # (B, T, T)
            # A fully padded query row would give NaN: let it attend to itself.
            attn_mask = attn_mask | torch.eye(t, dtype=torch.bool, device=ids.device).unsqueeze(0)
            attn_mask = attn_mask.unsqueeze(1)
        x = self.tok(ids) + self.pos(positions)
        recompute = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for block in self.blocks:
            # Non-reentrant: what torch recommends, and correct when the block's input needs no grad.
            x = checkpoint(block, x, attn_mask, use_reentrant=False) if recompute else block(x, attn_mask)
        logits: torch.Tensor = self.head(self.ln_f(x))
        return logits


def build_tiny_model(
    vocab_size: int, *, d_model: int, n_layers: int, n_heads: int, max_len: int, seed: int
) -> TinyCausalLM:
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        return TinyCausalLM(vocab_size, d_model, n_layers, n_heads, max_len)
    finally:
        torch.random.set_rng_state(gen_state)
