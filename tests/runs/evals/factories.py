"""Evaluation jobs in each state, and a node's result as workers.trainer.evaluate writes it."""

from typing import Any

from runs.evals.models import EvalJob, EvalJobStatus
from tests.factories import DatasetVersionFactory, RegisteredModelFactory

KEPT = {"kept": [{"attempt": 1, "step": 4, "tag": "step4", "bytes": 10, "why": ["last"]}], "used_bytes": 10}


def node_result(problems: list[tuple[str, int, int, bool]], k: int = 2) -> dict[str, Any]:
    """A result of (task_id, n, passed, unscored) rows; pass@1 = passed / n (sampled protocol) and the
    totals averaged over the scored problems, by hand."""
    rows = [
        {
            "task_id": task_id,
            "n": n,
            "passed": passed,
            "greedy_passed": None,
            "sandbox_errors": n if unscored else 0,
            "pass@1": None if unscored else passed / n,
            f"pass@{k}": None,
            "unscored": unscored,
        }
        for task_id, n, passed, unscored in problems
    ]
    scored = [r for r in rows if not r["unscored"]]
    totals = {"eval/problems": float(len(scored)), "eval/problems_unscored": float(len(rows) - len(scored))}
    if scored:
        totals["eval/pass@1"] = sum(r["pass@1"] for r in scored) / len(scored)
        totals["eval/n_min"] = float(min(r["n"] for r in scored))
    return {
        "protocol": "sampled",
        "samples": 4,
        "temperature": 0.8,
        "k": k,
        "problems": rows,
        "totals": totals,
    }


def eval_job(user, *, status=EvalJobStatus.QUEUED, result=None, **fields) -> EvalJob:
    """A job of `user`'s team evaluating a ready model on a dataset version."""
    fields.setdefault("model", RegisteredModelFactory(registered_by=user))
    fields.setdefault("dataset_version", DatasetVersionFactory(dataset__created_by=user))
    return EvalJob.objects.create(
        team=fields["model"].team,
        created_by=user,
        eval_protocol="sampled",
        eval_samples=4,
        eval_k=2,
        max_new_tokens=48,
        pool="cpu",
        status=status,
        result=result or {},
        **fields,
    )
