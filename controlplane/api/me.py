"""`GET /me`: who the token (or session) is, and the teams and roles it acts with; `DELETE /me/token`: the
calling token revokes itself (`triad logout`)."""

from django.http import HttpRequest
from ninja import Router, Schema

from controlplane.accounts.selectors import team_roles_of
from controlplane.accounts.services import api_token_revoke
from controlplane.api.auth import Principal
from controlplane.api.errors import ApiError

router = Router(tags=["account"])


class TeamRole(Schema):
    id: int
    name: str
    role: str


class TokenInfo(Schema):
    name: str
    scope: str
    expires_at: str | None


class Me(Schema):
    username: str
    superuser: bool
    teams: list[TeamRole]
    token: TokenInfo | None


@router.get("/me", response=Me, summary="Who is calling")
def me(request: HttpRequest) -> dict[str, object]:
    principal: Principal = request.auth  # type: ignore[attr-defined]
    user = principal.user
    token = None
    if principal.token_id is not None:
        token = {"name": principal.token_name, "scope": principal.scope, "expires_at": principal.expires_at}
    return {
        "username": user.username,
        "superuser": user.is_superuser,
        "teams": [{"id": t.pk, "name": t.name, "role": str(role)} for t, role in team_roles_of(user=user)],
        "token": token,
    }


class Revoked(Schema):
    revoked: str


@router.delete("/me/token", response=Revoked, url_name="me-token-revoke", summary="Revoke the calling token")
def me_token_revoke(request: HttpRequest) -> dict[str, str]:
    """Allowed to read tokens too (auth.py): giving up a token only takes power away."""
    principal: Principal = request.auth  # type: ignore[attr-defined]
    if principal.token_id is None:
        raise ApiError(
            400, "this call is made with an API token, not the browser's session", field="Authorization"
        )
    token = api_token_revoke(user=principal.user, token_id=principal.token_id)
    return {"revoked": token.name}
