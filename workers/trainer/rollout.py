"""Rollout engines: sample n completions per prompt with their sampling log-probabilities.

``TorchEngine`` samples with the training model itself (a simple KV-less loop, the tiny model's path);
``CachedEngine`` is its counterpart for Hugging Face models, with a KV cache. ``VLLMEngine`` (only with
``rollout: vllm``, in vllm_rollout.py) uses a colocated vLLM.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from workers.trainer.prompting import STOP_STRINGS


class Tokenizer(Protocol):
    @property
    def eos_id(self) -> int: ...

    @property
    def pad_id(self) -> int: ...

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


LogitsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(ids (B, T), attention mask (B, T) bool) -> logits (B, T, V)."""

Prompt = str | Sequence[int]
"""A prompt's text, encoded by the engine, or its token ids taken as they are: a multi-turn episode's
context (workers/trainer/episodes.py) is never re-tokenized, so the tokens the model sampled are the
ones it is trained on."""


@dataclass(frozen=True)
class Completion:
    text: str
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    finish_reason: str  # "eos" | "stop" | "length"

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


class RolloutEngine(Protocol):
    def generate(
        self,
        prompts: Sequence[Prompt],
        n: int,
        max_new_tokens: int,
        temperature: float,
        seed: int,
        stops: Sequence[Sequence[str]] | None = None,
    ) -> list[list[Completion]]:
        """n samples per prompt; stops[i]: where prompt i's samples end besides EOS (None: the
        engine's own stop strings)."""
        ...


GREEDY = 0.0
"""The temperature that asks an engine for greedy decoding: each token is the argmax of the model's
logits, no random number is drawn, and the log-prob reported is the token's under the model's own
distribution (temperature 1). vLLM reads temperature 0 the same way."""


def token_logp(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Log-softmax of the last position's logits at `temperature` (at GREEDY: the model's own, at 1)."""
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0: greedy), got {temperature}")
    return torch.log_softmax(
        logits.float() / temperature if temperature != GREEDY else logits.float(), dim=-1
    )


def cut_at_stop(
    tokenizer: Tokenizer, ids: Sequence[int], stops: Sequence[str] = STOP_STRINGS
) -> tuple[int, str] | None:
    """If the decoded ids contain a stop string, return (tokens to keep, their text)."""
    text = tokenizer.decode(ids)
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    if not hits:
        return None
    cut = min(hits)
    keep = 0
    for k in range(1, len(ids) + 1):
        if len(tokenizer.decode(ids[:k])) > cut:
            break
        keep = k
    return keep, tokenizer.decode(ids[:keep])


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r) :] = torch.tensor(list(r), dtype=torch.long)
            mask[i, width - len(r) :] = True
    return ids, mask


class TorchEngine:
    def __init__(
        self,
        logits_fn: LogitsFn,
        tokenizer: Tokenizer,
        *,
        device: torch.device,
        max_len: int,
        bos: bool = True,
        stops: Sequence[str] = STOP_STRINGS,
        all_done: Callable[[bool], bool] | None = None,
    ) -> None:
        """all_done: (this rank has finished) -> whether every rank has. Given under ZeRO-3, where each
        forward gathers the weights with the other ranks: they must all run the same number of
        forwards, so a rank that finished (or has no prompts) keeps stepping until the last one is done."""
        self.all_done = all_done
        self.logits_fn = logits_fn
        self.tokenizer = tokenizer
        self.device = device
        self.max_len = max_len
        self.bos = bos
        self.stops = tuple(stops)

    def encode_prompt(self, prompt: Prompt, max_new_tokens: int) -> list[int]:
        ids = self.tokenizer.encode(prompt, bos=self.bos) if isinstance(prompt, str) else list(prompt)
        budget = max(1, self.max_len - max_new_tokens)
        return ids[-budget:]

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[Prompt],
        n: int,
        max_new_tokens: int,
        temperature: float,
        seed: int,
        stops: Sequence[Sequence[str]] | None = None,
    ) -> list[list[Completion]]:
        if not prompts and self.all_done is None:
            return []
        per_prompt = [tuple(s) for s in stops] if stops is not None else [self.stops] * len(prompts)
        if len(per_prompt) != len(prompts):
            raise ValueError(f"{len(per_prompt)} stop lists for {len(prompts)} prompts")
        row_stops = [s for s in per_prompt for _ in range(n)]
        gen = torch.Generator(device="cpu").manual_seed(seed)
        rows = [self.encode_prompt(p, max_new_tokens) for p in prompts for _ in range(n)]
        finish: list[str | None] = [None] * len(rows)
        if not rows:  # lock-step with the other ranks: one dummy row, finished from the start
            rows, finish = [[self.tokenizer.pad_id]], ["length"]
        ids, mask = left_pad(rows, self.tokenizer.pad_id)
        ids, mask = ids.to(self.device), mask.to(self.device)
        batch = len(rows)
        out_ids: list[list[int]] = [[] for _ in range(batch)]
        out_lp: list[list[float]] = [[] for _ in range(batch)]
        eos = self.tokenizer.eos_id
        for _ in range(max_new_tokens):
            logp = token_logp(self.logits_fn(ids, mask)[:, -1, :], temperature)
            if temperature == GREEDY:
                nxt = logp.argmax(dim=-1).cpu()
            else:
                nxt = torch.multinomial(logp.exp().cpu(), 1, generator=gen).squeeze(1)
            chosen = logp.gather(1, nxt.to(logp.device).unsqueeze(1)).squeeze(1).cpu()
            alive = torch.tensor([f is None for f in finish], dtype=torch.bool)
            for i in range(batch):
                if finish[i] is not None:
                    continue
                tok = int(nxt[i])
                out_ids[i].append(tok)
                out_lp[i].append(float(chosen[i]))
                if tok == eos:
                    finish[i] = "eos"
                    continue
                row = row_stops[i]
                cut = cut_at_stop(self.tokenizer, out_ids[i][-16:], row) if row else None
                if cut is not None:
                    full = cut_at_stop(self.tokenizer, out_ids[i], row)
                    assert full is not None
                    keep = full[0]
                    out_ids[i], out_lp[i] = out_ids[i][:keep], out_lp[i][:keep]
                    finish[i] = "stop"
            step_ids = torch.where(alive, nxt, torch.full_like(nxt, self.tokenizer.pad_id)).to(self.device)
            ids = torch.cat([ids, step_ids.unsqueeze(1)], dim=1)
            mask = torch.cat([mask, alive.to(self.device).unsqueeze(1)], dim=1)
            done = all(f is not None for f in finish)
            if self.all_done(done) if self.all_done is not None else done:
                break
        results: list[list[Completion]] = []
        for p in range(len(prompts)):
            group: list[Completion] = []
            for j in range(n):
                i = p * n + j
                toks = out_ids[i]
                text_ids = toks[:-1] if toks and toks[-1] == eos else toks
                group.append(
                    Completion(
                        text=self.tokenizer.decode(text_ids),
                        token_ids=tuple(toks),
                        logprobs=tuple(out_lp[i]),
                        finish_reason=finish[i] or "length",
                    )
                )
            results.append(group)
        return results


HFForward = Callable[..., Any]
"""A transformers causal LM (or the DeepSpeed engine around one), called with keyword arguments
(input_ids, attention_mask, position_ids, past_key_values, use_cache) -> an output with .logits and
.past_key_values."""

STOP_CHECK_EVERY = 8  # tokens sampled between two looks at the decoded text for stop strings
STOP_WINDOW = 16  # tokens the per-token check decodes (TorchEngine's cut_at_stop on the last 16)


class CachedEngine(TorchEngine):
    """TorchEngine's sampler for Hugging Face models with a KV cache: the prompt is run once, then one
    token per forward. Sampling and the sampled distribution's log-probs stay on the model's device; the
    decoded text is looked at for stop strings only every STOP_CHECK_EVERY tokens, and where it shows
    one the per-token check is replayed over those tokens, so a completion is cut exactly where
    TorchEngine cuts it. With the same seed on the same device it draws the same random numbers in the
    same order as TorchEngine (one multinomial over the whole batch per token, finished rows included)."""

    def __init__(
        self,
        model: HFForward,
        tokenizer: Tokenizer,
        *,
        device: torch.device,
        max_len: int,
        bos: bool = True,
        stops: Sequence[str] = STOP_STRINGS,
        all_done: Callable[[bool], bool] | None = None,
        module: torch.nn.Module | None = None,
    ) -> None:
        """module: what is switched to eval mode while sampling (a transformers model refuses a cache
        under gradient checkpointing in training mode); its mode is restored afterwards."""
        super().__init__(
            _no_logits_fn, tokenizer, device=device, max_len=max_len, bos=bos, stops=stops, all_done=all_done
        )
        self.model = model
        self.module = module
        self._cache_name = "past_key_values"

    def _forward(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
    ) -> tuple[torch.Tensor, Any]:
        """One forward through the cache; the first (cache None) fills it with the prompts. Recent
        transformers name the cache `cache` (`past_key_values` before, deprecated since): whichever
        field the first answer fills is the name used from then on."""
        kwargs: dict[str, Any] = {}
        if cache is not None:
            kwargs[self._cache_name] = cache
        out = self.model(
            input_ids=ids, attention_mask=mask.long(), position_ids=positions, use_cache=True, **kwargs
        )
        if cache is None:
            self._cache_name = "cache" if getattr(out, "cache", None) is not None else "past_key_values"
        logits: torch.Tensor = out.logits[:, -1, :]
        return logits, getattr(out, self._cache_name)

    def _stop_at(self, toks: list[int], start: int, end: int, row: Sequence[str]) -> int | None:
        """The first k in (start, end] at which TorchEngine's per-token check fires on toks[:k]."""
        for k in range(start + 1, end + 1):
            if cut_at_stop(self.tokenizer, toks[max(0, k - STOP_WINDOW) : k], row) is not None:
                return k
        return None

    @torch.no_grad()
    def generate(
        self,
        prompts: Sequence[Prompt],
        n: int,
        max_new_tokens: int,
        temperature: float,
        seed: int,
        stops: Sequence[Sequence[str]] | None = None,
    ) -> list[list[Completion]]:
        if not prompts and self.all_done is None:
            return []
        was_training = self.module.training if self.module is not None else False
        if self.module is not None:
            self.module.eval()
        try:
            return self._generate(prompts, n, max_new_tokens, temperature, seed, stops)
        finally:
            if self.module is not None and was_training:
                self.module.train()

    def _generate(
        self,
        prompts: Sequence[Prompt],
        n: int,
        max_new_tokens: int,
        temperature: float,
        seed: int,
        stops: Sequence[Sequence[str]] | None,
    ) -> list[list[Completion]]:
        per_prompt = [tuple(s) for s in stops] if stops is not None else [self.stops] * len(prompts)
        if len(per_prompt) != len(prompts):
            raise ValueError(f"{len(per_prompt)} stop lists for {len(prompts)} prompts")
        row_stops = [s for s in per_prompt for _ in range(n)]
        rows = [self.encode_prompt(p, max_new_tokens) for p in prompts for _ in range(n)]
        dummy = not rows
        if dummy:  # lock-step with the other ranks: one dummy row, finished from the start
            rows, row_stops = [[self.tokenizer.pad_id]], [()]
        batch = len(rows)
        gen = torch.Generator(device=self.device).manual_seed(seed)
        ids, mask = left_pad(rows, self.tokenizer.pad_id)
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        next_pos = positions[:, -1:] + 1
        eos = self.tokenizer.eos_id
        toks = torch.full(
            (batch, max_new_tokens), self.tokenizer.pad_id, dtype=torch.long, device=self.device
        )
        lps = torch.zeros((batch, max_new_tokens), dtype=torch.float32, device=self.device)
        eos_at = torch.full((batch,), max_new_tokens, dtype=torch.long, device=self.device)
        stop_keep: dict[int, int] = {}  # row -> tokens kept, for rows cut at a stop string
        stopped = torch.zeros(batch, dtype=torch.bool, device=self.device)
        if dummy:
            stopped[:] = True
        checked = 0  # tokens already looked at for stop strings
        steps = 0
        cache: Any = None
        step_ids, step_mask, step_pos = ids, mask, positions
        for t in range(max_new_tokens):
            logits, cache = self._forward(step_ids, step_mask, step_pos, cache)
            logp = token_logp(logits, temperature)
            if temperature == GREEDY:
                nxt = logp.argmax(dim=-1)
            else:
                nxt = torch.multinomial(logp.exp(), 1, generator=gen).squeeze(1)
            toks[:, t] = nxt
            lps[:, t] = logp.gather(1, nxt.unsqueeze(1)).squeeze(1)
            eos_at = torch.where((nxt == eos) & (eos_at == max_new_tokens), t, eos_at)
            steps = t + 1
            if steps - checked >= STOP_CHECK_EVERY or steps == max_new_tokens:
                self._check_stops(toks, eos_at, checked, steps, row_stops, stop_keep, stopped)
                checked = steps
            finished = stopped | (eos_at < max_new_tokens)
            done = bool(finished.all())
            if self.all_done(done) if self.all_done is not None else done:
                break
            step_ids = nxt.unsqueeze(1)
            mask = torch.cat([mask, torch.ones((batch, 1), dtype=torch.bool, device=self.device)], dim=1)
            step_mask, step_pos = mask, next_pos
            next_pos = next_pos + 1
        if checked < steps:
            self._check_stops(toks, eos_at, checked, steps, row_stops, stop_keep, stopped)
        if dummy:
            return []
        tok_rows: list[list[int]] = toks[:, :steps].tolist()
        lp_rows: list[list[float]] = lps[:, :steps].tolist()
        eos_rows: list[int] = eos_at.tolist()
        results: list[list[Completion]] = []
        for p in range(len(prompts)):
            group: list[Completion] = []
            for j in range(n):
                i = p * n + j
                if i in stop_keep:
                    keep, reason = stop_keep[i], "stop"
                elif eos_rows[i] < max_new_tokens:
                    keep, reason = eos_rows[i] + 1, "eos"
                else:
                    keep, reason = steps, "length"
                row_toks = tok_rows[i][:keep]
                text_ids = row_toks[:-1] if reason == "eos" else row_toks
                group.append(
                    Completion(
                        text=self.tokenizer.decode(text_ids),
                        token_ids=tuple(row_toks),
                        logprobs=tuple(lp_rows[i][:keep]),
                        finish_reason=reason,
                    )
                )
            results.append(group)
        return results

    def _check_stops(
        self,
        toks: torch.Tensor,
        eos_at: torch.Tensor,
        start: int,
        end: int,
        row_stops: Sequence[Sequence[str]],
        stop_keep: dict[int, int],
        stopped: torch.Tensor,
    ) -> None:
        """Look at tokens start..end of every unfinished row with stop strings: one decode of the new
        tokens (with the window before them) per row; where it shows a stop, find the token at which
        the per-token check fires and cut there, as TorchEngine does."""
        candidates = [i for i, row in enumerate(row_stops) if row and i not in stop_keep]
        if not candidates:
            return
        eos_rows: list[int] = eos_at.tolist()
        window: list[list[int]] = toks[:, max(0, start - STOP_WINDOW + 1) : end].tolist()
        lo = max(0, start - STOP_WINDOW + 1)
        for i in candidates:
            if eos_rows[i] < start:
                continue  # ended at EOS before these tokens
            last = min(end, eos_rows[i])  # an EOS token itself is never checked for a stop
            text = self.tokenizer.decode(window[i][: last - lo])
            if not any(s in text for s in row_stops[i]):
                continue
            row_toks: list[int] = toks[i, :last].tolist()
            k = self._stop_at(row_toks, start, last, row_stops[i])
            if k is None:
                continue
            full = cut_at_stop(self.tokenizer, row_toks[:k], row_stops[i])
            assert full is not None
            stop_keep[i] = full[0]
            stopped[i] = True


def _no_logits_fn(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    raise RuntimeError("CachedEngine samples through its model's cache, not a LogitsFn")


def cut_completion(
    tokenizer: Tokenizer, ids: list[int], stops: Sequence[str], *, eos: int, max_new_tokens: int
) -> tuple[list[int], str]:
    """(token ids kept, finish reason) for ids sampled elsewhere, as TorchEngine would have ended them:
    at the first EOS, or at the first token where its per-token stop check fires, cut by cut_at_stop."""
    end = ids.index(eos) if eos in ids else len(ids)
    if stops:
        for k in range(1, end + 1):
            if cut_at_stop(tokenizer, ids[max(0, k - STOP_WINDOW) : k], stops) is not None:
                full = cut_at_stop(tokenizer, ids[:k], stops)
                assert full is not None
                return ids[: full[0]], "stop"
    if end < len(ids):
        return ids[: end + 1], "eos"
    if len(ids) >= max_new_tokens:
        return ids, "length"
    return [*ids, eos], "eos"  # ended at EOS without returning it: the update scores the ending too
