"""How well does the execution-outcome critic predict the sandbox, and how much sandbox time does it save?

The real ``Trainer`` (world size 1, CPU, the tiny model, the sandbox, an in-process fake control plane)
runs on the bundled demo dataset twice with the same seed, each in a child process:

- **shadow**: ``critic: true``. Every sample still runs; the critic predicts each one before it learns
  from its verdict. Gives the critic's honest accuracy (against the base rate of the same samples),
  calibration, and ``savable_frac``: the share of sandbox calls it was sure of (≥ τ) and right about.
  Its sandbox seconds are the anchor.
- **skip**: ``critic_skip: true`` at τ, auditing ``--audit-frac`` of the sure samples and skipping at
  most ``--max-skip-frac`` of a step. Gives the sandbox seconds actually spent, the share skipped and
  the audited error rate.

Both runs start with the same SFT warm-up (no sampling, identical), then RL with the critic. Sandbox
seconds per step are ``time/reward_s - time/critic_s`` (the scoring step without the critic's own work);
the sandbox's result cache is on, as in a real run, so repeated completions cost nothing either way.

``--seeds 0,1,2`` repeats the pair for each seed: skip on against off (shadow never changes the policy,
so it is the run without skipping) on the pass rate and reward mean of the last 10 RL steps (the skip
run's include its skipped samples' predicted verdicts and imputed scores) and the sandbox seconds saved,
per seed and as medians. ``--skip-scoring``, ``--partial-credit`` and ``--reward-efficiency`` set
``critic_skip_scoring``, ``partial_credit`` and ``reward_efficiency`` (docs/trainer.md).

    .venv/bin/python bench/critic.py [--seeds 0,1,2] [--rl-steps 60] [--sft-steps 100] [--threshold 0.95] ...

Last line: one JSON object with the figures (one seed: that seed's, at the top level as before).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.learning import DATASET, free_port, load_problems  # noqa: E402


def child(args: argparse.Namespace) -> None:
    """One trainer run; prints the RL steps' metrics as one JSON line."""
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    os.environ.update(
        {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "LOCAL_SIZE": "1"}
        | {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())}
    )
    from tests.workers.trainer.fake_control import FakeControl
    from workers.trainer.loop import Trainer
    from workers.trainer.spec import parse_spec

    control = FakeControl(token="bench").start()
    train: dict[str, Any] = {
        "steps": args.sft_steps + args.rl_steps,
        "prompts_per_step": args.prompts_per_step,
        "group_size": args.group_size,
        "lr": args.lr,
        "seed": args.seed,
        "max_new_tokens": args.max_new_tokens,
        "sft_warmup_steps": args.sft_steps,
        "sft_lr": args.sft_lr,
        "critic": True,
        "critic_skip": args.child == "skip",
        "critic_threshold": args.threshold,
        "critic_audit_frac": args.audit_frac,
        "critic_max_skip_frac": args.max_skip_frac,
        "critic_min_labels": args.min_labels,
        "critic_skip_scoring": args.skip_scoring,
        "partial_credit": args.partial_credit,
        "reward_efficiency": args.reward_efficiency,
    }
    raw = {
        "run_id": 1,
        "name": f"critic-{args.child}",
        "control_url": control.url,
        "model": {"kind": "tiny", "d_model": 64, "n_layers": 2, "n_heads": 4, "max_len": 256},
        "train": train,
        "resources": {"num_nodes": 1, "procs_per_node": 1, "gpu": False},
        "sandbox": {"timeout_s": 5.0, "memory_mb": 512},
        "problems": load_problems(DATASET),
    }
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(raw))
        t0 = time.monotonic()
        Trainer(parse_spec(raw), spec_path, "bench").run()
        wall = time.monotonic() - t0
    control.stop()
    from workers.sandbox.batch import RESULT_CACHE

    steps = {m["step"]: m["values"] for m in control.of_type("metric", "trainer")}
    rl = [steps[s] for s in sorted(steps) if s >= args.sft_steps]
    # Programs the sandbox really ran (cache misses) and answered from its cache: only RL scores.
    runs = {"executed": RESULT_CACHE.misses, "cache_hits": RESULT_CACHE.hits}
    print(json.dumps({"wall_s": wall, "steps": rl, "sandbox": runs}))


def run_child(mode: str, argv: list[str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, *argv], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{mode} run failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _mean(rows: list[dict[str, float]], key: str) -> float | None:
    values = [r[key] for r in rows if key in r]
    return round(statistics.fmean(values), 4) if values else None


def sandbox_s(rows: list[dict[str, float]]) -> float:
    return sum(r["time/reward_s"] - r.get("time/critic_s", 0.0) for r in rows)


def critic_s(rows: list[dict[str, float]]) -> float:
    return sum(r.get("time/critic_s", 0.0) for r in rows)


def compare(args: argparse.Namespace, argv: list[str], seed: int) -> dict[str, Any]:
    """Shadow and skip runs with this seed, and their figures."""
    argv = [*argv, "--seed", str(seed)]  # argparse keeps the last --seed
    shadow = run_child("shadow", argv)
    skip = run_child("skip", argv)

    rows = shadow["steps"][args.warm_steps :]
    labels = sum(r.get("critic/labels", 0.0) for r in rows)
    accuracy = sum(r["critic/accuracy"] * r["critic/labels"] for r in rows) / labels
    base = sum(r["critic/base_rate"] * r["critic/labels"] for r in rows) / labels
    majority = max(base, 1 - base)
    audited = sum(r.get("critic/audited", 0.0) for r in skip["steps"])
    audit_wrong = sum(
        r.get("critic/audit_error_rate", 0.0) * r.get("critic/audited", 0.0) for r in skip["steps"]
    )
    shadow_s, skip_s = sandbox_s(shadow["steps"]), sandbox_s(skip["steps"])
    skip_critic_s = critic_s(skip["steps"])
    samples = args.prompts_per_step * args.group_size * len(skip["steps"])
    skipped = (
        sum(r.get("critic/skipped_frac", 0.0) for r in skip["steps"])
        * args.prompts_per_step
        * args.group_size
    )
    return {
        "seed": seed,
        "critic_steps_measured": len(rows),
        "accuracy": round(accuracy, 4),
        "base_rate": round(base, 4),
        "majority_baseline": round(majority, 4),
        "accuracy_over_majority": round(accuracy - majority, 4),
        "precision": _mean(rows, "critic/precision"),
        "recall": _mean(rows, "critic/recall"),
        "brier": _mean(rows, "critic/brier"),
        "ece": _mean(rows, "critic/ece"),
        "savable_frac": _mean(rows, "critic/savable_frac"),
        "sandbox_calls_skipped_frac": round(skipped / samples, 4),
        "skip_audited": int(audited),
        "skip_audit_error_rate": round(audit_wrong / audited, 4) if audited else None,
        # steps that could have skipped but the guard held back (too few or too wrong)
        "skip_paused_steps": int(sum(r.get("critic/skip_paused", 0.0) for r in skip["steps"])),
        "skip_max_confident_error_rate": max(
            (r["critic/confident_error_rate"] for r in skip["steps"] if "critic/confident_error_rate" in r),
            default=None,
        ),
        "sandbox_executed_shadow": shadow["sandbox"]["executed"],
        "sandbox_executed_skip": skip["sandbox"]["executed"],
        "sandbox_executions_saved_frac": round(
            1 - skip["sandbox"]["executed"] / shadow["sandbox"]["executed"], 4
        ),
        "sandbox_cache_hits_shadow": shadow["sandbox"]["cache_hits"],
        "sandbox_cache_hits_skip": skip["sandbox"]["cache_hits"],
        "sandbox_s_shadow": round(shadow_s, 2),
        "sandbox_s_skip": round(skip_s, 2),
        "sandbox_s_saved": round(shadow_s - skip_s, 2),
        "sandbox_time_saved_frac": round(1 - skip_s / shadow_s, 4) if shadow_s else None,
        "critic_s_shadow": round(critic_s(shadow["steps"]), 2),
        "critic_s_skip": round(skip_critic_s, 2),
        # scoring with the critic skipping (its own work included) ÷ scoring without a critic
        "ratio_scoring_skip_vs_no_critic": round((skip_s + skip_critic_s) / shadow_s, 4)
        if shadow_s
        else None,
        "pass_rate_last10_shadow": _mean(shadow["steps"][-10:], "pass_rate"),
        "pass_rate_last10_skip": _mean(skip["steps"][-10:], "pass_rate"),
        "reward_mean_last10_shadow": _mean(shadow["steps"][-10:], "reward/mean"),
        "reward_mean_last10_skip": _mean(skip["steps"][-10:], "reward/mean"),
        "wall_s": round(shadow["wall_s"] + skip["wall_s"], 1),
    }


# Skip on against off, per seed: their medians over the seeds.
COMPARED = (
    "pass_rate_last10_shadow",
    "pass_rate_last10_skip",
    "reward_mean_last10_shadow",
    "reward_mean_last10_skip",
    "sandbox_s_saved",
    "sandbox_time_saved_frac",
    "sandbox_executions_saved_frac",
    "sandbox_calls_skipped_frac",
    "skip_audit_error_rate",
    "accuracy",
)


def medians(per_seed: list[dict[str, Any]]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in COMPARED:
        values = [r[key] for r in per_seed if r[key] is not None]
        out[key] = round(statistics.median(values), 4) if values else None
    diffs = [
        r["pass_rate_last10_skip"] - r["pass_rate_last10_shadow"]
        for r in per_seed
        if r["pass_rate_last10_skip"] is not None and r["pass_rate_last10_shadow"] is not None
    ]
    out["pass_rate_last10_skip_minus_shadow"] = round(statistics.median(diffs), 4) if diffs else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rl-steps", type=int, default=60)
    ap.add_argument("--sft-steps", type=int, default=100)
    ap.add_argument("--sft-lr", type=float, default=3e-3)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--prompts-per-step", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)  # one child's; see --seeds
    ap.add_argument("--seeds", default="0", help="comma-separated seeds, one shadow and skip pair each")
    ap.add_argument("--threshold", type=float, default=0.95)
    ap.add_argument("--audit-frac", type=float, default=0.1)
    ap.add_argument("--max-skip-frac", type=float, default=0.5)
    ap.add_argument("--min-labels", type=int, default=256)
    ap.add_argument("--skip-scoring", choices=["baseline", "train"], default="baseline")
    ap.add_argument("--partial-credit", action="store_true")
    ap.add_argument("--reward-efficiency", type=float, default=0.0, help="weight of the efficiency reward")
    ap.add_argument("--warm-steps", type=int, default=10, help="RL steps left out of the critic's figures")
    ap.add_argument("--child", choices=["shadow", "skip"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    try:
        seeds = [int(x) for x in args.seeds.split(",") if x.strip()]
    except ValueError:
        raise SystemExit(f"--seeds: comma-separated integers, got {args.seeds!r}") from None
    if not seeds:
        raise SystemExit("--seeds: at least one seed")
    per_seed = []
    for seed in seeds:
        per_seed.append(compare(args, list(sys.argv[1:]), seed))
        print(json.dumps(per_seed[-1]), file=sys.stderr, flush=True)  # progress: a seed takes minutes
    config = {k: v for k, v in vars(args).items() if k not in ("child", "seed")}
    head = {"bench": "critic", "dataset": DATASET.name, "rl_steps": args.rl_steps}
    if len(seeds) == 1:
        print(json.dumps(head | per_seed[0] | {"config": config}))
        return
    print(
        json.dumps(
            head
            | {
                "seeds": seeds,
                "median": medians(per_seed),
                "per_seed": per_seed,
                "config": config,
                "wall_s": round(sum(r["wall_s"] for r in per_seed), 1),
            }
        )
    )


if __name__ == "__main__":
    main()
