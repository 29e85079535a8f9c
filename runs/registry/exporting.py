"""A node's answer to `models.export`, and writing it: what the control queue's `models.exported` does
(docs/models.md, "Export and lineage")."""

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from runs.registry.models import ModelStatus, RegisteredModel

SOURCE_MAX = RegisteredModel._meta.get_field("source").max_length or 500


@dataclass(frozen=True)
class ExportAnswer:
    """A node's answer to `models.export`: the directory it wrote and the checkpoint's step, or why not."""

    path: str = ""
    step: int | None = None
    error: str = ""
    node: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "step": self.step, "error": self.error, "node": self.node}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "ExportAnswer":
        step = raw.get("step")
        return cls(
            path=str(raw.get("path") or ""),
            step=step if isinstance(step, int) and not isinstance(step, bool) and step >= 0 else None,
            error=str(raw.get("error") or ""),
            node=str(raw.get("node") or ""),
        )


def model_exported(*, model_id: int, answer: ExportAnswer) -> bool:
    """Write a node's answer. Only an exporting row takes one (a repeated delivery is a no-op, False); an
    export becomes a pending model (True), whose directory a node then inspects like any other."""
    if answer.error or not answer.path or answer.step is None:
        error = answer.error or "the node answered without a directory and step"
        return model_export_refuse(model_id=model_id, error=error, node=answer.node)
    if len(answer.path) > SOURCE_MAX:  # cut short, it would name another directory
        error = f"the export's path is longer than {SOURCE_MAX} characters: {answer.path[:200]}…"
        return model_export_refuse(model_id=model_id, error=error, node=answer.node)
    return bool(
        RegisteredModel.objects.filter(pk=model_id, status=ModelStatus.EXPORTING).update(
            status=ModelStatus.PENDING, source=answer.path, from_step=answer.step, error=""
        )
    )


def model_export_refuse(*, model_id: int, error: str, node: str = "") -> bool:
    return bool(
        RegisteredModel.objects.filter(pk=model_id, status=ModelStatus.EXPORTING).update(
            status=ModelStatus.REFUSED, error=error, inspected_by=node, inspected_at=timezone.now()
        )
    )
