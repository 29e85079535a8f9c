"""Training on repository tasks (issue #23): the real Trainer (world size 1, DeepSpeed, the CachedEngine
rollouts, episodes in the real sandbox, GRPO) on a Hugging Face model, posting to an in-process fake
control plane. Not run in CI; the figures come from a GPU (docs/trainer.md, "Repository tasks").

    .venv/bin/python bench/episodes_train.py --model /models/qwen2.5-coder-0.5b-instruct --chat --gpu \\
        --tasks tasks.jsonl [--steps 20] [--sft-steps 0] [--group-size 4] [--prompts-per-step 4]
    .venv/bin/python bench/episodes_train.py --tiny            # CPU plumbing: the tiny HF model, 2 steps

--tasks: triad-repo JSONL lines (workers/repo/task.py); without it, the sample task of
tests/workers/repo/sample_repo.py. Figures: the resolve rate of the first and last RL steps (and the
mean of the first and last thirds), episodes per minute and model tokens per second over the RL steps.

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import base64
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def load_tasks(path: Path | None) -> list[Any]:
    from workers.repo.task import RepoTask

    if path is None:
        from tests.workers.repo.sample_repo import sample_task

        return [sample_task()]
    tasks = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    tasks.append(RepoTask.from_record(json.loads(line)))
                except ValueError as exc:
                    raise SystemExit(f"{path}:{n}: {exc}") from None
    return tasks


def spec_of(tasks: list[Any], args: argparse.Namespace, model_dir: Path, url: str) -> dict[str, Any]:
    problems = [
        {
            "task_id": t.task_id,
            "kind": "repo",
            "prompt": t.statement,
            "entry_point": "",
            "tests": "",
            "solution": t.patch,
            "repo": {
                "FAIL_TO_PASS": list(t.fail_to_pass),
                "PASS_TO_PASS": list(t.pass_to_pass),
                "runner": t.runner,
                "test_patch": t.test_patch,
                "repo": t.repo,
                "snapshot_sha256": t.snapshot_sha256,
            },
        }
        for t in tasks
    ]
    return {
        "run_id": 1,
        "name": "episodes-train",
        "control_url": url,
        "model": {"kind": "hf", "path": str(model_dir), "chat": args.chat, "dtype": args.precision},
        "train": {
            "steps": args.sft_steps + args.steps,
            "sft_warmup_steps": args.sft_steps,
            "sft_lr": args.sft_lr,
            "prompts_per_step": min(args.prompts_per_step, len(tasks)),
            "group_size": args.group_size,
            "lr": args.lr,
            "temperature": args.temperature,
            "max_new_tokens": args.max_new_tokens,
            "repo_max_turns": args.max_turns,
            "repo_max_tokens": args.max_tokens,
            "precision": args.precision,
            "checkpoint_every": 0,
            "seed": args.seed,
        },
        "resources": {"num_nodes": 1, "procs_per_node": 1, "gpu": args.gpu},
        "problems": problems,
        "snapshots": {t.snapshot_sha256: base64.b64encode(t.snapshot).decode() for t in tasks},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a Hugging Face model directory")
    parser.add_argument("--tiny", action="store_true", help="build the tiny HF model (CPU plumbing)")
    parser.add_argument(
        "--size",
        default="cpu",
        choices=("cpu", "gpu", "gpu-100m"),
        help="with --tiny: the built model's size (workers/trainer/tiny_hf.py SIZES; gpu = 24 M parameters)",
    )
    parser.add_argument("--chat", action="store_true", help="the model has a chat template: use it")
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--tasks", type=Path)
    parser.add_argument("--steps", type=int, default=None, help="RL steps (default 20; --tiny 1)")
    parser.add_argument("--sft-steps", type=int, default=None, help="warm-up steps (default 0; --tiny 1)")
    parser.add_argument("--prompts-per-step", type=int, default=4)
    parser.add_argument("--group-size", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="per turn (default 256; --tiny 24)")
    parser.add_argument("--max-turns", type=int, default=None, help="default 10; --tiny 2")
    parser.add_argument("--max-tokens", type=int, default=8192)
    parser.add_argument("--lr", type=float, default=1e-6)
    parser.add_argument("--sft-lr", type=float, default=1e-4, help="the warm-up's learning rate")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--precision", default=None, help="bf16 on a GPU, fp32 on the CPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dump-generations", type=Path, help="write the posted episodes here (JSON lines)")
    args = parser.parse_args()
    tiny = args.tiny or args.model is None
    args.steps = args.steps if args.steps is not None else (1 if tiny else 20)
    args.sft_steps = args.sft_steps if args.sft_steps is not None else (1 if tiny else 0)
    args.max_new_tokens = args.max_new_tokens or (24 if tiny else 256)
    args.max_turns = args.max_turns or (2 if tiny else 10)
    args.precision = args.precision or ("bf16" if args.gpu else "fp32")
    if tiny and args.size == "cpu":
        args.group_size, args.prompts_per_step = min(args.group_size, 2), 1

    os.environ.setdefault("DS_ACCELERATOR", "cuda" if args.gpu else "cpu")
    os.environ.pop("TRIAD_CHECKPOINT_DIR", None)
    os.environ.update(
        {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_SIZE": "1"}
        | {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    )
    from tests.workers.trainer.fake_control import FakeControl
    from workers.trainer.loop import Trainer
    from workers.trainer.spec import parse_spec
    from workers.trainer.tiny_hf import build_tiny_hf

    tasks = load_tasks(args.tasks)
    control = FakeControl(token="bench").start()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = (
            build_tiny_hf(Path(tmp) / "model", size=args.size, max_len=args.max_tokens)
            if tiny
            else args.model
        )
        raw = spec_of(tasks, args, model_dir, control.url)
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(raw))
        trainer = Trainer(parse_spec(raw), spec_path, "bench")
        trainer.on_step = lambda step, m: print(
            step,
            {k: round(v, 3) for k, v in m.items() if k.startswith("repo/") or k in ("loss", "time/step_s")},
            file=sys.stderr,
            flush=True,
        )
        t0 = time.monotonic()
        trainer.run()
        wall = time.monotonic() - t0
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()
    control.stop()
    if args.dump_generations:
        with open(args.dump_generations, "w", encoding="utf-8") as fh:
            for event in control.of_type("generation"):
                fh.write(json.dumps(event) + "\n")
    by_step = {m["step"]: m["values"] for m in control.of_type("metric", "trainer")}
    rl = [by_step[s] for s in sorted(by_step) if s >= args.sft_steps]
    rates = [m["repo/resolve_rate"] for m in rl]
    third = max(1, len(rates) // 3)
    episodes = len(rl) * raw["train"]["prompts_per_step"] * args.group_size
    rl_s = sum(m["time/step_s"] for m in rl)
    tokens = sum(m["length/mean"] * raw["train"]["prompts_per_step"] * args.group_size for m in rl)
    print(
        json.dumps(
            {
                "bench": "episodes_train",
                "model": f"tiny-hf {args.size}" if tiny else str(args.model),
                "device": "gpu" if args.gpu else "cpu",
                "tasks": len(tasks),
                "rl_steps": len(rl),
                "resolve_rate_start": rates[0] if rates else None,
                "resolve_rate_end": rates[-1] if rates else None,
                "resolve_rate_first_third": statistics.fmean(rates[:third]) if rates else None,
                "resolve_rate_last_third": statistics.fmean(rates[-third:]) if rates else None,
                "episodes_per_min": round(60 * episodes / rl_s, 2) if rl_s else None,
                "tokens_per_s": round(tokens / rl_s, 1) if rl_s else None,
                "turns_mean": statistics.fmean(m["repo/turns_mean"] for m in rl) if rl else None,
                "wall_s": round(wall, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
