"""vLLM rollouts, colocated with the trainer (only with ``rollout: vllm``); vllm is imported only here,
and only when such an engine is made."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from workers.trainer.logprobs import completion_logprobs
from workers.trainer.prompting import STOP_STRINGS
from workers.trainer.rollout import GREEDY, Completion, LogitsFn, Prompt, Tokenizer, cut_completion


class VLLMEngine:
    """vLLM rollouts, colocated with the trainer as TRL's and verl's colocate modes run it (chosen only
    by ``rollout: vllm``; nothing here has run against a real vLLM, see docs/trainer.md).

    Each rank holds its own ``vllm.LLM`` in its process (``distributed_executor_backend=
    "external_launcher"``). The policy's weights are pushed into it (``load_weights``, gathered under
    ZeRO-3) before the first sampling and after every optimizer step (``weights_changed``), before the
    next sampling. Prompts go in as token ids from the trainer's own tokenizer; returned ids are cut at
    stop strings exactly as TorchEngine cuts them; π_old is recomputed with the trainer's forward pass
    at the sampling temperature (vLLM's log-probs are, by default, those before temperature)."""

    def __init__(
        self,
        model_path: str,
        *,
        policy: torch.nn.Module,
        logits_fn: LogitsFn,
        tokenizer: Tokenizer,
        device: torch.device,
        max_len: int,
        bos: bool = True,
        hf_tokenizer: str | None = None,
        dtype: str = "bfloat16",
        gpu_memory_utilization: float = 0.3,
        stops: Sequence[str] = STOP_STRINGS,
        seed: int = 0,
        llm: Any = None,
    ) -> None:
        """llm: a ready LLM (tests pass a stand-in); else one is made here, importing vllm."""
        self.policy = policy
        self.logits_fn = logits_fn
        self.tokenizer = tokenizer
        self.device = device
        self.max_len = max_len
        self.bos = bos
        self.stops = tuple(stops)
        self.stale = True  # the LLM holds weights other than the policy's: sync before sampling
        if llm is None:
            from vllm import LLM  # import-guarded: only GPU nodes with vLLM installed have it

            llm = LLM(
                model=model_path,
                tokenizer=hf_tokenizer,
                dtype=dtype,
                gpu_memory_utilization=gpu_memory_utilization,
                enable_prefix_caching=True,
                distributed_executor_backend="external_launcher",
                seed=seed,
            )
        self.llm: Any = llm

    def weights_changed(self) -> None:
        """The policy took an optimizer step (or loaded a checkpoint): sync before the next sampling."""
        self.stale = True

    def sync_weights(self) -> None:
        """Push the policy's current weights into vLLM's model, one tensor at a time; a ZeRO-3
        partitioned parameter is gathered for the call (every rank takes part, as in every
        generate)."""
        target = vllm_model(self.llm)
        # Every name a parameter has (a tied output head included): under ZeRO-3 state_dict holds only
        # this rank's shard, so each is gathered through its parameter.
        params = dict(self.policy.named_parameters(remove_duplicate=False))
        for name, tensor in self.policy.state_dict().items():
            param = params.get(name)
            if param is not None and hasattr(param, "ds_id"):
                import deepspeed

                with deepspeed.zero.GatheredParameters([param]):
                    target.load_weights([(name, param.data.detach())])
            else:
                target.load_weights([(name, tensor.detach())])
        if hasattr(self.llm, "reset_prefix_cache"):
            self.llm.reset_prefix_cache()  # cached prefixes were computed by the old weights
        self.stale = False

    def encode_prompt(self, prompt: Prompt, max_new_tokens: int) -> list[int]:
        ids = self.tokenizer.encode(prompt, bos=self.bos) if isinstance(prompt, str) else list(prompt)
        return ids[-max(1, self.max_len - max_new_tokens) :]

    def generate(
        self,
        prompts: Sequence[Prompt],
        n: int,
        max_new_tokens: int,
        temperature: float,
        seed: int,
        stops: Sequence[Sequence[str]] | None = None,
    ) -> list[list[Completion]]:
        if self.stale:
            self.sync_weights()
        from_vllm = self._sampling_params(n, max_new_tokens, temperature, seed)
        per_prompt = [tuple(s) for s in stops] if stops is not None else [self.stops] * len(prompts)
        if len(per_prompt) != len(prompts):
            raise ValueError(f"{len(per_prompt)} stop lists for {len(prompts)} prompts")
        rows = [self.encode_prompt(p, max_new_tokens) for p in prompts]
        params = [from_vllm(list(stop) or None) for stop in per_prompt]
        outputs = (
            self.llm.generate([{"prompt_token_ids": r} for r in rows], params, use_tqdm=False) if rows else []
        )
        eos = self.tokenizer.eos_id
        cut: list[list[tuple[list[int], str]]] = []
        for out, row in zip(outputs, per_prompt, strict=True):
            group = []
            for c in out.outputs:
                ids = [int(t) for t in c.token_ids]
                group.append(cut_completion(self.tokenizer, ids, row, eos=eos, max_new_tokens=max_new_tokens))
            # vLLM refuses n > 1 with greedy sampling: its one completion is each of the n.
            cut.append(group * n if temperature == GREEDY else group)
        logprobs = self._recompute(rows, cut, temperature if temperature != GREEDY else 1.0)
        results: list[list[Completion]] = []
        for p, group in enumerate(cut):
            done = []
            for j, (ids, reason) in enumerate(group):
                text_ids = ids[:-1] if reason == "eos" else ids
                done.append(
                    Completion(
                        text=self.tokenizer.decode(text_ids),
                        token_ids=tuple(ids),
                        logprobs=tuple(logprobs[p][j]),
                        finish_reason=reason,
                    )
                )
            results.append(done)
        return results

    def _sampling_params(self, n: int, max_new_tokens: int, temperature: float, seed: int) -> Any:
        from vllm import SamplingParams

        def params(stop: list[str] | None) -> Any:
            # vLLM stops at the stop strings too (it would otherwise sample on); the ids it returns are
            # cut again here, the way TorchEngine cuts them. No log-probs asked: π_old is recomputed.
            # temperature 0 is vLLM's greedy sampling ("Zero means greedy sampling", SamplingParams),
            # which takes n = 1 only.
            return SamplingParams(
                n=1 if temperature == GREEDY else n,
                max_tokens=max_new_tokens,
                temperature=temperature,
                seed=seed,
                stop=stop,
            )

        return params

    @torch.no_grad()
    def _recompute(
        self, rows: list[list[int]], cut: list[list[tuple[list[int], str]]], temperature: float
    ) -> list[list[list[float]]]:
        """π_old: the sampled tokens' log-probs under the policy at the sampling temperature, in one
        forward (a rank with nothing sampled runs a one-token one, in step with ZeRO-3's gathers)."""
        prompt_rows = [rows[p] for p, group in enumerate(cut) for _ in group]
        comp_rows = [ids for group in cut for ids, _ in group]
        if not comp_rows:
            prompt_rows, comp_rows = [[self.tokenizer.pad_id]], [[self.tokenizer.pad_id]]
        logp, _, _ = completion_logprobs(
            self.logits_fn,
            prompt_rows,
            comp_rows,
            pad_id=self.tokenizer.pad_id,
            temperature=temperature,
            device=self.device,
        )
        flat: list[list[float]] = logp.float().cpu().tolist()
        out: list[list[list[float]]] = []
        k = 0
        for group in cut:
            out.append([flat[k + j][: len(ids)] for j, (ids, _) in enumerate(group)])
            k += len(group)
        return out


def vllm_model(llm: Any) -> Any:
    """The torch model inside a colocated vLLM LLM (the path TRL's colocate mode loads weights into;
    vLLM's V1 worker keeps its model runner one level deeper)."""
    worker = llm.llm_engine.model_executor.driver_worker
    runner = getattr(worker, "model_runner", None) or worker.worker.model_runner
    return runner.model
