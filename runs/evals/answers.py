"""A node's answers to `evals.execute`, and writing them: what the control queue's `evals.record` does
(docs/evals.md), and what it does about a node gone silent (`evals.reap_lost`). A node's result is
checked field by field before it is stored: pages show exactly it."""

import datetime as dt
import math
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from runs.evals.models import EvalJob, EvalJobStatus

ERROR_MAX = 4000  # a node's error kept (its stderr's end already)


def eval_job_record(*, job_id: int, answer: dict[str, Any]) -> bool:
    """Write a node's answer: "running" moves a queued job on (and, repeated by the node that has it,
    keeps it alive: eval_job_reap_lost); "succeeded" (with its result) or "failed"
    (with why) ends a queued or running one. Idempotent: a repeat or a late answer changes nothing
    (False)."""
    node = str(answer.get("node") or "")[:200]
    state = answer.get("state")
    now = timezone.now()
    if state == EvalJobStatus.RUNNING:
        started = EvalJob.objects.filter(pk=job_id, status=EvalJobStatus.QUEUED).update(
            status=EvalJobStatus.RUNNING, node=node, started_at=now, last_heartbeat_at=now
        )
        if not started:  # the node that has it, saying it is still at it (the lost-job reaper reads it)
            EvalJob.objects.filter(pk=job_id, status=EvalJobStatus.RUNNING, node=node).update(
                last_heartbeat_at=now
            )
        return bool(started)
    if state == EvalJobStatus.SUCCEEDED:
        try:
            result = eval_result_clean(answer.get("result"))
        except ValueError as exc:
            return eval_job_fail(job_id=job_id, error=f"the node's result is malformed: {exc}", node=node)
        return bool(
            EvalJob.objects.filter(
                pk=job_id, status__in=(EvalJobStatus.QUEUED, EvalJobStatus.RUNNING)
            ).update(
                status=EvalJobStatus.SUCCEEDED,
                result=result,
                error="",
                node=node,
                started_at=Coalesce("started_at", now),
                finished_at=now,
            )
        )
    error = (
        str(answer.get("error") or "") if state == EvalJobStatus.FAILED else f"an unknown answer {state!r}"
    )
    return eval_job_fail(job_id=job_id, error=error or "the node failed without saying why", node=node)


def eval_job_fail(*, job_id: int, error: str, node: str = "") -> bool:
    waiting = Q(status__in=(EvalJobStatus.QUEUED, EvalJobStatus.RUNNING))
    return bool(
        EvalJob.objects.filter(waiting, pk=job_id).update(
            status=EvalJobStatus.FAILED, error=error[:ERROR_MAX], node=node, finished_at=timezone.now()
        )
    )


def eval_job_reap_lost(*, timeout_s: float | None = None) -> list[int]:
    """Fail every running job whose node has sent no word (it says it is still evaluating every
    TRIAD_NODE_HEARTBEAT_S) for the timeout: its worker died, or was killed, mid-job — `evals.execute` is
    acked when it starts, so nothing would deliver it again and it would stay running for ever. Each
    failure is a conditional update on the silence, so a word that arrives meanwhile keeps the job."""
    timeout = settings.TRIAD_EVAL_LOST_AFTER_S if timeout_s is None else timeout_s
    cutoff = timezone.now() - dt.timedelta(seconds=timeout)
    silent = Q(last_heartbeat_at__lt=cutoff) | Q(last_heartbeat_at__isnull=True, started_at__lt=cutoff)
    reaped = []
    for job_id, node in list(
        EvalJob.objects.filter(silent, status=EvalJobStatus.RUNNING).values_list("pk", "node")
    ):
        error = (
            f"no word from node {node or '(unnamed)'} for {timeout:.0f} s: its worker stopped while "
            "evaluating (it died or was killed); evaluate it again"
        )
        failed = EvalJob.objects.filter(silent, pk=job_id, status=EvalJobStatus.RUNNING).update(
            status=EvalJobStatus.FAILED, error=error, finished_at=timezone.now()
        )
        if failed:
            reaped.append(job_id)
    return reaped


def _number(value: Any, what: str, *, nullable: bool = False) -> float | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} must be a number, got {str(value)[:40]!r}")
    return float(value)


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a count, got {str(value)[:40]!r}")
    return value


def eval_result_clean(raw: Any) -> dict[str, Any]:
    """The node's result (workers.trainer.evaluate's JSON), each field checked: what pages show of it
    is exactly what is stored."""
    if not isinstance(raw, dict):
        raise ValueError("the result must be an object")
    k = _count(raw.get("k"), "k")
    problems, totals = raw.get("problems"), raw.get("totals")
    if not isinstance(problems, list) or not isinstance(totals, dict):
        raise ValueError("the result needs problems (a list) and totals (an object)")
    rows = []
    for i, p in enumerate(problems):
        if not isinstance(p, dict) or not isinstance(p.get("task_id"), str):
            raise ValueError(f"problems[{i}] needs a task_id")
        greedy = p.get("greedy_passed")
        rows.append(
            {
                "task_id": p["task_id"][:200],
                "n": _count(p.get("n"), f"problems[{i}].n"),
                "passed": _count(p.get("passed"), f"problems[{i}].passed"),
                "greedy_passed": greedy if isinstance(greedy, bool) else None,
                "sandbox_errors": _count(p.get("sandbox_errors"), f"problems[{i}].sandbox_errors"),
                "pass@1": _number(p.get("pass@1"), f"problems[{i}].pass@1", nullable=True),
                f"pass@{k}": _number(p.get(f"pass@{k}"), f"problems[{i}].pass@{k}", nullable=True),
                "unscored": bool(p.get("unscored")),
            }
        )
    return {
        "protocol": str(raw.get("protocol") or "")[:16],
        "samples": _count(raw.get("samples") or 0, "samples"),
        "temperature": _number(raw.get("temperature"), "temperature", nullable=True),
        "k": k,
        "checkpoint": str(raw.get("checkpoint") or "")[:1000],
        "problems": rows,
        "totals": {str(key)[:100]: _number(value, f"totals.{key}") for key, value in totals.items()},
    }
