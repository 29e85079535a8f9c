"""Engine settings of the policy: gradient checkpointing (tiny and Hugging Face models) and LoRA."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from workers.spec import TrainConfig
from workers.trainer.engine import param_counts, prepare_policy
from workers.trainer.logprobs import completion_logprobs, tiny_logits_fn
from workers.trainer.model import build_tiny_model
from workers.trainer.rollout import TorchEngine
from workers.trainer.tokenizer import ByteTokenizer

CPU = torch.device("cpu")
PROMPTS = [[5, 6, 7, 8], [9, 10]]
COMPLETIONS = [[11, 12, 13], [14, 15, 16, 17]]


def _tiny() -> torch.nn.Module:
    return build_tiny_model(ByteTokenizer.vocab_size, d_model=32, n_layers=2, n_heads=4, max_len=64, seed=0)


def _hf(path) -> torch.nn.Module:
    return AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)


def _loss_and_grads(model: torch.nn.Module, *, hf: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The SFT loss of fixed completions and its gradient, the model in training mode."""
    model.train()
    logp, mask, _ = completion_logprobs(
        tiny_logits_fn(model, hf=hf), PROMPTS, COMPLETIONS, pad_id=0, temperature=1.0, device=CPU
    )
    loss = -(logp * mask).sum() / mask.sum()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def _forward_calls(modules: list[torch.nn.Module]) -> list[int]:
    """A counter of the modules' forward runs. Their own forward is wrapped (not a hook: torch does not
    fire hooks while it recomputes a checkpoint), so a module inside a checkpointed layer counts twice."""
    calls = [0]
    for m in modules:

        def counted(*args: object, _forward=m.forward, **kwargs: object) -> object:
            calls[0] += 1
            return _forward(*args, **kwargs)

        m.forward = counted
    return calls


def test_gradient_checkpointing_on_the_tiny_model_recomputes_each_block_and_gives_the_same_gradients():
    plain, checkpointed = _tiny(), _tiny()
    prepare_policy(checkpointed, TrainConfig(gradient_checkpointing=True), hf=False)
    calls = _forward_calls([b.mlp for b in checkpointed.blocks])

    loss_a, grads_a = _loss_and_grads(plain, hf=False)
    loss_b, grads_b = _loss_and_grads(checkpointed, hf=False)

    assert checkpointed.gradient_checkpointing and not plain.gradient_checkpointing
    assert calls[0] == 2 * 2  # 2 blocks, each run again in the backward pass
    assert torch.equal(loss_a, loss_b)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 0
    for name, g in grads_a.items():
        assert torch.allclose(g, grads_b[name], atol=1e-6, rtol=1e-5), name


def test_gradient_checkpointing_is_off_while_sampling():
    model = _tiny()
    prepare_policy(model, TrainConfig(gradient_checkpointing=True), hf=False)
    calls = _forward_calls([b.mlp for b in model.blocks])
    with torch.no_grad():
        model.train()(torch.tensor([[5, 6, 7]]))
    assert calls[0] == 2  # once per block: nothing to recompute without a backward pass


def test_gradient_checkpointing_on_a_hugging_face_model_gives_the_same_gradients(tiny_hf_dir):
    plain, checkpointed = _hf(tiny_hf_dir), _hf(tiny_hf_dir)
    prepare_policy(checkpointed, TrainConfig(gradient_checkpointing=True), hf=True)
    calls = _forward_calls([layer.mlp for layer in checkpointed.model.layers])

    loss_a, grads_a = _loss_and_grads(plain, hf=True)
    loss_b, grads_b = _loss_and_grads(checkpointed, hf=True)

    assert checkpointed.is_activation_checkpointing and not plain.is_activation_checkpointing
    assert checkpointed.config.use_cache is False
    assert calls[0] == 2 * len(checkpointed.model.layers)
    assert torch.allclose(loss_a, loss_b, atol=1e-6)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 0
    for name, g in grads_a.items():
        assert torch.allclose(g, grads_b[name], atol=1e-6, rtol=1e-5), name


def test_lora_on_the_tiny_model_is_refused_naming_the_field():
    with pytest.raises(
        ValueError, match=r"train\.lora_rank: LoRA needs a Hugging Face model \(model\.kind hf\)"
    ):
        prepare_policy(_tiny(), TrainConfig(lora_rank=4), hf=False)


def test_lora_trains_only_the_adapters_and_starts_as_the_base_model(tiny_hf_dir):
    base = _hf(tiny_hf_dir).eval()
    total_base = sum(p.numel() for p in base.parameters())
    policy = prepare_policy(_hf(tiny_hf_dir), TrainConfig(lora_rank=4, lora_alpha=8.0), hf=True)

    trainable, total = param_counts(policy)
    names = [n for n, p in policy.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert 0 < trainable < total and total - trainable == total_base
    # Every linear layer of the decoder has adapters; the output head (tied or not) does not.
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in names}
    assert adapted == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}

    # B starts at zero: the wrapped policy's log-probs are the base model's.
    policy.eval()
    with torch.no_grad():
        got, mask, _ = completion_logprobs(
            tiny_logits_fn(policy, hf=True), PROMPTS, COMPLETIONS, pad_id=0, temperature=1.0, device=CPU
        )
        want, _, _ = completion_logprobs(
            tiny_logits_fn(base, hf=True), PROMPTS, COMPLETIONS, pad_id=0, temperature=1.0, device=CPU
        )
    assert torch.allclose(got[mask], want[mask], atol=1e-5)

    # A step changes the adapters and nothing else.
    frozen = {n: p.detach().clone() for n, p in policy.named_parameters() if not p.requires_grad}
    optimizer = torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=1e-2)
    _loss_and_grads(policy, hf=True)
    optimizer.step()
    assert all(torch.equal(p, frozen[n]) for n, p in policy.named_parameters() if not p.requires_grad)
    with torch.no_grad():
        moved, _, _ = completion_logprobs(
            tiny_logits_fn(policy.eval(), hf=True),
            PROMPTS,
            COMPLETIONS,
            pad_id=0,
            temperature=1.0,
            device=CPU,
        )
    assert not torch.allclose(moved[mask], want[mask], atol=1e-5)


def test_the_torch_engine_samples_through_a_lora_policy_and_its_logprobs_match_a_rescoring(tiny_hf_dir):
    policy = prepare_policy(_hf(tiny_hf_dir), TrainConfig(lora_rank=4), hf=True).eval()
    fn = tiny_logits_fn(policy, hf=True)

    class Tok:  # token ids are all a test of sampling needs; the BPE vocabulary decodes them
        eos_id, pad_id = 1, 2

        def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
            return [int(t) for t in text.split()]

        def decode(self, ids) -> str:
            return " ".join(str(i) for i in ids)

    engine = TorchEngine(fn, Tok(), device=CPU, max_len=64, bos=False, stops=())
    (group,) = engine.generate(["5 6 7 8"], n=2, max_new_tokens=6, temperature=1.0, seed=3)
    c = group[0]
    assert 1 <= len(c.token_ids) == len(c.logprobs) <= 6
    with torch.no_grad():
        logp, _, _ = completion_logprobs(
            fn, [[5, 6, 7, 8]], [list(c.token_ids)], pad_id=2, temperature=1.0, device=CPU
        )
    assert torch.allclose(logp[0, : len(c.logprobs)], torch.tensor(c.logprobs), atol=1e-4)


def test_under_zero3_a_rank_without_prompts_keeps_stepping_until_every_rank_is_done():
    model = _tiny().eval()
    forwards = [0]

    def fn(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        forwards[0] += 1
        return model(ids, mask)

    # The other ranks (stood in for by the all-reduce's answer) sample for 5 tokens.
    engine = TorchEngine(fn, ByteTokenizer(), device=CPU, max_len=64, all_done=lambda done: forwards[0] >= 5)
    assert engine.generate([], n=4, max_new_tokens=10, temperature=1.0, seed=0) == []
    assert forwards[0] == 5

    # With prompts, a lock-step engine whose ranks agree samples exactly what a lone one does.
    alone = TorchEngine(fn, ByteTokenizer(), device=CPU, max_len=64)
    agreeing = TorchEngine(fn, ByteTokenizer(), device=CPU, max_len=64, all_done=lambda done: done)
    args = (["def f(x):\n"], 3, 10, 1.0, 7)
    assert agreeing.generate(*args) == alone.generate(*args)
