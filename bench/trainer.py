"""The trainer's update step on DeepSpeed against a plain torch step, and rollout tokens/s, on the CPU.

Same run, same tiny model (same seed, same weights), same GRPO batch: a plain torch step (forward,
GRPO loss, backward, clip_grad_norm_ 1.0, AdamW step, zero_grad) against the DeepSpeed engine's step
(ZeRO stage 0, fp32, gradient clipping 1.0, the same torch AdamW as a client optimizer), interleaved,
median of `--iters`. ``ratio`` = DeepSpeed / torch. Then tokens per second of every rollout engine that
is available here (the torch engine; vLLM only where it imports and a GPU exists).

    .venv/bin/python bench/trainer.py [--iters 30] [--d-model 64] [--rollout-only]

Then, for the small Hugging Face test model (workers/trainer/tiny_hf.py, "cpu" size) at a fixed shape
(32 samples: 4 prompts x 8, 256-token prompts, 128 new tokens, no stop strings), rollout tokens/s of
today's KV-less loop (TorchEngine) and of the cached engine (CachedEngine) in the same run, and
``rollout_speedup`` = cached / today's. ``--rollout-only`` measures only that.

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rollout_hf(reps: int) -> dict[str, Any]:
    """Tokens/s of TorchEngine and CachedEngine on the small HF test model, same prompts and seeds."""
    import tempfile

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workers.trainer.logprobs import tiny_logits_fn
    from workers.trainer.rollout import CachedEngine, TorchEngine
    from workers.trainer.tiny_hf import DEMO_PROBLEMS, build_tiny_hf
    from workers.trainer.tokenizer import HFTokenizer

    prompts_n, group, prompt_len, new_tokens = 4, 8, 256, 128
    cpu = torch.device("cpu")
    with tempfile.TemporaryDirectory() as tmp:
        path = build_tiny_hf(Path(tmp) / "model", size="cpu")
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32).eval()
        tok = HFTokenizer(AutoTokenizer.from_pretrained(path, local_files_only=True))
    lines = DEMO_PROBLEMS.read_text().splitlines()
    prompts = []
    for i in range(prompts_n):  # each at least prompt_len tokens; the engines keep the last prompt_len
        text = "\n".join(lines[i:])
        assert len(tok.encode(text, bos=True)) >= prompt_len
        prompts.append(text)
    max_len = prompt_len + new_tokens
    engines = {
        "today": TorchEngine(tiny_logits_fn(model, hf=True), tok, device=cpu, max_len=max_len, stops=()),
        "cached": CachedEngine(model, tok, device=cpu, max_len=max_len, stops=(), module=model),
    }
    rates: dict[str, list[float]] = {name: [] for name in engines}
    for engine in engines.values():
        engine.generate(prompts[:1], 2, 4, 1.0, seed=0)  # warm-up
    for rep in range(reps):  # interleaved, same seeds
        for name, engine in engines.items():
            t0 = time.perf_counter()
            out = engine.generate(prompts, group, new_tokens, 1.0, seed=rep)
            dt = time.perf_counter() - t0
            rates[name].append(sum(len(c.token_ids) for g in out for c in g) / dt)
    today, cached = (statistics.median(rates[n]) for n in ("today", "cached"))
    return {
        "rollout_hf": {
            "model": "tiny_hf cpu",
            "params": sum(p.numel() for p in model.parameters()),
            "samples": prompts_n * group,
            "prompt_tokens": prompt_len,
            "new_tokens": new_tokens,
            "reps": reps,
            "today_tokens_per_s": round(today, 1),
            "cached_tokens_per_s": round(cached, 1),
        },
        "rollout_speedup": round(cached / today, 2),
        "rollout_speedup_target": 3.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32, help="completions per update (prompts x group)")
    ap.add_argument("--new-tokens", type=int, default=24)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rollout-only", action="store_true", help="only the HF rollout engines' figure")
    ap.add_argument("--rollout-reps", type=int, default=2, help="timed generate calls per engine (median)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    hf_rollout = rollout_hf(args.rollout_reps)
    if args.rollout_only:
        print(json.dumps({"bench": "trainer", "device": "cpu", "threads": args.threads} | hf_rollout))
        return
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    os.environ.update(
        {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_SIZE": "1"}
        | {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    )
    import deepspeed

    from workers.trainer.grpo import grpo_loss
    from workers.trainer.logprobs import completion_logprobs, tiny_logits_fn
    from workers.trainer.model import build_tiny_model
    from workers.trainer.rollout import TorchEngine
    from workers.trainer.tokenizer import ByteTokenizer

    deepspeed.init_distributed(dist_backend="gloo")
    tok = ByteTokenizer()
    base = build_tiny_model(tok.vocab_size, d_model=args.d_model, n_layers=2, n_heads=4, max_len=256, seed=0)
    cpu = torch.device("cpu")

    # A fixed GRPO batch: a real prompt, random completions, random advantages.
    gen = torch.Generator().manual_seed(0)
    prompt = tok.encode('def add(a, b):\n    """Return the sum of a and b."""\n', bos=True)
    prompts = [prompt] * args.batch
    comps = [torch.randint(32, 127, (args.new_tokens,), generator=gen).tolist() for _ in range(args.batch)]
    adv = torch.randn(args.batch, generator=gen)
    tokens_per_update = args.batch * args.new_tokens

    def loss_of(logits_fn: Any) -> torch.Tensor:
        logp, mask, _ = completion_logprobs(
            logits_fn, prompts, comps, pad_id=tok.pad_id, temperature=1.0, device=cpu
        )
        return grpo_loss(logp, logp.detach() - 0.01, adv, mask, clip_eps=0.2).loss

    plain = copy.deepcopy(base)
    plain_opt = torch.optim.AdamW(plain.parameters(), lr=1e-4, weight_decay=0.0)
    plain_fn = tiny_logits_fn(plain, hf=False)

    def torch_step() -> None:
        loss = loss_of(plain_fn)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(plain.parameters(), 1.0)
        plain_opt.step()
        plain_opt.zero_grad(set_to_none=True)

    ds_model = copy.deepcopy(base)
    ds_opt = torch.optim.AdamW(ds_model.parameters(), lr=1e-4, weight_decay=0.0)
    config = {
        "train_micro_batch_size_per_gpu": args.batch,
        "gradient_accumulation_steps": 1,
        "gradient_clipping": 1.0,
        "zero_optimization": {"stage": 0},
        "steps_per_print": 1_000_000,
    }
    engine, _, _, _ = deepspeed.initialize(model=ds_model, optimizer=ds_opt, config=config)
    ds_fn = tiny_logits_fn(engine, hf=False)

    def ds_step() -> None:
        loss = loss_of(ds_fn)
        engine.backward(loss)
        engine.step()

    for _ in range(3):
        torch_step()
        ds_step()
    t_torch: list[float] = []
    t_ds: list[float] = []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        torch_step()
        t_torch.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ds_step()
        t_ds.append(time.perf_counter() - t0)
    torch_med, ds_med = statistics.median(t_torch), statistics.median(t_ds)

    # Rollout engines: 4 prompts x 8 samples, every sample runs to --new-tokens (no EOS, no stops).
    engines: dict[str, Any] = {}
    torch_engine = TorchEngine(tiny_logits_fn(base.eval(), hf=False), tok, device=cpu, max_len=256, stops=())
    prompts_text = ['def add(a, b):\n    """Return the sum of a and b."""\n'] * 4
    torch_engine.generate(prompts_text, 2, 4, 1.0, seed=0)
    rates = []
    for rep in range(3):
        t0 = time.perf_counter()
        out = torch_engine.generate(prompts_text, 8, args.new_tokens, 1.0, seed=rep)
        dt = time.perf_counter() - t0
        rates.append(sum(len(c.token_ids) for g in out for c in g) / dt)
    engines["torch"] = {"tokens_per_s": round(statistics.median(rates), 1), "batch": 32}
    try:
        import vllm  # noqa: F401
    except ImportError:
        engines["vllm"] = "not importable here"
    else:
        engines["vllm"] = "importable but needs an HF model on a GPU node: see bench/trainer_gpu.py"

    print(
        json.dumps(
            {
                "bench": "trainer",
                "device": "cpu",
                "threads": args.threads,
                "d_model": args.d_model,
                "tokens_per_update": tokens_per_update,
                "iters": args.iters,
                "torch_step_ms": round(1000 * torch_med, 2),
                "deepspeed_step_ms": round(1000 * ds_med, 2),
                "ratio": round(ds_med / torch_med, 3),
                "ratio_target": 1.3,
                "rollout": engines,
            }
            | hf_rollout
        )
    )


if __name__ == "__main__":
    main()
