"""Celery tasks of the registry: the node inspects (or exports a run's checkpoint), the control plane
records — as nodes.register does, since a GPU node holds no database credentials (docs/models.md) — and
the sending of the node's jobs to the pool's queue."""

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


# Gathering and writing a large model's weights takes minutes; an hour covers tens of billions of
# parameters on shared storage, and a worker stuck longer should give the GPU queue back.
EXPORT_TIME_LIMIT_S = 3600


@shared_task(
    name="models.export",
    bind=True,
    ignore_result=True,
    acks_late=True,
    soft_time_limit=EXPORT_TIME_LIMIT_S,
    time_limit=EXPORT_TIME_LIMIT_S + 60,
)
def model_export_task(self: Any, model_id: int, run_id: int, dtype: str) -> None:
    """On a `gpu.<pool>` worker: write the run's newest checkpoint as a Hugging Face model next to its
    checkpoints (workers/export.py; under TRIAD_CHECKPOINT_DIR/run-<id>, which every node of the pool
    mounts, or a run's from before it in its work dir) and send the answer to the control queue. A
    redelivery finds the export already written and answers with it (acks_late)."""
    from pathlib import Path

    from django.conf import settings

    from runs.registry.exporting import ExportAnswer
    from workers.export import ExportRefused, checkpoint_root, export_checkpoint

    node = self.request.hostname or ""
    workdir = Path(settings.TRIAD_RUNS_DIR) / str(run_id)
    root = checkpoint_root(run_id, shared=Path(settings.TRIAD_CHECKPOINT_DIR), workdir=workdir)
    try:
        info = export_checkpoint(workdir, dtype=dtype, root=root)
        answer = ExportAnswer(path=info.path, step=info.step, node=node)
    except ExportRefused as exc:
        answer = ExportAnswer(error=str(exc), node=node)
    except Exception as exc:  # anything else would leave the row exporting for ever
        answer = ExportAnswer(error=f"the node could not export it: {type(exc).__name__}: {exc}", node=node)
    model_exported_task.delay(model_id, answer.as_dict())


@shared_task(name="models.exported", ignore_result=True, acks_late=True)
def model_exported_task(model_id: int, answer: dict[str, Any]) -> None:
    """Control queue: write a node's export answer, then ask for the usual inspection. Idempotent (only
    an exporting row takes one, so a repeat asks for no second inspection)."""
    from runs.registry.exporting import ExportAnswer, model_exported

    if model_exported(model_id=model_id, answer=ExportAnswer.from_dict(answer)):
        model_inspect_send(model_id=model_id)


def model_inspect_send(*, model_id: int) -> None:
    """Hand `models.inspect` to the pool's queue. A broker that is down would leave the row pending for
    ever: it says so instead, and may be inspected again."""
    from controlplane.celery import BROKER_ERRORS, broker_unreachable
    from runs.registry.inspection import model_refuse
    from runs.registry.models import RegisteredModel

    model = RegisteredModel.objects.filter(pk=model_id).first()
    if model is None:
        return
    try:
        model_inspect_task.apply_async(
            args=[model.pk, model.source, model.tokenizer or None], queue=f"gpu.{model.pool}"
        )
    except BROKER_ERRORS as exc:
        model_refuse(model_id=model.pk, error=f"not inspected: {broker_unreachable(exc)}; inspect it again")


def model_export_send(*, model_id: int) -> None:
    """Hand `models.export` to the run's pool (whose nodes mount its checkpoints). A broker that is down
    refuses the model at once, saying so, instead of leaving it exporting for ever."""
    from controlplane.celery import BROKER_ERRORS, broker_unreachable
    from runs.registry.exporting import model_export_refuse
    from runs.registry.models import ModelStatus, RegisteredModel

    model = RegisteredModel.objects.filter(pk=model_id, status=ModelStatus.EXPORTING).first()
    if model is None or model.from_run_id is None:
        return
    try:
        model_export_task.apply_async(
            args=[model.pk, model.from_run_id, model.dtype], queue=f"gpu.{model.pool}"
        )
    except BROKER_ERRORS as exc:
        model_export_refuse(
            model_id=model.pk, error=f"not exported: {broker_unreachable(exc)}; export it again"
        )
