"""Small lookups the data routes share: a team named by id in a request, a page's absolute URL."""

from django.contrib.auth.models import User
from django.http import HttpRequest
from django.urls import reverse

from controlplane.accounts.models import Team
from controlplane.accounts.selectors import team_list_for
from controlplane.api.auth import Principal
from controlplane.api.errors import ApiError


def team_of_caller(*, user: User, team_id: int | None) -> Team | None:
    """The team a request names, among those the caller sees (any role: whether the role suffices is
    the service's question, a 403); another team does not exist for them (404 naming `team`)."""
    if team_id is None:
        return None
    team = team_list_for(user=user).filter(pk=team_id).first()
    if team is None:
        raise ApiError(404, f"team: no team {team_id} among yours", field="team")
    return team


def page_url(request: HttpRequest, name: str, *args: int) -> str:
    """The absolute URL of the page that shows the same thing, for people following a script's output."""
    return request.build_absolute_uri(reverse(name, args=args))


def caller(request: HttpRequest) -> User:
    """Who is calling: the authenticated user (the API's auth ran before any route)."""
    principal: Principal = request.auth  # type: ignore[attr-defined]
    return principal.user
