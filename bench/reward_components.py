"""What the reward components and the HumanEval evaluation cost, against the sandbox verdict they sit beside.

On HumanEval's 164 problems, with the canonical solutions as the completions, in the same run:

- anchor: the sandbox verdict of every completion (`run_batch`, default backend, cold, cache off);
- `static_ratio`: style + format scoring of the same completions (parse cache cleared) ÷ the anchor;
  also how many canonical solutions have a style finding (they should be few: false alarms);
- `reference_s`: timing every reference solution for `efficiency` (3 sandbox runs each, once per
  problem per trainer process), and the spread of the references' `cpu_ms`;
- `eval_s`: one HumanEval evaluation as a run's default settings would do it on one CPU rank
  (`--eval-problems` 20 × `--eval-samples` 8 completions of `--new-tokens` 48 from the tiny model, then
  the sandbox), and `eval_ratio` = that ÷ one demo-recipe RL rollout (4 prompts × 8 samples × 24 tokens).

    .venv/bin/python bench/reward_components.py [--eval-problems 20] [--eval-samples 8] [--new-tokens 48]

Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval-problems", type=int, default=20)
    ap.add_argument("--eval-samples", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=48)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from workers.sandbox import Item, Limits, run_batch
    from workers.trainer.eval_sets import load_eval_set
    from workers.trainer.model import build_tiny_model
    from workers.trainer.reward_components import (
        REFERENCE_RUNS,
        ReferenceTimes,
        format_score,
        parse_program,
        style_report,
    )
    from workers.trainer.rewards import score_completions
    from workers.trainer.rollout import TorchEngine
    from workers.trainer.spec import SandboxSpec
    from workers.trainer.tokenizer import ByteTokenizer

    problems = load_eval_set("humaneval")
    limits = Limits(timeout_s=10.0)
    items = [Item(p.task_id, p.prompt + p.solution, p.tests, p.entry_point) for p in problems]

    t0 = time.perf_counter()
    verdicts = run_batch(items, limits, cache=False)
    sandbox_s = time.perf_counter() - t0

    parse_program.cache_clear()
    t0 = time.perf_counter()
    reports = [style_report(p.prompt, p.solution, p.entry_point, p.solution) for p in problems]
    formats = [format_score(p.prompt, p.solution, p.entry_point) for p in problems]
    static_s = time.perf_counter() - t0

    times = ReferenceTimes()
    t0 = time.perf_counter()
    times.ensure(problems, item_cls=Item, limits=limits, run_batch=run_batch)
    reference_s = time.perf_counter() - t0
    ref_ms = sorted(ms for p in problems if (ms := times.get(p.task_id)) is not None)

    tok = ByteTokenizer()
    model = build_tiny_model(tok.vocab_size, d_model=64, n_layers=2, n_heads=4, max_len=512, seed=0).eval()

    def logits_fn(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = model(ids, mask)
        return out

    engine = TorchEngine(logits_fn, tok, device=torch.device("cpu"), max_len=512)
    chosen = problems[: args.eval_problems]
    rows = 64  # workers.trainer.eval_protocol.EVAL_ROWS
    per_call = max(1, rows // args.eval_samples)
    t0 = time.perf_counter()
    passed = 0
    for start in range(0, len(chosen), per_call):
        chunk = chosen[start : start + per_call]
        groups = engine.generate(
            [p.prompt for p in chunk], args.eval_samples, args.new_tokens, 1.0, seed=start
        )
        scores = score_completions(
            chunk, [[c.text for c in g] for g in groups], sandbox=SandboxSpec(), partial_credit=False
        )
        passed += sum(s.passed for g in scores for s in g)
    eval_s = time.perf_counter() - t0

    demo = problems[:4]
    t0 = time.perf_counter()
    engine.generate([p.prompt for p in demo], 8, 24, 1.0, seed=0)
    rollout_s = time.perf_counter() - t0

    n = len(problems)
    figures = {
        "problems": n,
        "sandbox_ms_per_sample": round(1000 * sandbox_s / n, 3),
        "static_ms_per_sample": round(1000 * static_s / n, 3),
        "static_ratio": round(static_s / sandbox_s, 4),
        "canonical_all_passed": all(v.passed for v in verdicts),
        "canonical_with_style_findings": sum(bool(r.findings) for r in reports),
        "canonical_format_ok": int(sum(formats)),
        "reference_runs": REFERENCE_RUNS,
        "reference_s": round(reference_s, 2),
        "reference_timed": len(ref_ms),
        "reference_cpu_ms_median": round(statistics.median(ref_ms), 3) if ref_ms else None,
        "reference_cpu_ms_p90": round(ref_ms[int(0.9 * (len(ref_ms) - 1))], 3) if ref_ms else None,
        "reference_cpu_ms_max": round(ref_ms[-1], 3) if ref_ms else None,
        "eval_problems": len(chosen),
        "eval_samples": args.eval_samples,
        "eval_new_tokens": args.new_tokens,
        "eval_s": round(eval_s, 2),
        "eval_passed": passed,
        "demo_rollout_s": round(rollout_s, 2),
        "eval_ratio": round(eval_s / rollout_s, 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
