"""Registering a model: the row, the question to a node of its pool (which alone sees the node's disks
and Hugging Face cache), and the node's answer (docs/models.md)."""

import re

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from controlplane.accounts.models import Role, Team
from controlplane.accounts.services import require_role, team_acting_for
from runs.registry.inspection import model_refuse
from runs.registry.models import ModelDtype, ModelStatus, RegisteredModel

# A pool names a queue (gpu.<pool>): the characters a queue name takes everywhere.
POOL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class ModelRegisterError(ValueError):
    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.field = field


def model_register_team(*, user: User, team: Team | None = None) -> Team:
    """The team a model goes to (see `team_acting_for`)."""
    return team_acting_for(user=user, team=team, doing="registering a model")


def model_register(
    *,
    user: User,
    name: str,
    source: str,
    tokenizer: str = "",
    chat: bool = False,
    dtype: str = ModelDtype.BF16,
    stop: list[str] | None = None,
    pool: str = "",
    team: Team | None = None,
) -> RegisteredModel:
    """Record the model as pending and ask a node of its pool to inspect it (on commit)."""
    team = model_register_team(user=user, team=team)
    name, source, tokenizer = name.strip(), source.strip(), tokenizer.strip()
    pool = pool.strip() or settings.TRIAD_DEFAULT_POOL
    if not name:
        raise ModelRegisterError("a model needs a name", field="name")
    if not source:
        raise ModelRegisterError("a directory on the pool's nodes, or a Hugging Face hub id", field="source")
    if dtype not in ModelDtype.values:
        raise ModelRegisterError(f"one of {', '.join(ModelDtype.values)}, not {dtype!r}", field="dtype")
    if not POOL_RE.match(pool):
        raise ModelRegisterError(f"{pool!r} is not a pool name (letters, digits, . _ -)", field="pool")
    with transaction.atomic():
        if RegisteredModel.objects.filter(name=name).exists():
            raise ModelRegisterError(f"a model named {name!r} is registered already", field="name")
        model = RegisteredModel.objects.create(
            name=name,
            source=source,
            tokenizer=tokenizer,
            chat=chat,
            dtype=dtype,
            stop=[s for s in (stop or []) if s],
            pool=pool,
            team=team,
            registered_by=user,
        )
        model_id = model.pk
        transaction.on_commit(lambda: model_inspect_enqueue(model_id=model_id))
    return model


def model_inspect_again(*, user: User, model: RegisteredModel) -> bool:
    """Ask a node again (a refused model whose files are now there, a broker that is back)."""
    require_role(user=user, team_id=model.team_id, at_least=Role.MEMBER, doing="inspecting a model")
    with transaction.atomic():
        again = RegisteredModel.objects.filter(pk=model.pk, status=ModelStatus.REFUSED).update(
            status=ModelStatus.PENDING, error=""
        )
        if again:
            model_id = model.pk
            transaction.on_commit(lambda: model_inspect_enqueue(model_id=model_id))
    return bool(again)


def model_inspect_enqueue(*, model_id: int) -> None:
    """Hand `models.inspect` to the pool's queue. A broker that is down would leave the row pending for
    ever: it says so instead, and may be inspected again."""
    from controlplane.celery import BROKER_ERRORS, broker_unreachable
    from runs.registry.tasks import model_inspect_task

    model = RegisteredModel.objects.filter(pk=model_id).first()
    if model is None:
        return
    try:
        model_inspect_task.apply_async(
            args=[model.pk, model.source, model.tokenizer or None], queue=f"gpu.{model.pool}"
        )
    except BROKER_ERRORS as exc:
        model_refuse(model_id=model.pk, error=f"not inspected: {broker_unreachable(exc)}; inspect it again")
