"""What a rank trains with, set up once: its process group and device, the policy model and its
tokenizer, the frozen reference, the DeepSpeed engine around the policy and the rollout engine; and the
engine's optimizer step."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

from workers.model_info import ModelRefused, resolve_source
from workers.trainer.batches import micro_batches_per_step
from workers.trainer.model import build_tiny_model
from workers.trainer.prompting import prompt_bos
from workers.trainer.rollout import CachedEngine, LogitsFn, RolloutEngine, Tokenizer, TorchEngine
from workers.trainer.spec import RunSpec, TrainSpec
from workers.trainer.tokenizer import ByteTokenizer, HFTokenizer


def init_distributed(*, gpu: bool) -> tuple[int, int, int, torch.device]:
    """Join the run's process group; (rank, world size, local rank, this rank's device)."""
    import deepspeed
    from deepspeed.accelerator import get_accelerator

    accel = get_accelerator()
    deepspeed.init_distributed(dist_backend=accel.communication_backend_name())
    rank, world = dist.get_rank(), dist.get_world_size()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if gpu and accel.device_name() != "cpu":
        accel.set_device(local_rank)
        device = torch.device(accel.device_name(local_rank))
    else:
        device = torch.device("cpu")
        torch.set_num_threads(1)
    return rank, world, local_rank, device


TORCH_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
VLLM_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def local_source(source: str, field: str) -> str:
    """A directory on this node for a model or tokenizer source: the directory itself, or a hub id's
    snapshot in the node's Hugging Face cache (workers.model_info's rule). Nothing downloads here."""
    try:
        return str(resolve_source(source))
    except ModelRefused as exc:
        raise ValueError(f"{field}: {exc}") from exc


def load_policy(spec: RunSpec, device: torch.device) -> tuple[torch.nn.Module, Tokenizer, int]:
    """(the policy model on device, its tokenizer, the longest sequence it takes): a local transformers
    checkpoint (model.kind "hf"), or the tiny model built in code and seeded with the run's seed."""
    train = spec.train
    model: torch.nn.Module
    tokenizer: Tokenizer
    if spec.model.kind == "hf":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        assert spec.model.path is not None and spec.model.tokenizer_path is not None
        # Weights load in the precision the run trains in: fp32 training needs fp32 weights whatever
        # the model is stored in (model.dtype is what vLLM rollouts use).
        path = local_source(spec.model.path, "model.path")
        model = AutoModelForCausalLM.from_pretrained(
            path, local_files_only=True, dtype=TORCH_DTYPES[train.precision]
        )
        tok_path = local_source(
            spec.model.tokenizer_path, "model.tokenizer" if spec.model.tokenizer else "model.path"
        )
        hf_tok = HFTokenizer(AutoTokenizer.from_pretrained(tok_path, local_files_only=True))
        if spec.model.chat and not hf_tok.has_chat_template:
            raise ValueError(
                f"model.chat: the tokenizer at {spec.model.tokenizer_path!r} has no chat template"
            )
        tokenizer = hf_tok
        max_len = int(getattr(model.config, "max_position_embeddings", spec.model.max_len))
    else:
        tok = ByteTokenizer()
        tokenizer = tok
        m = spec.model
        model = build_tiny_model(
            tok.vocab_size,
            d_model=m.d_model,
            n_layers=m.n_layers,
            n_heads=m.n_heads,
            max_len=m.max_len,
            seed=train.seed,
        )
        max_len = m.max_len
    return model.to(device), tokenizer, max_len  # type: ignore[arg-type]


def enable_gradient_checkpointing(model: torch.nn.Module, *, hf: bool) -> None:
    """Recompute activations in the backward pass (train.gradient_checkpointing): a transformers
    model's own layer-wise checkpointing, the tiny model's per block."""
    if hf:
        hf_model: Any = model
        # Non-reentrant: torch's recommendation, and right with LoRA (frozen embeddings: the layers'
        # inputs need no gradient). transformers 5 renamed gradient_* to activation_checkpointing_*.
        if hasattr(hf_model, "activation_checkpointing_enable"):
            hf_model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            hf_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        # A KV cache is useless while training and transformers refuses it under checkpointing (in
        # training mode); the CachedEngine samples in eval mode and asks for its cache explicitly.
        hf_model.config.use_cache = False
    else:
        setattr(model, "gradient_checkpointing", True)  # noqa: B010 - TinyCausalLM's flag


def with_lora(model: torch.nn.Module, train: TrainSpec, *, hf: bool) -> torch.nn.Module:
    """The policy with low-rank adapters on every linear layer (train.lora_rank > 0); only the adapters
    are trainable, so the optimizer (which takes the parameters that need a gradient) steps them alone."""
    if train.lora_rank == 0:
        return model
    if not hf:
        raise ValueError("train.lora_rank: LoRA needs a Hugging Face model (model.kind hf)")
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=train.lora_rank,
        lora_alpha=train.lora_alpha,  # type: ignore[arg-type] # typed int, used as a float (α / r)
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    peft_model: torch.nn.Module = get_peft_model(model, config)
    return peft_model


def prepare_policy(model: torch.nn.Module, train: TrainSpec, *, hf: bool) -> torch.nn.Module:
    """The policy as it trains: gradient checkpointing and LoRA applied as the run asks."""
    if train.gradient_checkpointing:
        enable_gradient_checkpointing(model, hf=hf)
    return with_lora(model, train, hf=hf)


def param_counts(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters, each shared tensor counted once."""
    params = list(model.parameters())  # parameters() already yields a tied weight once
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A frozen copy of the policy, in eval mode, never trained: the KL reference's shape, into which
    the pinned reference weights are loaded (workers/trainer/reference.py)."""
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def deepspeed_config(train: TrainSpec, world: int) -> dict[str, Any]:
    return {
        # DeepSpeed only counts samples with the micro-batch size; the update sizes its own micro-batches.
        "train_micro_batch_size_per_gpu": max(1, train.micro_batch_size or train.group_size),
        # Every optimizer step accumulates this many backwards on every rank (workers/trainer/batches.py).
        "gradient_accumulation_steps": micro_batches_per_step(train, world),
        "gradient_clipping": 1.0,
        "zero_optimization": {"stage": train.zero_stage},
        "bf16": {"enabled": train.precision == "bf16"},
        "fp16": {"enabled": train.precision == "fp16"},
        "steps_per_print": 1_000_000,
        "wall_clock_breakdown": False,
    }


def build_engine(model: torch.nn.Module, train: TrainSpec, *, world: int, device: torch.device) -> Any:
    """The DeepSpeed engine around the policy, with its optimizer at the first step's learning rate."""
    import deepspeed

    params = [p for p in model.parameters() if p.requires_grad]
    # torch's AdamW (fused on CUDA) rather than DeepSpeed's: DeepSpeed's own Adam ops are compiled
    # on first use, which needs a toolchain matching the torch build on every node. ZeRO partitions a
    # client optimizer just the same.
    first_lr = train.sft_lr if train.sft_warmup_steps and train.sft_lr else train.lr
    optimizer: Any = torch.optim.AdamW(params, lr=first_lr, weight_decay=0.0, fused=device.type == "cuda")
    engine, _, _, _ = deepspeed.initialize(
        model=model, optimizer=optimizer, config=deepspeed_config(train, world)
    )
    return engine


def rollout_engine(
    spec: RunSpec,
    logits_fn: LogitsFn,
    tokenizer: Tokenizer,
    *,
    device: torch.device,
    max_len: int,
    policy: torch.nn.Module | None = None,
    forward: Any = None,
) -> RolloutEngine:
    """What samples the rollouts (the `rollout` setting): "torch" samples with the policy itself, through
    a KV cache for a transformers model (CachedEngine), the tiny model's KV-less loop otherwise;
    "vllm" a colocated vLLM, never chosen unless asked for.

    policy: the module whose weights vLLM is fed and whose mode the cached sampler switches;
    forward: the transformers model as it is called (the DeepSpeed engine around it)."""
    hf = spec.model.kind == "hf"
    bos = prompt_bos(spec.model)
    lockstep = all_ranks_done(device) if spec.train.zero_stage == 3 else None
    if spec.train.rollout == "vllm":
        return vllm_engine(spec, logits_fn, tokenizer, device=device, max_len=max_len, policy=policy)
    if hf:
        model = forward if forward is not None else policy
        assert model is not None, "a transformers model samples through its forward"
        return CachedEngine(
            model,
            tokenizer,
            device=device,
            max_len=max_len,
            bos=bos,
            all_done=lockstep,
            module=policy,
        )
    return TorchEngine(logits_fn, tokenizer, device=device, max_len=max_len, bos=bos, all_done=lockstep)


def vllm_engine(
    spec: RunSpec,
    logits_fn: LogitsFn,
    tokenizer: Tokenizer,
    *,
    device: torch.device,
    max_len: int,
    policy: torch.nn.Module | None,
) -> RolloutEngine:
    """`rollout: vllm`: a colocated vLLM, refused with the reason where it cannot run."""
    if spec.model.kind != "hf":
        raise ValueError("rollout: vllm needs a Hugging Face model (model.kind hf); use rollout: torch")
    if not spec.resources.gpu:
        raise ValueError("rollout: vllm needs GPU nodes; use rollout: torch on CPU nodes")
    if spec.train.lora_rank:
        raise ValueError("rollout: vllm does not take LoRA adapters yet; use rollout: torch")
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        raise ValueError(
            "rollout: vllm, but vllm is not installed on this node (pip install vllm there, "
            "or choose rollout: torch)"
        ) from exc
    from workers.trainer.vllm_rollout import VLLMEngine

    assert spec.model.path is not None and policy is not None
    tok = spec.model.tokenizer
    return VLLMEngine(
        local_source(spec.model.path, "model.path"),
        policy=policy,
        logits_fn=logits_fn,
        tokenizer=tokenizer,
        device=device,
        max_len=max_len,
        bos=prompt_bos(spec.model),
        hf_tokenizer=local_source(tok, "model.tokenizer") if tok else None,
        dtype=VLLM_DTYPES[spec.model.dtype],
        seed=spec.train.seed,
    )


def all_ranks_done(device: torch.device) -> Callable[[bool], bool]:
    """(this rank is done) -> whether every rank is: one all-reduce, so all ranks call it together."""

    def all_done(done: bool) -> bool:
        flag = torch.tensor([0 if done else 1], dtype=torch.int64, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return int(flag.item()) == 0

    return all_done


def accumulate(engine: Any, loss: torch.Tensor) -> float | None:
    """One micro-batch: engine.backward + engine.step. DeepSpeed steps the optimizer on the last of the
    gradient_accumulation_steps micro-batches (the boundary); there this returns the global gradient
    norm before clipping, elsewhere None.

    The loss is already normalised over the whole mini-batch (grpo.token_weights), so DeepSpeed must not
    divide it by the accumulation steps again. ZeRO and the mixed-precision optimizers record the norm
    they clip with. On the plain fp32 ZeRO-0 path DeepSpeed clips a client optimizer's gradients without
    keeping the norm, so it is measured here on the already all-reduced gradients, before the step clips
    them.
    """
    boundary = engine.is_gradient_accumulation_boundary()
    engine.backward(loss, scale_wrt_gas=False)
    measured: float | None = None
    if boundary and not (engine.zero_optimization() or engine.fp16_enabled() or engine.bfloat16_enabled()):
        grads = [p.grad.detach().float() for p in engine.module.parameters() if p.grad is not None]
        measured = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))) if grads else 0.0
    engine.step()
    if not boundary:
        return None
    if measured is not None:
        return measured
    norm = engine.get_global_grad_norm()
    return float(norm) if norm is not None else 0.0


def set_lr(engine: Any, lr: float) -> None:
    for group in engine.optimizer.param_groups:
        group["lr"] = lr


def reset_optimizer_state(engine: Any) -> None:
    """Forget AdamW's moments (ZeRO holds them on the inner torch optimizer; re-made lazily)."""
    outer: Any = engine.optimizer
    inner: Any = getattr(outer, "optimizer", outer)
    inner.state.clear()


def zero_loss(engine: Any, device: torch.device, logits_fn: LogitsFn) -> torch.Tensor:
    """A loss of zero that touches every parameter: a rank with nothing to learn from still takes part
    in the collective gradient reduce. Under ZeRO-3 it runs a one-token forward, because the other ranks'
    forwards gather the weights with this one and a parameter here holds only its shard."""
    if engine.zero_optimization_stage() == 3:
        one = torch.zeros((1, 1), dtype=torch.long, device=device)
        return logits_fn(one, torch.ones_like(one, dtype=torch.bool)).sum() * 0.0
    return sum((p.sum() * 0.0 for p in engine.module.parameters()), torch.zeros((), device=device))
