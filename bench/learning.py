"""Does the trainer learn, and does what it learns carry over to problems it never trained on?

The real ``Trainer`` (DeepSpeed engine, torch rollouts, the sandbox, GRPO, the ingest client posting to
an in-process fake control plane) runs with world size 1 on the CPU, the tiny model. A short SFT
warm-up on the reference solutions gives the random policy enough Python to be scored at all, then
GRPO runs. Two modes:

- ``--mode heldout`` (the default): problems from ``datasets_app.generation`` (``--families``), split
  by problem instance: the last ``--heldout`` are never trained on; the trainer evaluates them every 10
  steps (``eval_protocol codex``, ``eval_k 1``: greedy pass@1). Problems of ``--unseen-families``,
  never trained on at all, are evaluated apart by ``python -m workers.trainer.evaluate`` on the
  checkpoint written as RL starts (the end of the warm-up) and on the final one; the held-out
  instances' start is taken from that first checkpoint too (the policy exactly as RL starts). Each seed
  runs in a child process, then, with ``--control`` (the default), again with each group's rewards
  shuffled among its members (``Trainer.reward_shuffle``): what that run gains is not learning from
  execution.
- ``--mode demo``: the earlier figure, the training pass rate on the 12 bundled demo problems it trains
  on, first against last ten RL steps (docs/benchmarks.md, "Does it learn?").

    .venv/bin/python bench/learning.py [--seeds 0,1,2] [--rl-steps 200] [--sft-steps 200] [--out-dir DIR] ...
    .venv/bin/python bench/learning.py --shuffle-rewards --seeds 0      # the shuffled control only
    .venv/bin/python bench/learning.py --mode demo [--rl-steps 150] [--sft-steps 100] ...

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DATASET = ROOT / "datasets_app" / "data" / "demo_problems.jsonl"
PROBLEM_KEYS = ("task_id", "prompt", "entry_point", "solution", "tests")


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


def _single_rank_env() -> None:
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    os.environ.pop("TRIAD_CHECKPOINT_DIR", None)  # the checkpoints stay in the run's own temp dir
    os.environ.update(
        {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_SIZE": "1"}
        | {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    )


def _train_config(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "steps": args.sft_steps + args.rl_steps,
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
    }


def _model(args: argparse.Namespace) -> dict[str, Any]:
    return {"kind": "tiny", "d_model": args.d_model, "n_layers": args.n_layers, "n_heads": 4, "max_len": 256}


# --------------------------------------------------------------------------- demo mode
def demo(args: argparse.Namespace) -> None:
    """The training pass rate on the demo problems, first against last ten RL steps."""
    _single_rank_env()
    from tests.workers.trainer.fake_control import FakeControl
    from workers.trainer.loop import Trainer
    from workers.trainer.spec import parse_spec

    control = FakeControl(token="bench").start()
    raw = {
        "run_id": 1,
        "name": "learning",
        "control_url": control.url,
        "model": _model(args),
        # checkpoint_every 0: as measured before the default became 50, no checkpoint stalls
        "train": _train_config(args) | {"checkpoint_every": 0},
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
                "config": {k: v for k, v in vars(args).items() if k in DEMO_KEYS},
                "wall_s": round(wall, 1),
            }
        )
    )


DEMO_KEYS = (
    *("rl_steps", "sft_steps", "sft_lr", "lr", "prompts_per_step", "group_size", "temperature"),
    *("max_new_tokens", "beta", "d_model", "n_layers", "seed", "reset_optimizer"),
)


# --------------------------------------------------------------------------- held-out mode
def heldout_problems(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the run's problems, training ones first and the --heldout instances last; the unseen
    families' problems). The same for every seed: --data-seed fixes them."""
    from datasets_app.generation import generate

    def pick(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: r[k] for k in PROBLEM_KEYS} for r in rows]

    families = args.families.split(",")
    unseen = [f for f in args.unseen_families.split(",") if f]
    if overlap := set(families) & set(unseen):
        raise SystemExit(f"--unseen-families: {sorted(overlap)} also trained on (--families)")
    if not 0 < args.heldout < args.problems:
        raise SystemExit(f"--heldout must be between 1 and --problems - 1 ({args.problems - 1})")
    run = pick(list(generate(families=families, n=args.problems, seed=args.data_seed)))
    others = (
        pick(list(generate(families=unseen, n=args.unseen_problems, seed=args.data_seed + 1)))
        if unseen
        else []
    )
    return run, others


def _checkpoint(root: Path, step: int) -> Path:
    found = sorted(root.glob(f"checkpoints/attempt-*/step{step}"))
    if not found:
        raise SystemExit(f"no checkpoint of step {step} under {root / 'checkpoints'}")
    return found[-1]


def _evaluate(spec: dict[str, Any], problems: list[dict[str, Any]], ckpt: Path, tmp: Path) -> float:
    """Greedy pass@1 of the checkpoint on problems, by the standalone evaluation (evaluate.py)."""
    from workers.trainer import evaluate

    path = tmp / f"eval-{ckpt.name}-{len(problems)}-{problems[0]['task_id'].replace('/', '_')}.json"
    # every one of them evaluated: none held back, as the trainer holds back its eval_problems
    alone = spec | {"problems": problems, "train": spec["train"] | {"eval_problems": 0}}
    path.with_suffix(".spec").write_text(json.dumps(alone))
    out = tmp / (path.name + ".out")
    code = evaluate.main(
        ["--spec", str(path.with_suffix(".spec")), "--checkpoint", str(ckpt), "--out", str(out)]
    )
    if code != 0:
        raise SystemExit(f"evaluate.py refused {ckpt}")
    return float(json.loads(out.read_text())["totals"]["eval/pass@1"])


def heldout_child(args: argparse.Namespace) -> None:
    """One seed's run (shuffled with --shuffle-rewards); prints its figures as one JSON line."""
    _single_rank_env()
    import torch.distributed as dist

    from tests.workers.trainer.fake_control import FakeControl
    from workers.trainer.loop import Trainer
    from workers.trainer.spec import parse_spec

    problems, unseen = heldout_problems(args)
    control = FakeControl(token="bench").start()
    train = _train_config(args) | {
        "eval_problems": args.heldout,
        "eval_every": args.eval_every,
        "eval_protocol": "codex",
        "eval_k": 1,
        # the checkpoint at the end of the warm-up is the policy as RL starts; keep every one
        "checkpoint_every": args.sft_steps,
        "checkpoint_keep_last": 1000,
    }
    raw = {
        "run_id": 1,
        "name": "learning-heldout",
        "control_url": control.url,
        "model": _model(args),
        "train": train,
        "resources": {"num_nodes": 1, "procs_per_node": 1, "gpu": False},
        "sandbox": {"timeout_s": 5.0, "memory_mb": 512},
        "problems": problems,
    }
    steps = args.sft_steps + args.rl_steps
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        spec_path = tmp / "spec.json"
        spec_path.write_text(json.dumps(raw))
        t0 = time.monotonic()
        trainer = Trainer(parse_spec(raw), spec_path, "bench")
        trainer.reward_shuffle = args.shuffle_rewards
        if args.verbose:
            trainer.on_step = lambda step, m: print(
                step,
                {k: round(v, 3) for k, v in m.items() if k in ("pass_rate", "loss", "eval/pass@1")},
                file=sys.stderr,
                flush=True,
            )
        trainer.run()
        if dist.is_initialized():
            dist.destroy_process_group()
        train_s = time.monotonic() - t0
        control.stop()
        start_ckpt, end_ckpt = _checkpoint(tmp, args.sft_steps), _checkpoint(tmp, steps)
        heldout = problems[-args.heldout :]
        figures = {
            "heldout_start": _evaluate(raw, heldout, start_ckpt, tmp),
            # the trainer's last evaluation saw these weights too: a check that both evaluators agree
            "heldout_final_checkpoint": _evaluate(raw, heldout, end_ckpt, tmp),
        }
        if unseen:
            figures["families_start"] = _evaluate(raw, unseen, start_ckpt, tmp)
            figures["families_end"] = _evaluate(raw, unseen, end_ckpt, tmp)
        wall = time.monotonic() - t0
    by_step = {m["step"]: m["values"] for m in control.of_type("metric", "trainer")}
    evals = {s: v["eval/pass@1"] for s, v in sorted(by_step.items()) if "eval/pass@1" in v}
    rl_evals = [v for s, v in evals.items() if s >= args.sft_steps]
    rl = [by_step[s]["pass_rate"] for s in sorted(by_step) if s >= args.sft_steps]
    result = figures | {
        "heldout_end": statistics.fmean(rl_evals[-3:]),
        "heldout_curve": {str(s): round(v, 4) for s, v in evals.items()},
        "train_pass_rate_first10": statistics.fmean(rl[:10]),
        "train_pass_rate_last10": statistics.fmean(rl[-10:]),
        "train_s": train_s,
        "wall_s": wall,
    }
    print(json.dumps(result))


RUN_KEYS = (
    *DEMO_KEYS,
    *("families", "unseen_families", "problems", "heldout", "unseen_problems", "data_seed", "eval_every"),
)


def run_child(args: argparse.Namespace, seed: int, shuffled: bool) -> dict[str, Any]:
    """One seed in a child process; its result is kept in --out-dir (when given) and reused from
    there by a later call with the same settings."""
    config = {k: getattr(args, k) for k in RUN_KEYS if k != "seed"} | {"seed": seed, "shuffled": shuffled}
    saved = (
        Path(args.out_dir) / f"seed{seed}-{'shuffled' if shuffled else 'normal'}.json"
        if args.out_dir
        else None
    )
    if saved is not None and saved.exists():
        kept = json.loads(saved.read_text())
        if kept.get("config") == config:
            print(f"seed {seed} {'shuffled' if shuffled else 'normal'}: reused {saved}", file=sys.stderr)
            return dict(kept["result"])
    argv = [
        f"--{k.replace('_', '-')}={v}" for k, v in config.items() if k not in ("shuffled", "reset_optimizer")
    ]
    argv += ["--reset-optimizer" if args.reset_optimizer else "--no-reset-optimizer"]
    argv += ["--child", "--mode", "heldout"] + (["--shuffle-rewards"] if shuffled else [])
    argv += ["--verbose"] if args.verbose else []
    # The child's log (each step's figures with --verbose) beside its result: a long run can be followed.
    if saved is not None:
        log = saved.with_suffix(".log")
    else:
        fd, name = tempfile.mkstemp(suffix=".log")
        os.close(fd)
        log = Path(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w", encoding="utf-8") as err:
        out = subprocess.run(
            [sys.executable, __file__, *argv], stdout=subprocess.PIPE, stderr=err, text=True, check=False
        )
    if out.returncode != 0:
        raise SystemExit(f"seed {seed} ({'shuffled' if shuffled else 'normal'}) failed: see {log}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"seed {seed} {'shuffled' if shuffled else 'normal'}: {json.dumps(result)}",
        file=sys.stderr,
        flush=True,
    )
    if saved is not None:
        saved.parent.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps({"config": config, "result": result}, indent=1))
    return result


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None


def heldout(args: argparse.Namespace) -> None:
    seeds = [int(s) for s in args.seeds.split(",")]
    problems, unseen = heldout_problems(args)
    train, held = problems[: -args.heldout], problems[-args.heldout :]
    # An instance whose reference body is also a training problem's differs from it by name and tests
    # only (a constant-free template: shout, digit_sum...): it measures recall more than generalization.
    seen_bodies = {p["solution"] for p in train}
    modes = [True] if args.shuffle_rewards else [False, True] if args.control else [False]
    runs = {(seed, shuffled): run_child(args, seed, shuffled) for seed in seeds for shuffled in modes}
    normal = [runs[(s, False)] for s in seeds if (s, False) in runs]
    control = [runs[(s, True)] for s in seeds if (s, True) in runs]

    def per_seed(rows: list[dict[str, Any]], key: str) -> list[float]:
        return [round(r[key], 4) for r in rows if key in r]

    def gains(rows: list[dict[str, Any]]) -> list[float]:
        return [round(100 * (r["heldout_end"] - r["heldout_start"]), 1) for r in rows]

    out: dict[str, Any] = {
        "bench": "learning",
        "mode": "heldout",
        "families": args.families,
        "unseen_families": args.unseen_families,
        "train_problems": len(train),
        "heldout_problems": len(held),
        "unseen_problems": len(unseen),
        "heldout_reference_seen_frac": round(sum(p["solution"] in seen_bodies for p in held) / len(held), 4),
        "seeds": seeds,
    }
    if normal:
        start, end = per_seed(normal, "heldout_start"), per_seed(normal, "heldout_end")
        out |= {
            "heldout_start": _median(start),
            "heldout_end": _median(end),
            "heldout_start_per_seed": start,
            "heldout_end_per_seed": end,
            "heldout_gain_points_per_seed": gains(normal),
            "heldout_families_start": _median(per_seed(normal, "families_start")),
            "heldout_families_end": _median(per_seed(normal, "families_end")),
            "heldout_families_start_per_seed": per_seed(normal, "families_start"),
            "heldout_families_end_per_seed": per_seed(normal, "families_end"),
            "heldout_final_checkpoint_per_seed": per_seed(normal, "heldout_final_checkpoint"),
            "train_pass_rate_first10_per_seed": per_seed(normal, "train_pass_rate_first10"),
            "train_pass_rate_last10_per_seed": per_seed(normal, "train_pass_rate_last10"),
            "heldout_curves": [r["heldout_curve"] for r in normal],
        }
    if control:
        shuffled_gain = statistics.median(gains(control))
        out |= {
            "shuffled_gain_points": round(shuffled_gain, 1),
            "shuffled_gain_points_per_seed": gains(control),
            "shuffled_heldout_end_per_seed": per_seed(control, "heldout_end"),
            "shuffled_train_pass_rate_last10_per_seed": per_seed(control, "train_pass_rate_last10"),
            "shuffled_heldout_curves": [r["heldout_curve"] for r in control],
        }
    if normal and control:
        start, end = out["heldout_start"], out["heldout_end"]
        out["passes"] = end >= 1.5 * start and end - start >= 0.10 and out["shuffled_gain_points"] < 3
    out |= {
        "config": {k: getattr(args, k) for k in RUN_KEYS if k != "seed"},
        "wall_s_per_run": {
            f"{seed}{'-shuffled' if shuffled else ''}": round(r["wall_s"], 1)
            for (seed, shuffled), r in runs.items()
        },
        "wall_s": round(sum(r["wall_s"] for r in runs.values()), 1),  # reused runs count their own
    }
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=("heldout", "demo"), default="heldout")
    ap.add_argument("--rl-steps", type=int, default=None, help="heldout: 200, demo: 150")
    ap.add_argument("--sft-steps", type=int, default=None, help="heldout: 200, demo: 100")
    ap.add_argument("--sft-lr", type=float, default=3e-3)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--prompts-per-step", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--max-new-tokens", type=int, default=None, help="heldout: 56, demo: 24")
    ap.add_argument("--beta", type=float, default=0.0)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--n-layers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="demo mode's seed")
    ap.add_argument("--reset-optimizer", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--verbose", action="store_true")
    # held-out mode
    ap.add_argument("--seeds", default="0,1,2", help="the trainer seeds, one child process each")
    ap.add_argument("--families", default="arithmetic,strings", help="trained on, and held out by instance")
    ap.add_argument("--unseen-families", default="lists", help="never trained on ('' for none)")
    ap.add_argument(
        "--problems", type=int, default=128, help="problems of --families, held-out ones included"
    )
    ap.add_argument("--heldout", type=int, default=32, help="the last N of them are never trained on")
    ap.add_argument("--unseen-problems", type=int, default=32)
    ap.add_argument(
        "--data-seed", type=int, default=0, help="generate()'s seed: the same problems every seed"
    )
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument(
        "--shuffle-rewards",
        action="store_true",
        help="run only the control: each group's rewards shuffled among its members",
    )
    ap.add_argument(
        "--control",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run the shuffled control for the same seeds",
    )
    ap.add_argument("--out-dir", default="", help="keep each run's result here, and reuse it")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    held = args.mode == "heldout"
    for name, heldout_default, demo_default in (
        ("rl_steps", 200, 150),
        ("sft_steps", 200, 100),
        ("max_new_tokens", 56, 24),
    ):
        if getattr(args, name) is None:
            setattr(args, name, heldout_default if held else demo_default)
    if not held:
        demo(args)
    elif args.child:
        heldout_child(args)
    else:
        heldout(args)


if __name__ == "__main__":
    main()
