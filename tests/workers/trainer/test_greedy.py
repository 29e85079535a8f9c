"""Greedy decoding (temperature GREEDY = 0) in every rollout engine: the same completion whatever the
seed, each token the argmax of the model's logits given the prompt and the tokens before it (checked
with a full forward pass, token by token), and log-probs under the model's own distribution. vLLM runs
against the stand-in with its method names (tests/workers/trainer/vllm_standin.py)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.workers.trainer.vllm_standin import StandInLLM, install_vllm_module
from workers.trainer.logprobs import completion_logprobs, tiny_logits_fn
from workers.trainer.model import build_tiny_model
from workers.trainer.rollout import GREEDY, CachedEngine, Completion, LogitsFn, TorchEngine
from workers.trainer.tokenizer import ByteTokenizer, HFTokenizer
from workers.trainer.vllm_rollout import VLLMEngine

CPU = torch.device("cpu")
PROMPTS = ["def add(a, b):\n", "x = "]


@torch.no_grad()
def _assert_argmax_path(logits_fn: LogitsFn, prompt_ids: list[int], c: Completion) -> None:
    """Replay the completion one token at a time with a full forward: each token is the argmax, and
    its log-prob is the log-softmax at temperature 1."""
    ids = list(prompt_ids)
    for tok, lp in zip(c.token_ids, c.logprobs, strict=True):
        x = torch.tensor([ids])
        logits = logits_fn(x, torch.ones_like(x, dtype=torch.bool))[0, -1].float()
        assert tok == int(logits.argmax())
        assert lp == pytest.approx(float(torch.log_softmax(logits, -1)[tok]), abs=1e-4)
        ids.append(tok)


def test_torch_engine_greedy_is_deterministic_and_the_argmax_at_every_token():
    tok = ByteTokenizer()
    model = build_tiny_model(tok.vocab_size, d_model=32, n_layers=2, n_heads=4, max_len=128, seed=3).eval()
    fn = tiny_logits_fn(model, hf=False)
    engine = TorchEngine(fn, tok, device=CPU, max_len=128)

    a = engine.generate(PROMPTS, n=3, max_new_tokens=10, temperature=GREEDY, seed=1, stops=[(), ()])
    b = engine.generate(PROMPTS, n=3, max_new_tokens=10, temperature=GREEDY, seed=99, stops=[(), ()])

    assert a == b  # the seed draws nothing
    for prompt, group in zip(PROMPTS, a, strict=True):
        assert len(set(group)) == 1  # every one of the n is the same completion
        assert len(group[0].token_ids) == 10 or group[0].finish_reason == "eos"
        _assert_argmax_path(fn, engine.encode_prompt(prompt, 10), group[0])
    sampled = engine.generate(PROMPTS, n=3, max_new_tokens=10, temperature=1.0, seed=1, stops=[(), ()])
    assert {c.token_ids for g in sampled for c in g} != {c.token_ids for g in a for c in g}


@pytest.fixture(scope="module")
def hf(tiny_hf_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_hf_dir, local_files_only=True, dtype=torch.float32)
    return model.eval(), HFTokenizer(AutoTokenizer.from_pretrained(tiny_hf_dir, local_files_only=True))


def test_cached_engine_greedy_is_the_argmax_and_the_same_as_the_torch_engine(hf):
    model, tok = hf
    fn = tiny_logits_fn(model, hf=True)
    cached = CachedEngine(model, tok, device=CPU, max_len=256, module=model)
    today = TorchEngine(fn, tok, device=CPU, max_len=256)

    a = cached.generate(PROMPTS, n=2, max_new_tokens=12, temperature=GREEDY, seed=1, stops=[(), ()])
    b = cached.generate(PROMPTS, n=2, max_new_tokens=12, temperature=GREEDY, seed=2, stops=[(), ()])
    plain = today.generate(PROMPTS, n=2, max_new_tokens=12, temperature=GREEDY, seed=3, stops=[(), ()])

    assert [[c.token_ids for c in g] for g in a] == [[c.token_ids for c in g] for g in b]
    assert [[c.token_ids for c in g] for g in a] == [[c.token_ids for c in g] for g in plain]
    for prompt, group in zip(PROMPTS, a, strict=True):
        assert group[0].token_ids == group[1].token_ids
        _assert_argmax_path(fn, cached.encode_prompt(prompt, 12), group[0])


def test_vllm_engine_asks_vllm_for_greedy_sampling_once_and_scores_it_at_temperature_1(hf, monkeypatch):
    model, tok = hf
    install_vllm_module(monkeypatch)
    answer = tok.encode("    return a + b")
    llm = StandInLLM(model, completions=lambda prompt, n: [answer] * n)
    fn = tiny_logits_fn(model, hf=True)
    engine = VLLMEngine("unused", policy=model, logits_fn=fn, tokenizer=tok, device=CPU, max_len=256, llm=llm)

    (group,) = engine.generate(PROMPTS[:1], n=3, max_new_tokens=len(answer), temperature=GREEDY, seed=0)

    # vLLM's SamplingParams: "Zero means greedy sampling", and it refuses n > 1 with it
    kwargs: dict[str, Any] = llm.params[0].kwargs
    assert (kwargs["temperature"], kwargs["n"]) == (0.0, 1)
    assert [c.token_ids for c in group] == [tuple(answer)] * 3
    with torch.no_grad():
        logp, _, _ = completion_logprobs(
            fn, [tok.encode(PROMPTS[0], bos=True)], [answer], pad_id=tok.pad_id, temperature=1.0, device=CPU
        )
    assert torch.allclose(torch.tensor(group[0].logprobs), logp[0, : len(answer)], atol=1e-5)


def test_a_negative_temperature_is_refused():
    tok = ByteTokenizer()
    model = build_tiny_model(tok.vocab_size, d_model=16, n_layers=1, n_heads=2, max_len=64, seed=0)
    engine = TorchEngine(tiny_logits_fn(model, hf=False), tok, device=CPU, max_len=64)
    with pytest.raises(ValueError, match="temperature must be >= 0"):
        engine.generate(PROMPTS[:1], n=1, max_new_tokens=2, temperature=-0.5, seed=0)
