"""Celery tasks of the registry: the node inspects, the control plane records — as nodes.register does,
since a GPU node holds no database credentials (docs/models.md)."""

from typing import Any

from celery import shared_task

# Reading headers takes milliseconds; a hung network filesystem should not hold a GPU worker for long.
INSPECT_TIME_LIMIT_S = 120


@shared_task(
    name="models.inspect",
    bind=True,
    ignore_result=True,
    acks_late=True,
    soft_time_limit=INSPECT_TIME_LIMIT_S,
    time_limit=INSPECT_TIME_LIMIT_S + 10,
)
def model_inspect_task(self: Any, model_id: int, source: str, tokenizer: str | None) -> None:
    """On a `gpu.<pool>` worker: read the model from this node's disks and cache, and send the answer
    to the control queue. Read-only, so a redelivery is harmless (acks_late)."""
    from runs.registry.inspection import ModelAnswer
    from workers.model_info import ModelRefused, inspect_model

    node = self.request.hostname or ""
    try:
        answer = ModelAnswer(info=inspect_model(source, tokenizer=tokenizer).as_dict(), node=node)
    except ModelRefused as exc:
        answer = ModelAnswer(error=str(exc), node=node)
    except Exception as exc:  # anything else would leave the row pending for ever
        answer = ModelAnswer(error=f"the node could not inspect it: {type(exc).__name__}: {exc}", node=node)
    model_record_task.delay(model_id, answer.as_dict())


@shared_task(name="models.record", ignore_result=True, acks_late=True)
def model_record_task(model_id: int, answer: dict[str, Any]) -> None:
    """Control queue: write a node's answer. Idempotent (only a pending row takes one)."""
    from runs.registry.inspection import ModelAnswer, model_record

    model_record(model_id=model_id, answer=ModelAnswer.from_dict(answer))
