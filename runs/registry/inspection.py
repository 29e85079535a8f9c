"""A node's answer to `models.inspect`, and writing it: what the control queue's `models.record` does."""

from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from runs.registry.models import ModelStatus, RegisteredModel

NOTHING_READ: dict[str, Any] = {
    "architecture": "",
    "params": None,
    "vocab_size": None,
    "context_length": None,
    "hidden_size": None,
    "num_layers": None,
    "config_dtype": "",
    "resolved_path": "",
}


@dataclass(frozen=True)
class ModelAnswer:
    """A node's answer to `models.inspect`: the ModelInfo as a dict, or why it refused."""

    info: dict[str, Any] | None = None
    error: str = ""
    node: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"info": self.info, "error": self.error, "node": self.node}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "ModelAnswer":
        return cls(info=raw.get("info"), error=str(raw.get("error") or ""), node=str(raw.get("node") or ""))


def model_record(*, model_id: int, answer: ModelAnswer) -> bool:
    """Write a node's answer. Only a pending row takes one: a repeated delivery is a no-op."""
    if answer.info is None:
        return model_refuse(model_id=model_id, error=answer.error or "refused", node=answer.node)
    info = answer.info
    fields = {
        "architecture": str(info.get("architecture") or "")[:200],
        "params": _count(info.get("params")),
        "vocab_size": _count(info.get("vocab_size")),
        "context_length": _count(info.get("context_length")),
        "hidden_size": _count(info.get("hidden_size")),
        "num_layers": _count(info.get("num_layers")),
        "config_dtype": str(info.get("config_dtype") or "")[:32],
        "resolved_path": str(info.get("path") or "")[:1000],
    }
    return bool(
        RegisteredModel.objects.filter(pk=model_id, status=ModelStatus.PENDING).update(
            status=ModelStatus.READY,
            error="",
            inspected_by=answer.node,
            inspected_at=timezone.now(),
            **fields,
        )
    )


def model_refuse(*, model_id: int, error: str, node: str = "") -> bool:
    """A pending model no node will train from; what an earlier inspection read no longer holds."""
    return bool(
        RegisteredModel.objects.filter(pk=model_id, status=ModelStatus.PENDING).update(
            status=ModelStatus.REFUSED,
            error=error,
            inspected_by=node,
            inspected_at=timezone.now(),
            **NOTHING_READ,
        )
    )


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
