"""One shape for every error the API answers: `{"error": "<what was wrong>", "field": "<where>" | null}`.

Services and selectors raise their own errors (PermissionDenied, Http404, the apps' ValueErrors with a
`field`); the handlers here turn each into that shape, so routes need not catch them one by one.
"""

import logging
from typing import Any

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

logger = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, field: str | None = None, **extra: Any):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.extra = extra


def error_body(message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": message, "field": field, **extra}


# Where pydantic says an error is: ("body", "payload", "config", "lr") → "config.lr". The first parts
# name the request part and the route's parameter, which the caller never wrote.
_REQUEST_PARTS = {"body", "query", "path", "header", "cookie", "form", "file"}


def _field_of(location: list[Any] | tuple[Any, ...], parameters: set[str]) -> str | None:
    parts = [str(p) for p in location]
    if parts and parts[0] in _REQUEST_PARTS:
        parts = parts[1:]
    if len(parts) > 1 and parts[0] in parameters:
        parts = parts[1:]
    return ".".join(parts) or None


def _validation_message(error: dict[str, Any], field: str | None) -> str:
    message = str(error.get("msg", "invalid value"))
    if error.get("type") == "missing":
        message = "required"
    elif error.get("type") == "extra_forbidden":
        message = "unknown field"
    return f"{field}: {message}" if field else message


def install(api: NinjaAPI, *, parameters: set[str]) -> None:
    """Register the handlers on the API. `parameters`: the names routes give their body parameters
    (stripped from error locations)."""

    def respond(request: HttpRequest, status: int, body: dict[str, Any]) -> HttpResponse:
        return api.create_response(request, body, status=status)

    @api.exception_handler(ApiError)
    def api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
        response = respond(request, exc.status, error_body(exc.message, exc.field, **exc.extra))
        if exc.status == 429 and "retry_after" in exc.extra:
            response["Retry-After"] = str(exc.extra["retry_after"])
        return response

    @api.exception_handler(ValidationError)
    def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        first = exc.errors[0] if exc.errors else {}
        field = _field_of(first.get("loc", ()), parameters)
        return respond(request, 400, error_body(_validation_message(first, field), field))

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        message = (
            "authentication required: send 'Authorization: Bearer <personal API token>' "
            "(make one on your account page, /account/)"
        )
        response = respond(request, 401, error_body(message))
        response["WWW-Authenticate"] = 'Bearer realm="triad"'
        return response

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if exc.message.startswith("Cannot parse request body"):  # django-ninja's words for bad JSON
            return respond(request, 400, error_body("body: not valid JSON", "body"))
        return respond(request, exc.status_code, error_body(exc.message))

    @api.exception_handler(PermissionDenied)
    def permission_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return respond(request, 403, error_body(str(exc) or "permission denied"))

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return respond(request, 404, error_body(str(exc) or "not found"))

    @api.exception_handler(ObjectDoesNotExist)
    def does_not_exist(request: HttpRequest, exc: ObjectDoesNotExist) -> HttpResponse:
        return respond(request, 404, error_body(str(exc) or "not found"))

    @api.exception_handler(Exception)
    def internal(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.exception("API %s %s failed", request.method, request.path)
        return respond(request, 500, error_body("internal error; the server's log has the details"))
