"""Who is calling: a personal API token (`Authorization: Bearer triad_pat_…`) or the browser's session.

Either way `request.user` becomes the caller, so the apps' selectors and services apply the same team
roles as the pages. A token's scope narrows it further: a read token is refused every write, here, before
any route runs, so that no route can forget the check. Each token has its own rate limit.
"""

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.http import HttpRequest
from django.urls import reverse
from ninja.security import HttpBearer
from ninja.security.session import SessionAuth

from controlplane.accounts.models import TokenScope
from controlplane.accounts.services import ApiTokenRefused, api_token_authenticate
from controlplane.api.errors import ApiError
from runs.ratelimit import api_retry_after

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _self_revocation(request: HttpRequest) -> bool:
    """`DELETE /me/token`: any token may give itself up."""
    return request.method == "DELETE" and request.path == reverse("api:me-token-revoke")


@dataclass(frozen=True)
class Principal:
    user: User
    scope: str  # TokenScope; a session may do what its user may
    token_id: int | None  # None: the browser's session
    token_name: str = ""
    expires_at: str | None = None


def caller(request: HttpRequest) -> User:
    """The authenticated caller of an API route (its token's user, or the session's)."""
    principal: Principal = request.auth  # type: ignore[attr-defined]
    return principal.user


class TokenAuth(HttpBearer):
    """A personal API token. A token that is present but wrong is answered 401 with the reason (unknown,
    revoked, expired) rather than passed on to the session: the caller meant to use it."""

    def authenticate(self, request: HttpRequest, token: str) -> Principal:
        try:
            row = api_token_authenticate(token.strip())
        except ApiTokenRefused as exc:
            raise ApiError(401, str(exc)) from None
        if (
            request.method not in SAFE_METHODS
            and row.scope != TokenScope.WRITE
            and not _self_revocation(request)
        ):
            raise ApiError(
                403, f"API token {row.name!r} is read-only: this call writes; make a read-write token"
            )
        if (wait := api_retry_after(token_id=row.pk)) is not None:
            raise ApiError(
                429, f"API token {row.name!r} is over its rate limit; retry later", retry_after=wait
            )
        request.user = row.user
        return Principal(
            user=row.user,
            scope=row.scope,
            token_id=row.pk,
            token_name=row.name,
            expires_at=row.expires_at.isoformat() if row.expires_at else None,
        )


class BrowserSession(SessionAuth):
    """The logged-in browser (the API docs page tries calls this way); writes need the CSRF token."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Principal | None:
        user = super().authenticate(request, key)
        if not user:
            return None
        assert isinstance(user, User)
        return Principal(user=user, scope=TokenScope.WRITE, token_id=None)
