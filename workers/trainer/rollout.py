"""Rollout engines: sample n completions per prompt with their sampling log-probabilities.

``TorchEngine`` samples with the training model itself (a simple KV-less loop, fine at the tiny size
used on CPU). ``VLLMEngine`` uses vLLM on GPU nodes; vllm is imported lazily and only when used.
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
        prompts: list[str],
        n: int,
        max_new_tokens: int,
        temperature: float,
        seed: int,
        stops: Sequence[Sequence[str]] | None = None,
    ) -> list[list[Completion]]:
        """n samples per prompt; stops[i]: where prompt i's samples end besides EOS (None: the
        engine's own stop strings)."""
        ...


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

    def encode_prompt(self, prompt: str, max_new_tokens: int) -> list[int]:
        ids = self.tokenizer.encode(prompt, bos=self.bos)
        budget = max(1, self.max_len - max_new_tokens)
        return ids[-budget:]

    @torch.no_grad()
    def generate(
        self,
        prompts: list[str],
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
            logits = self.logits_fn(ids, mask)[:, -1, :].float() / temperature
            logp = torch.log_softmax(logits, dim=-1)
            probs = logp.exp().cpu()
            nxt = torch.multinomial(probs, 1, generator=gen).squeeze(1)
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


class VLLMEngine:
    """vLLM rollouts for HF models on GPU nodes. Not exercised in CI (needs vllm and a GPU)."""

    def __init__(
        self,
        model_path: str,
        *,
        tokenizer: str | None = None,
        dtype: str = "bfloat16",
        gpu_memory_utilization: float = 0.3,
        stops: Sequence[str] = STOP_STRINGS,
        encode: Callable[[str], list[int]] | None = None,
    ) -> None:
        from vllm import LLM  # imported lazily: only GPU nodes have it

        self.stops = tuple(stops)
        # Prompts go in as the trainer's own token ids, so the update scores the very tokens sampled
        # from (vLLM's text path would add a BOS that a chat template already wrote).
        self.encode = encode
        self.llm: Any = LLM(
            model=model_path,
            tokenizer=tokenizer,
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            enable_prefix_caching=True,
        )

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Push the policy's current weights into the vLLM workers."""
        state = {k: v.detach() for k, v in model.state_dict().items()}
        engine = self.llm.llm_engine
        runner = engine.model_executor.driver_worker.worker.model_runner
        runner.model.load_weights(state.items())
        if hasattr(engine, "reset_prefix_cache"):
            engine.reset_prefix_cache()

    def generate(
        self,
        prompts: list[str],
        n: int,
        max_new_tokens: int,
        temperature: float,
        seed: int,
        stops: Sequence[Sequence[str]] | None = None,
    ) -> list[list[Completion]]:
        from vllm import SamplingParams

        per_prompt = [list(s) for s in stops] if stops is not None else [list(self.stops)] * len(prompts)
        params = [
            SamplingParams(
                n=n,
                max_tokens=max_new_tokens,
                temperature=temperature,
                seed=seed,
                logprobs=0,
                stop=stop or None,
            )
            for stop in per_prompt
        ]
        inputs: list[Any] = (
            [{"prompt_token_ids": self.encode(p)} for p in prompts] if self.encode else list(prompts)
        )
        outputs = self.llm.generate(inputs, params, use_tqdm=False)
        results: list[list[Completion]] = []
        for out in outputs:
            group = []
            for c in out.outputs:
                ids = tuple(int(t) for t in c.token_ids)
                lps = tuple(float(step[t].logprob) for step, t in zip(c.logprobs or [], ids, strict=False))
                reason = "length" if c.finish_reason == "length" else ("stop" if c.stop_reason else "eos")
                group.append(Completion(text=c.text, token_ids=ids, logprobs=lps, finish_reason=reason))
            results.append(group)
        return results
