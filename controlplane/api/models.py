"""The model registry: what its page lists, and its register form (the same form's limits, the same
service: the model is recorded pending and a node of its pool is asked to inspect it on commit)."""

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import ConfigDict

from controlplane.accounts.models import Team
from controlplane.api.errors import ApiError
from controlplane.api.lookups import caller, page_url, team_of_caller
from controlplane.api.paging import PER_PAGE_DEFAULT, Page, paged
from runs.registry import selectors, services
from runs.registry.forms import ModelRegisterForm
from runs.registry.models import ModelDtype, RegisteredModel

router = Router(tags=["models"])


class Ref(Schema):
    id: int
    name: str


class ModelOut(Schema):
    id: int
    name: str
    status: str  # pending (a node has not answered), exporting, ready, refused
    error: str  # why the node refused it
    source: str
    tokenizer: str
    chat: bool
    dtype: str
    stop: list[str]
    pool: str
    team: Ref
    architecture: str
    params: int | None
    vocab_size: int | None
    context_length: int | None
    hidden_size: int | None
    num_layers: int | None
    inspected_by: str
    inspected_at: str | None
    from_run: int | None  # lineage: the run whose checkpoint it was exported from
    from_step: int | None
    registered_by: str
    created_at: str
    url: str


class ModelIn(Schema):
    """The register form's fields. `stop` is a list here (the form's textarea holds one a line)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    source: str
    tokenizer: str = ""
    chat: bool = False
    dtype: str = ModelDtype.BF16.value
    stop: list[str] = []
    pool: str = ""
    team: int | None = None


def _item(request: HttpRequest, model: RegisteredModel) -> dict[str, Any]:
    return {
        "id": model.pk,
        "name": model.name,
        "status": model.status,
        "error": model.error,
        "source": model.source,
        "tokenizer": model.tokenizer,
        "chat": model.chat,
        "dtype": model.dtype,
        "stop": [str(s) for s in model.stop] if isinstance(model.stop, list) else [],
        "pool": model.pool,
        "team": {"id": model.team.pk, "name": model.team.name},
        "architecture": model.architecture,
        "params": model.params,
        "vocab_size": model.vocab_size,
        "context_length": model.context_length,
        "hidden_size": model.hidden_size,
        "num_layers": model.num_layers,
        "inspected_by": model.inspected_by,
        "inspected_at": model.inspected_at.isoformat() if model.inspected_at else None,
        "from_run": model.from_run_id,
        "from_step": model.from_step,
        "registered_by": model.registered_by.username,
        "created_at": model.created_at.isoformat(),
        "url": page_url(request, "registry:detail", model.pk),
    }


@router.get("/models", response=Page[ModelOut], url_name="models-list", summary="Models you read")
def model_list(request: HttpRequest, page: int = 1, per_page: int = PER_PAGE_DEFAULT) -> dict[str, Any]:
    """Your teams' models (every team's for site admins), by name, as the registry page lists them."""
    models = selectors.model_list_for_user(user=caller(request))
    return paged(models, page=page, per_page=per_page, to_item=lambda m: _item(request, m))


@router.get("/models/{model_id}", response=ModelOut, url_name="model-detail", summary="A model")
def model_detail(request: HttpRequest, model_id: int) -> dict[str, Any]:
    return _item(request, selectors.model_get_for_user(user=caller(request), model_id=model_id))


def _form_error(form: ModelRegisterForm) -> ApiError:
    field, messages = next(iter(form.errors.items()))
    return ApiError(400, f"{field}: {messages[0]}", field=field)


@router.post("/models", response={201: ModelOut}, url_name="models-register", summary="Register a model")
def model_register(request: HttpRequest, payload: ModelIn) -> Status[dict[str, Any]]:
    """As the registry page's form: `source` is a directory on the pool's nodes or a Hugging Face hub
    id in their cache; `team` (id) defaults to your first team where you are a member. The model
    answers `pending` until a node of its pool has inspected it; poll `GET /models/{id}`."""
    user = caller(request)
    team = team_of_caller(user=user, team_id=payload.team)
    form = ModelRegisterForm(
        {**payload.dict(exclude={"stop", "team", "chat"}), "team": team.pk if team else ""}
        | ({"chat": "on"} if payload.chat else {}),
        teams=Team.objects.filter(pk=team.pk) if team else Team.objects.none(),
    )
    if not form.is_valid():
        raise _form_error(form)
    try:
        # The stop strings go as they are: a list holds the "\n"-led ones a textarea's lines cannot.
        model = services.model_register(
            user=user, **{**form.cleaned_data, "stop": payload.stop, "team": team}
        )
    except services.ModelRegisterError as exc:
        raise ApiError(400, f"{exc.field}: {exc}", field=exc.field) from None
    model = RegisteredModel.objects.select_related("team", "registered_by").get(pk=model.pk)
    return Status(201, _item(request, model))
