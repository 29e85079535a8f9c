"""The GPU path of the trainer, end to end: a small Hugging Face causal LM (workers/trainer/tiny_hf.py:
random weights, a byte-level BPE tokenizer trained on the bundled problems — nothing is downloaded),
trained with GRPO through the DeepSpeed engine (bf16, ZeRO-2) under the real `deepspeed` launcher,
rewards from the sandbox, telemetry into a recording stand-in of the ingest API.

Anchor (same run, same model and batch shape): plain torch — the same forward/backward/AdamW step on
the same device without DeepSpeed — so `ratio_train_vs_torch` shows what the engine costs per update.

    python bench/trainer_gpu.py [--steps 6] [--sft-steps 0] [--size gpu-100m]

Runs on CPU too (fp32, gloo, tiny sizes) so it can be checked anywhere. Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from tests.workers.trainer.fake_control import FakeControl  # noqa: E402
from workers.launcher import run_supervised  # noqa: E402
from workers.model_info import inspect_model  # noqa: E402
from workers.trainer.tiny_hf import build_tiny_hf  # noqa: E402

DATA = REPO / "datasets_app" / "data" / "demo_problems.jsonl"


def torch_anchor(model_dir: Path, *, gpu: bool, batch: int, seq: int, steps: int) -> float:
    """Median seconds of one plain-torch update with the trainer's batch shape."""
    from transformers import AutoModelForCausalLM

    device = torch.device("cuda" if gpu else "cpu")
    dtype = torch.bfloat16 if gpu else torch.float32
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=gpu)
    ids = torch.randint(0, model.config.vocab_size, (batch, seq), device=device)
    times = []
    for _ in range(steps + 2):
        if gpu:
            torch.cuda.synchronize()
        t = time.perf_counter()
        logits = model(ids).logits.float()
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if gpu:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times[2:])


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--sft-steps", type=int, default=0)
    parser.add_argument("--sft-lr", type=float, default=1e-3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--deepspeed-bin", default=None)
    parser.add_argument(
        "--size",
        default=None,
        help="the test model's size (workers/trainer/tiny_hf.py SIZES); default gpu-100m on a GPU, cpu else",
    )
    parser.add_argument(
        "--train",
        default="{}",
        help='extra train options as JSON, e.g. \'{"critic": true, "reward_format": 0.2}\'',
    )
    args = parser.parse_args()
    gpu = torch.cuda.is_available()
    problems = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    work = Path(tempfile.mkdtemp(prefix="triad-gpu-"))
    model_dir = work / "model"
    size = args.size or ("gpu-100m" if gpu else "cpu")
    n_params = inspect_model(str(build_tiny_hf(model_dir, size=size))).params
    prompts, group, new_tokens = (4, 8, 64) if gpu else (2, 4, 24)
    spec = {
        "run_id": 1,
        "name": "gpu-check",
        "model": {"kind": "hf", "path": str(model_dir)},
        "train": {
            "steps": args.steps,
            "prompts_per_step": prompts,
            "group_size": group,
            "lr": args.lr,
            "sft_lr": args.sft_lr,
            "seed": 0,
            "max_new_tokens": new_tokens,
            "temperature": 1.0,
            "beta": 0.04,
            "clip_eps": 0.2,
            "zero_stage": 2 if gpu else 0,
            "precision": "bf16" if gpu else "fp32",
            "sft_warmup_steps": args.sft_steps,
            **json.loads(args.train),
        },
        "resources": {"num_nodes": 1, "procs_per_node": 1, "gpu": gpu},
        "sandbox": {"timeout_s": 2.0, "memory_mb": 1024},
        "problems": [
            {
                "task_id": p["task_id"],
                "prompt": p["prompt"],
                "entry_point": p["entry_point"],
                "solution": p["canonical_solution"],
                "tests": p["test"],
            }
            for p in problems
        ],
    }
    control = FakeControl(token="gpu-check-token").start()
    spec["control_url"] = control.url
    control.spec = spec
    started = time.perf_counter()
    final = run_supervised(
        run_id=1,
        token="gpu-check-token",
        control_url=control.url,
        workdir=work / "run",
        heartbeat_s=2.0,
        kill_grace_s=30,
        deepspeed_bin=args.deepspeed_bin,
    )
    wall = time.perf_counter() - started
    control.stop()
    log = (work / "run" / "train.log").read_text(errors="replace")
    print(log[-1500:])
    metrics = [m["values"] | {"step": m["step"]} for m in control.of_type("metric", "trainer")]
    keep = ("step", "loss", "pass_rate", "reward/mean", "grad_norm", "time/step_s", "gpu/mem_gb")
    for m in metrics[:: max(1, len(metrics) // 15)]:
        print(json.dumps({k: round(m[k], 4) if isinstance(m[k], float) else m[k] for k in keep if k in m}))
    step_s = statistics.median(m["time/step_s"] for m in metrics) if metrics else None
    train_s = statistics.median(m["time/train_s"] for m in metrics) if metrics else None
    anchor_s = torch_anchor(model_dir, gpu=gpu, batch=prompts * group, seq=96 + new_tokens, steps=5)
    print(
        json.dumps(
            {
                "device": torch.cuda.get_device_name(0) if gpu else "cpu",
                "final_status": final,
                "params": n_params,
                "steps_reported": len(metrics),
                "wall_s": round(wall, 1),
                "median_step_s": step_s,
                "median_train_s": train_s,
                "torch_anchor_train_s": round(anchor_s, 4),
                "ratio_train_vs_torch": round(train_s / anchor_s, 2) if train_s else None,
                "pass_rate_last": metrics[-1].get("pass_rate") if metrics else None,
                "pass_rate_first10_rl": _mean([m["pass_rate"] for m in metrics if "pass_rate" in m][:10]),
                "pass_rate_last10_rl": _mean([m["pass_rate"] for m in metrics if "pass_rate" in m][-10:]),
                "gpu_mem_gb": metrics[-1].get("gpu/mem_gb") if metrics else None,
                "rollout_tokens_per_s": metrics[-1]["throughput/tokens_per_s"] if metrics else None,
                # The x axis "tokens" of the charts: completion tokens generated so far.
                "tokens_total": metrics[-1].get("throughput/tokens_total") if metrics else None,
                # What the reward components and the critic logged last (present when the options are on).
                **{
                    k: round(v, 4)
                    for k, v in (metrics[-1] if metrics else {}).items()
                    if k.startswith(("reward/", "critic/")) and isinstance(v, float)
                },
            }
        )
    )


if __name__ == "__main__":
    main()
