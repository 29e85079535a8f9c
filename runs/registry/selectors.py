"""Who reads which registered model: the members of its team; site admins (and superusers) every one."""

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet
from django.http import Http404

from controlplane.accounts.models import Team
from controlplane.accounts.selectors import is_site_admin, team_filter
from runs.models import Run
from runs.registry.models import ModelStatus, RegisteredModel


def model_readable_q(*, user: User) -> Q:
    if is_site_admin(user=user):
        return Q()
    return team_filter(user=user)


def model_list_for_user(*, user: User) -> QuerySet[RegisteredModel]:
    return (
        RegisteredModel.objects.filter(model_readable_q(user=user))
        .select_related("team", "registered_by", "from_run")
        .order_by("name")
    )


def model_get_for_user(*, user: User, model_id: int) -> RegisteredModel:
    """The model, or 404 (another team's model does not exist for the user)."""
    model = model_list_for_user(user=user).filter(pk=model_id).first()
    if model is None:
        raise Http404("no such model")
    return model


def model_list_ready_for_teams(*, teams: QuerySet[Team]) -> QuerySet[RegisteredModel]:
    """What the launch form offers: the ready models of the teams the user may launch into (run_launch
    checks the chosen team against the chosen model)."""
    return RegisteredModel.objects.filter(status=ModelStatus.READY, team__in=teams).order_by("name")


def model_readable_by_team(*, model: RegisteredModel, team: Team) -> bool:
    return model.team_id == team.pk


def model_runs_from(*, model: RegisteredModel) -> QuerySet[Run]:
    """Its lineage onward: the runs that started from the model (all of its team, as run_launch holds)."""
    return model.runs.filter(team_id=model.team_id).order_by("-created_at", "-pk")


def model_list_exported_from(*, run: Run) -> QuerySet[RegisteredModel]:
    """The models exported from the run's checkpoints, newest first."""
    return RegisteredModel.objects.filter(from_run=run).order_by("-created_at", "-pk")
