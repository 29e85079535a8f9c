"""The rollout engines for Hugging Face models: the cached torch sampler against today's loop and the
trainer's forward pass, and the vLLM engine's weight sync and token handling against a stand-in that
exposes vLLM's method names (tests/workers/trainer/vllm_standin.py)."""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.workers.trainer.vllm_standin import StandInLLM, install_vllm_module
from workers.spec import TrainConfig
from workers.trainer.engine import rollout_engine
from workers.trainer.logprobs import completion_logprobs, tiny_logits_fn
from workers.trainer.loop import Trainer
from workers.trainer.rollout import CachedEngine, TorchEngine, cut_at_stop, cut_completion
from workers.trainer.spec import ModelSpec, ResourcesSpec, RunSpec, SandboxSpec
from workers.trainer.tokenizer import HFTokenizer
from workers.trainer.vllm_rollout import VLLMEngine

CPU = torch.device("cpu")
PROMPTS = ["def add(a, b):\n", 'def is_even(n):\n    """Return True if n is even."""\n']
EOS_BOOST = 4.0  # added to EOS's logit, so that some samples of the random-weight model end at EOS


class Boosted(torch.nn.Module):
    """The model with EOS made likelier: the same change seen by every engine and by the rescoring."""

    def __init__(self, model: torch.nn.Module, eos: int) -> None:
        super().__init__()
        self.model, self.eos = model, eos

    def forward(self, **kwargs: Any) -> Any:
        out = self.model(**kwargs)
        out.logits[..., self.eos] += EOS_BOOST
        return out


@pytest.fixture(scope="module")
def hf(tiny_hf_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_hf_dir, local_files_only=True, dtype=torch.float32)
    tok = HFTokenizer(AutoTokenizer.from_pretrained(tiny_hf_dir, local_files_only=True))
    return Boosted(model.eval(), tok.eos_id), tok


def _engines(model, tok, max_len: int = 512) -> tuple[TorchEngine, CachedEngine]:
    today = TorchEngine(tiny_logits_fn(model, hf=True), tok, device=CPU, max_len=max_len)
    cached = CachedEngine(model, tok, device=CPU, max_len=max_len, module=model)
    return today, cached


def test_cached_engine_logprobs_are_the_trainers_at_the_sampling_temperature(hf):
    model, tok = hf
    _, cached = _engines(model, tok)
    groups = cached.generate(PROMPTS, n=4, max_new_tokens=24, temperature=0.7, seed=3, stops=[("e",), ()])

    rows = [(p, c) for p, g in zip(PROMPTS, groups, strict=True) for c in g]
    with torch.no_grad():
        logp, mask, _ = completion_logprobs(
            tiny_logits_fn(model, hf=True),
            [cached.encode_prompt(p, 24) for p, _ in rows],
            [list(c.token_ids) for _, c in rows],
            pad_id=tok.pad_id,
            temperature=0.7,
            device=CPU,
        )
    for i, (_, c) in enumerate(rows):
        assert len(c.logprobs) == len(c.token_ids) == int(mask[i].sum())
        assert torch.allclose(logp[i, : len(c.logprobs)], torch.tensor(c.logprobs), atol=1e-4)


def test_cached_engine_samples_the_same_tokens_as_todays_loop_and_ends_them_the_same_way(hf):
    model, tok = hf
    today, cached = _engines(model, tok)
    stops = [("e",), ("\n", "ab"), ()]
    prompts = [*PROMPTS, "x = "]
    a = today.generate(prompts, n=6, max_new_tokens=20, temperature=1.0, seed=11, stops=stops)
    b = cached.generate(prompts, n=6, max_new_tokens=20, temperature=1.0, seed=11, stops=stops)

    flat_a = [c for g in a for c in g]
    flat_b = [c for g in b for c in g]
    assert [(c.token_ids, c.text, c.finish_reason) for c in flat_b] == [
        (c.token_ids, c.text, c.finish_reason) for c in flat_a
    ]
    for x, y in zip(flat_a, flat_b, strict=True):
        assert torch.allclose(torch.tensor(x.logprobs), torch.tensor(y.logprobs), atol=1e-4)
    assert {c.finish_reason for c in flat_b} == {"eos", "stop", "length"}
    for c, row in zip(flat_b, [s for s in stops for _ in range(6)], strict=True):
        if c.finish_reason == "eos":
            assert c.token_ids[-1] == tok.eos_id
        if c.finish_reason == "stop":
            assert cut_at_stop(tok, list(c.token_ids), row) is None  # cut just before the stop string


def test_cached_engine_stops_early_once_every_row_has_finished(hf):
    model, tok = hf
    _, cached = _engines(model, tok)
    calls = [0]
    inner = cached.model

    def counted(**kwargs: Any) -> Any:
        calls[0] += 1
        return inner(**kwargs)

    cached.model = counted
    groups = cached.generate(PROMPTS, n=2, max_new_tokens=64, temperature=1.0, seed=0, stops=[(" ",), (" ",)])

    assert all(c.finish_reason in {"stop", "eos"} for g in groups for c in g)
    assert calls[0] < 64


def test_cached_engine_restores_the_training_mode(hf):
    model, tok = hf
    _, cached = _engines(model, tok)
    model.train()
    try:
        cached.generate(PROMPTS[:1], n=1, max_new_tokens=3, temperature=1.0, seed=0)
        assert model.training
    finally:
        model.eval()


def test_torch_rollout_picks_the_cached_engine_for_hf_models_and_todays_loop_for_the_tiny_one(hf):
    model, tok = hf
    fn = tiny_logits_fn(model, hf=True)
    assert isinstance(
        rollout_engine(_spec(kind="hf"), fn, tok, device=CPU, max_len=64, policy=model), CachedEngine
    )
    tiny = rollout_engine(_spec(kind="tiny"), fn, tok, device=CPU, max_len=64, policy=model)
    assert type(tiny) is TorchEngine


def test_rollout_vllm_without_vllm_installed_fails_naming_the_setting(hf, monkeypatch):
    model, tok = hf
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError
    with pytest.raises(ValueError, match=r"rollout: vllm.*not installed"):
        rollout_engine(
            _spec(kind="hf", rollout="vllm"),
            tiny_logits_fn(model, hf=True),
            tok,
            device=CPU,
            max_len=64,
            policy=model,
        )


def test_rollout_vllm_is_never_chosen_unless_asked_for(hf, monkeypatch):
    model, tok = hf
    install_vllm_module(monkeypatch)  # vllm imports: still the torch engine
    engine = rollout_engine(
        _spec(kind="hf"), tiny_logits_fn(model, hf=True), tok, device=CPU, max_len=64, policy=model
    )
    assert isinstance(engine, CachedEngine)


# ----------------------------------------------------------------------------- vLLM against a stand-in


def _vllm(model, tok, llm) -> VLLMEngine:
    return VLLMEngine(
        "unused",
        policy=model.model,
        logits_fn=tiny_logits_fn(model, hf=True),
        tokenizer=tok,
        device=CPU,
        max_len=512,
        llm=llm,
    )


def test_vllm_engine_syncs_after_every_optimizer_step_before_the_next_sampling(hf, monkeypatch):
    model, tok = hf
    install_vllm_module(monkeypatch)
    policy = model.model
    saved = {k: v.clone() for k, v in policy.state_dict().items()}
    llm = StandInLLM(policy, completions=lambda prompt, n: [[tok.eos_id]] * n)
    trainer = SimpleNamespace(rollout=_vllm(model, tok, llm), engine=None)
    trainer._weights_changed = lambda: Trainer._weights_changed(trainer)

    def fake_accumulate(engine: Any, loss: torch.Tensor) -> float:
        llm.calls.append("optimizer step")
        with torch.no_grad():
            for p in policy.parameters():
                p.add_(0.01)
        return 0.0

    monkeypatch.setattr("workers.trainer.loop.accumulate", fake_accumulate)
    try:
        for _ in range(3):
            trainer.rollout.generate(PROMPTS[:1], n=2, max_new_tokens=4, temperature=1.0, seed=0)
            assert llm.loaded_equals(policy)  # vLLM sampled with the policy's current weights
            Trainer._accumulate(trainer, torch.zeros(()))
    finally:
        policy.load_state_dict(saved)

    assert llm.calls == ["sync", "generate", "optimizer step"] * 3
    assert llm.prefix_resets == 3


def test_vllm_engine_sends_token_ids_cuts_at_stops_and_recomputes_the_logprobs(hf, monkeypatch):
    model, tok = hf
    install_vllm_module(monkeypatch)
    stop_ids = tok.encode("    return a + b\n\ndef more():\n    pass")
    eos_ids = [*tok.encode("    x = 1"), tok.eos_id]
    eos_dropped = tok.encode("    y")  # vLLM ended at EOS and returned the ids without it
    max_new = max(len(stop_ids), len(eos_ids), len(eos_dropped) + 1)
    length_ids = tok.encode("    return a" + " + a" * 4 * max_new)[:max_new]

    def completions(prompt: list[int], n: int) -> list[list[int]]:
        return [stop_ids, eos_ids, length_ids, eos_dropped][:n]

    llm = StandInLLM(model.model, completions=completions)
    engine = _vllm(model, tok, llm)
    (group,) = engine.generate(PROMPTS[:1], n=4, max_new_tokens=max_new, temperature=0.8, seed=5)

    assert llm.prompts == [tok.encode(PROMPTS[0], bos=True)]  # the trainer's own token ids
    assert llm.params[0].kwargs["temperature"] == 0.8 and llm.params[0].kwargs["n"] == 4
    kept, _ = cut_at_stop(tok, stop_ids)  # type: ignore[misc]
    assert group[0].token_ids == tuple(stop_ids[:kept]) and group[0].finish_reason == "stop"
    assert group[0].text == "    return a + b\n"
    assert group[1].token_ids == tuple(eos_ids) and group[1].finish_reason == "eos"
    assert group[1].text == "    x = 1"
    assert group[2].token_ids == tuple(length_ids) and group[2].finish_reason == "length"
    assert group[3].token_ids == (*eos_dropped, tok.eos_id) and group[3].finish_reason == "eos"
    with torch.no_grad():
        logp, _, _ = completion_logprobs(
            tiny_logits_fn(model, hf=True),
            [tok.encode(PROMPTS[0], bos=True)] * 4,
            [list(c.token_ids) for c in group],
            pad_id=tok.pad_id,
            temperature=0.8,
            device=CPU,
        )
    for i, c in enumerate(group):
        assert torch.allclose(logp[i, : len(c.token_ids)], torch.tensor(c.logprobs), atol=1e-5)


def test_cut_completion_ends_ids_where_todays_loop_would(hf):
    _, tok = hf
    ids = tok.encode("    return 1\n\ndef g():\n")
    assert cut_completion(tok, ids, ("\ndef",), eos=tok.eos_id, max_new_tokens=100)[1] == "stop"
    assert (
        tok.decode(cut_completion(tok, ids, ("\ndef",), eos=tok.eos_id, max_new_tokens=100)[0])
        == "    return 1\n"
    )
    assert cut_completion(tok, ids, (), eos=tok.eos_id, max_new_tokens=len(ids)) == (ids, "length")


def _spec(*, kind: str, rollout: str = "torch") -> RunSpec:
    return RunSpec(
        run_id=1,
        name="t",
        control_url="",
        model=ModelSpec(kind=kind, path="/nonexistent" if kind == "hf" else None),
        train=TrainConfig(rollout=rollout),
        resources=ResourcesSpec(gpu=True),
        sandbox=SandboxSpec(),
        problems=(),
    )
