"""Does the trainer learn? The tiny model on the bundled synthetic dataset, on the CPU, in one process.

The real ``Trainer`` (DeepSpeed engine, torch rollouts, the sandbox, GRPO, the ingest client posting to
an in-process fake control plane) runs with world size 1. A short SFT warm-up on the reference
solutions gives the random policy enough Python to be scored at all (pass rate well under half, so
there is headroom), then GRPO runs. The pass rate of the first and the last ten *RL* steps is compared
(warm-up steps sample nothing and are not counted).

    .venv/bin/python bench/learning.py [--rl-steps 150] [--sft-steps 100] [--lr 3e-4] ...

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATASET = ROOT / "datasets_app" / "data" / "demo_problems.jsonl"


def load_problems(path: Path) -> list[dict[str, Any]]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                d = json.loads(line)
                out.append(
                    {
                        "task_id": d["task_id"],
                        "prompt": d["prompt"],
                        "entry_point": d["entry_point"],
                        "solution": d.get("canonical_solution") or d.get("solution") or "",
                        "tests": d.get("test") or d["tests"],
                    }
                )
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rl-steps", type=int, default=150)
    ap.add_argument("--sft-steps", type=int, default=100)
    ap.add_argument("--sft-lr", type=float, default=3e-3)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--prompts-per-step", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--beta", type=float, default=0.0)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reset-optimizer", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    os.environ.update(
        {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_SIZE": "1"}
        | {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    )
    from tests.workers.trainer.fake_control import FakeControl
    from workers.trainer.loop import Trainer
    from workers.trainer.spec import parse_spec

    control = FakeControl(token="bench").start()
    steps = args.sft_steps + args.rl_steps
    raw = {
        "run_id": 1,
        "name": "learning",
        "control_url": control.url,
        "model": {"kind": "tiny", "d_model": args.d_model, "n_layers": 2, "n_heads": 4, "max_len": 256},
        "train": {
            "steps": steps,
            "prompts_per_step": args.prompts_per_step,
            "group_size": args.group_size,
            "lr": args.lr,
            "seed": args.seed,
            "max_new_tokens": args.max_new_tokens,
            "temperature": args.temperature,
            "beta": args.beta,
            "sft_warmup_steps": args.sft_steps,
            "sft_lr": args.sft_lr,
            "reset_optimizer_after_sft": args.reset_optimizer,
            "checkpoint_every": 0,  # as measured before the default became 50: no checkpoint stalls
        },
        "resources": {"num_nodes": 1, "procs_per_node": 1, "gpu": False},
        "sandbox": {"timeout_s": 5.0, "memory_mb": 512},
        "problems": load_problems(DATASET),
    }
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(raw))
        t0 = time.monotonic()
        trainer = Trainer(parse_spec(raw), spec_path, "bench")
        if args.verbose:
            trainer.on_step = lambda step, m: print(
                step,
                {k: round(v, 3) for k, v in m.items() if k in ("pass_rate", "loss", "entropy")},
                file=sys.stderr,
                flush=True,
            )
        trainer.run()
        wall = time.monotonic() - t0
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    control.stop()
    by_step = {m["step"]: m["values"] for m in control.of_type("metric", "trainer")}
    rl = [by_step[s]["pass_rate"] for s in sorted(by_step) if s >= args.sft_steps]
    first, last = statistics.fmean(rl[:10]), statistics.fmean(rl[-10:])
    curve = [round(statistics.fmean(rl[i : i + 10]), 3) for i in range(0, len(rl), 10)]
    print(
        json.dumps(
            {
                "bench": "learning",
                "dataset": DATASET.name,
                "sft_warmup_steps": args.sft_steps,
                "rl_steps": len(rl),
                "pass_rate_first10": round(first, 4),
                "pass_rate_last10": round(last, 4),
                "ratio": round(last / first, 3) if first else None,
                "gain_points": round(100 * (last - first), 1),
                "passes": last >= 1.5 * first and last - first >= 0.15,
                "curve_per10": curve,
                "config": {k: v for k, v in vars(args).items() if k != "verbose"},
                "wall_s": round(wall, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
