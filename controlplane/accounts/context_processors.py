from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from controlplane.accounts.models import Role
from controlplane.accounts.selectors import is_admin_anywhere, team_ids_for


def roles(request: HttpRequest) -> dict[str, Any]:
    """What the navigation shows: `is_team_admin` (Teams, Audit log), `can_launch` (Launch). Lazy: a
    page that never asks runs no query."""
    user = request.user

    def can_launch() -> bool:
        teams = team_ids_for(user=user, at_least=Role.MEMBER)  # type: ignore[arg-type]
        return teams is None or bool(teams)

    return {
        "is_team_admin": SimpleLazyObject(lambda: is_admin_anywhere(user=user)),  # type: ignore[arg-type]
        "can_launch": SimpleLazyObject(can_launch),
    }
