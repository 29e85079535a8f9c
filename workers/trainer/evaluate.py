"""Evaluate a model without training it, on a node: the spec's model (the tiny one or a Hugging Face
checkpoint), or the weights of a run's checkpoint, on the spec's problems or its evaluation set, by the
spec's evaluation protocol (eval_protocol.py) — the trainer's own sampling and scoring, one process, no
DeepSpeed engine, no control plane.

    python -m workers.trainer.evaluate --spec spec.json [--checkpoint DIR] --out result.json

DIR is a checkpoint directory (`.../attempt-1/step40`), an attempt directory or a run's checkpoint root
(its newest checkpoint). The result (JSON, written atomically) holds each problem's task_id, n, passed,
pass@1, pass@k and unscored, and the totals under the same metric names as the trainer's
(docs/trainer.md, "Standalone evaluation")."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from workers.trainer.checkpoints import checkpoint_to_load, consolidated_weights
from workers.trainer.engine import load_policy, rollout_engine, with_lora
from workers.trainer.eval_protocol import (
    ProblemCounts,
    eval_plan,
    evaluate_problems,
    score_pass_fail,
    unscored_message,
)
from workers.trainer.eval_sets import load_eval_set
from workers.trainer.logprobs import tiny_logits_fn
from workers.trainer.metrics import pass_metrics
from workers.trainer.prompting import build_prompt, stop_strings
from workers.trainer.rollout import Completion, RolloutEngine
from workers.trainer.spec import Problem, RunSpec, load_spec
from workers.trainer.tokenizer import HFTokenizer

SEED_SALT = 7_777_777  # the trainer's held-out evaluation adds the same to its seed


def load_model(spec: RunSpec, checkpoint: Path | None, device: torch.device) -> tuple[Any, Any, int]:
    """(policy, tokenizer, longest sequence): the spec's model as the trainer builds it (a LoRA run's
    with its adapters), holding a checkpoint's weights when one is given."""
    torch.manual_seed(spec.train.seed)
    model, tokenizer, max_len = load_policy(spec, device)
    if checkpoint is not None:
        model = with_lora(model, spec.train, hf=spec.model.kind == "hf")
        attempt_dir, tag = checkpoint_to_load(checkpoint)
        state = consolidated_weights(attempt_dir, tag)
        missing, unexpected = model.load_state_dict(state, strict=False)
        # A tied output head is one tensor under two names; the checkpoint may hold it under either.
        tied = bool(getattr(getattr(model, "config", None), "tie_word_embeddings", False))
        untied = [k for k in missing if not (tied and k.endswith("lm_head.weight"))]
        if untied or unexpected:
            raise ValueError(
                f"--checkpoint: {attempt_dir / tag} does not fit the spec's model: missing {untied[:5]}, "
                f"unexpected {list(unexpected)[:5]}"
            )
        tie: Any = getattr(
            model, "tie_weights", None
        )  # a transformers model's; the tiny one shares its tensor
        if callable(tie):
            tie()
    return model.eval(), tokenizer, max_len


def problems_to_evaluate(spec: RunSpec, on: str) -> tuple[str, tuple[Problem, ...]]:
    """(what they are, the problems): "problems" the spec's, "eval_set" its evaluation set's first
    eval_set_problems, "auto" the evaluation set when the spec names one, else its problems."""
    train = spec.train
    if on == "auto":
        on = "eval_set" if train.eval_set != "none" else "problems"
    if on == "eval_set":
        if train.eval_set == "none":
            raise ValueError("--on eval_set: the spec's train.eval_set is none")
        return train.eval_set, load_eval_set(train.eval_set, train.eval_set_problems)
    return "problems", spec.problems


def evaluate(
    spec: RunSpec, problems: Sequence[Problem], rollout: RolloutEngine, tokenizer: Any
) -> list[ProblemCounts]:
    """Every problem evaluated by the spec's protocol with the trainer's functions."""
    train, model = spec.train, spec.model
    template = tokenizer if isinstance(tokenizer, HFTokenizer) else None

    def sample(chunk: Sequence[Problem], n: int, temperature: float, seed: int) -> list[list[Completion]]:
        return rollout.generate(
            [build_prompt(p, chat=model.chat, tokenizer=template) for p in chunk],
            n,
            train.max_new_tokens,
            temperature,
            seed=seed,
            stops=[stop_strings(p, model) for p in chunk],
        )

    return evaluate_problems(
        problems,
        eval_plan(train),
        sample=sample,
        score=lambda chunk, groups: score_pass_fail(chunk, groups, sandbox=spec.sandbox, chat=model.chat),
        seed=train.seed * 1_000_003 + SEED_SALT,
    )


def result(
    spec: RunSpec, counts: Sequence[ProblemCounts], *, evaluated: str, checkpoint: Path | None
) -> dict[str, Any]:
    """The JSON result: the protocol, each problem's counts and estimates, and the totals (named as the
    trainer's eval/ metrics, prefix "eval")."""
    train = spec.train
    k = train.eval_k
    plan = eval_plan(train)
    return {
        "spec": {"run_id": spec.run_id, "name": spec.name, "model": spec.model.path or spec.model.kind},
        "checkpoint": str(checkpoint) if checkpoint is not None else None,
        "evaluated": evaluated,
        "protocol": train.eval_protocol,
        "greedy": plan.greedy,
        "samples": plan.samples,
        "temperature": plan.temperature if plan.samples else None,
        "k": k,
        "problems": [
            {
                "task_id": c.task_id,
                "n": c.n,
                "passed": c.passed,
                "greedy_passed": bool(c.greedy[1]) if c.greedy is not None and c.greedy[0] else None,
                "sandbox_errors": c.errors,
                "pass@1": c.pass_at(1),
                f"pass@{k}": c.pass_at(k),
                "unscored": c.unscored,
            }
            for c in counts
        ],
        "totals": pass_metrics(counts, k, "eval"),
    }


def write_json(path: Path, value: Any) -> None:
    """Written beside `path` and renamed into place: a reader never sees half a result."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workers.trainer.evaluate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--spec", required=True, type=Path, help="the run spec (JSON), as the trainer reads it"
    )
    parser.add_argument("--checkpoint", type=Path, default=None, help="a checkpoint, attempt dir or root")
    parser.add_argument("--out", required=True, type=Path, help="where the JSON result is written")
    parser.add_argument(
        "--on", choices=("auto", "problems", "eval_set"), default="auto", help="default: the eval set if any"
    )
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
        device = torch.device("cuda" if spec.resources.gpu and torch.cuda.is_available() else "cpu")
        evaluated, problems = problems_to_evaluate(spec, args.on)
        model, tokenizer, max_len = load_model(spec, args.checkpoint, device)
    except (OSError, ValueError, RuntimeError) as exc:  # RuntimeError: an eval set not installed here
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    hf = spec.model.kind == "hf"
    # One process: no other rank to keep in step with (ZeRO-3's lock-step sampling is the trainer's).
    single = dataclasses.replace(spec, train=dataclasses.replace(spec.train, zero_stage=0))
    rollout = rollout_engine(
        single,
        tiny_logits_fn(model, hf=hf),
        tokenizer,
        device=device,
        max_len=max_len,
        policy=model,
        forward=model,
    )
    with torch.no_grad():
        counts = evaluate(spec, problems, rollout, tokenizer)
    if message := unscored_message(counts, evaluated):
        print(f"warning: {message}", file=sys.stderr)
    out = result(spec, counts, evaluated=evaluated, checkpoint=args.checkpoint)
    write_json(args.out, out)
    print(json.dumps(out["totals"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
