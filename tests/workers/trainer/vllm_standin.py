"""A stand-in for vLLM's offline API, with its method names, for tests only: `LLM.generate(prompts,
sampling_params, use_tqdm=...)` with `{"prompt_token_ids": [...]}` prompts, answers holding
`.outputs[i].token_ids`; `llm.llm_engine.model_executor.driver_worker.model_runner.model.load_weights(
iterable of (name, tensor))`; `llm.reset_prefix_cache()`; `vllm.SamplingParams(**kwargs)`."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import torch


class SamplingParams:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


def install_vllm_module(monkeypatch: Any) -> None:
    """Make `import vllm` and `from vllm import SamplingParams` work with the stand-in."""
    module = types.ModuleType("vllm")
    module.SamplingParams = SamplingParams  # type: ignore[attr-defined]
    module.LLM = StandInLLM  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)


class _Model:
    def __init__(self, owner: StandInLLM) -> None:
        self.owner = owner

    def load_weights(self, weights: Any) -> None:
        if not self.owner.calls or self.owner.calls[-1] != "sync":
            self.owner.calls.append("sync")
        for name, tensor in weights:
            self.owner.loaded[name] = tensor.detach().clone()


class StandInLLM:
    """completions(prompt token ids, n) -> the n token-id lists it "samples"."""

    def __init__(
        self, policy: torch.nn.Module, completions: Callable[[list[int], int], list[list[int]]]
    ) -> None:
        self.completions = completions
        self.calls: list[str] = []
        self.loaded: dict[str, torch.Tensor] = {}
        self.prompts: list[list[int]] = []
        self.params: list[Any] = []
        self.prefix_resets = 0
        runner = SimpleNamespace(model=_Model(self))
        self.llm_engine = SimpleNamespace(
            model_executor=SimpleNamespace(driver_worker=SimpleNamespace(model_runner=runner))
        )

    def reset_prefix_cache(self) -> None:
        self.prefix_resets += 1

    def generate(
        self, prompts: list[dict[str, list[int]]], params: list[Any], use_tqdm: bool = True
    ) -> list[Any]:
        self.calls.append("generate")
        outs = []
        for prompt, p in zip(prompts, params, strict=True):
            ids = list(prompt["prompt_token_ids"])
            self.prompts.append(ids)
            self.params.append(p)
            outs.append(
                SimpleNamespace(
                    outputs=[SimpleNamespace(token_ids=c) for c in self.completions(ids, p.kwargs["n"])]
                )
            )
        return outs

    def loaded_equals(self, policy: torch.nn.Module) -> bool:
        state = policy.state_dict()
        return set(state) == set(self.loaded) and all(torch.equal(state[k], self.loaded[k]) for k in state)
