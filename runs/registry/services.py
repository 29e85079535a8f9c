"""Registering a model: the row, the question to a node of its pool (which alone sees the node's disks
and Hugging Face cache), and the node's answer (docs/models.md). Exporting a run's checkpoint as a new
model: the row, the job for a node of the run's pool, and its answer (docs/models.md, "Export and
lineage")."""

import re

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction

from controlplane.accounts.models import Role, Team
from controlplane.accounts.services import require_role, team_acting_for
from runs.models import Run, RunStatus
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
    """Ask a node again (a refused model whose files are now there, a broker that is back). A model
    whose export was refused is exported again: it has no files to inspect yet."""
    require_role(user=user, team_id=model.team_id, at_least=Role.MEMBER, doing="inspecting a model")
    if model.from_run_id is not None and not model.source:
        return _model_export_again(model=model)
    with transaction.atomic():
        again = RegisteredModel.objects.filter(pk=model.pk, status=ModelStatus.REFUSED).update(
            status=ModelStatus.PENDING, error=""
        )
        if again:
            model_id = model.pk
            transaction.on_commit(lambda: model_inspect_enqueue(model_id=model_id))
    return bool(again)


# Runs whose checkpoints no longer change. A lost run is left out: its trainer may still be writing.
EXPORTABLE_STATUSES = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.BUDGET_STOPPED}
)
TINY_REFUSAL = "the built-in tiny model is not a Hugging Face model; export needs a run of a registered model"


def model_export(*, user: User, run: Run, name: str) -> RegisteredModel:
    """Record a model that a node of the run's pool writes from the run's newest checkpoint (exporting),
    and send it the job on commit. The model keeps the run's model's settings and names its lineage."""
    require_role(user=user, team_id=run.team_id, at_least=Role.MEMBER, doing="exporting a run's model")
    name = name.strip()
    if not name:
        raise ModelRegisterError("a model needs a name", field="name")
    if run.status not in EXPORTABLE_STATUSES:
        raise ModelRegisterError(
            f"run #{run.pk} is {run.get_status_display().lower()}: only a finished, failed, cancelled or "
            "budget-stopped run's checkpoint is exported",
            field="run",
        )
    base = run.model
    if base is None:
        raise ModelRegisterError(TINY_REFUSAL, field="run")
    with transaction.atomic():
        if RegisteredModel.objects.filter(name=name).exists():
            raise ModelRegisterError(f"a model named {name!r} is registered already", field="name")
        model = RegisteredModel.objects.create(
            name=name,
            source="",  # the node names the directory it wrote
            # "": the export holds the tokenizer the run trained with, copied beside the weights.
            tokenizer="",
            chat=base.chat,
            dtype=base.dtype,
            stop=list(base.stop),
            pool=run.pool,
            team=run.team,
            status=ModelStatus.EXPORTING,
            from_run=run,
            registered_by=user,
        )
        model_id = model.pk
        transaction.on_commit(lambda: model_export_enqueue(model_id=model_id))
    return model


def _model_export_again(*, model: RegisteredModel) -> bool:
    with transaction.atomic():
        again = RegisteredModel.objects.filter(pk=model.pk, status=ModelStatus.REFUSED, source="").update(
            status=ModelStatus.EXPORTING, error=""
        )
        if again:
            model_id = model.pk
            transaction.on_commit(lambda: model_export_enqueue(model_id=model_id))
    return bool(again)


def model_inspect_enqueue(*, model_id: int) -> None:
    from runs.registry.tasks import model_inspect_send

    model_inspect_send(model_id=model_id)


def model_export_enqueue(*, model_id: int) -> None:
    from runs.registry.tasks import model_export_send

    model_export_send(model_id=model_id)
