"""The API object: authentication, error handlers, the routers, and the schema.

Mounted at /api/v1/ (controlplane/urls.py). The schema is at /api/v1/openapi.json and browsable at
/api/v1/docs (behind the login, like every page). The run-token ingest endpoints under the same prefix
are plain Django views with their own authentication (runs/api.py); the schema lists them apart, under
their own tag and security scheme, so that a client generator does not mistake them for token routes.
"""

from typing import Any

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, URLResolver
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI

from controlplane.api import (
    alerts,
    datasets,
    errors,
    external,
    generation,
    generations,
    me,
    models,
    nodes,
    runs,
    spend,
    sweeps,
)
from controlplane.api.auth import BrowserSession, TokenAuth
from controlplane.api.ingest_schema import INGEST_PATHS, INGEST_SECURITY
from controlplane.api.layouts import router as layouts_router

# Routes name their body parameter `payload`: the error handler drops it from an error's location.
BODY_PARAMETERS = {"payload"}


class TriadAPI(NinjaAPI):
    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> Any:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        prefix = self.get_root_path(path_params or {}) if path_prefix is None else path_prefix
        for path, item in INGEST_PATHS.items():
            schema["paths"][prefix.rstrip("/") + path] = item
        schema.setdefault("components", {}).setdefault("securitySchemes", {}).update(INGEST_SECURITY)
        return schema


api = TriadAPI(
    title="Triad API",
    version="1",
    description=(
        "Runs, metrics, generations, datasets, models, spend and nodes, as the pages show them. "
        "Authenticate with a personal API token (`Authorization: Bearer triad_pat_…`) made on your "
        'account page; a read token may only read. Errors are `{"error": …, "field": …}`; lists are '
        "paged (`page`, `per_page`)."
    ),
    urls_namespace="api",
    auth=[TokenAuth(), BrowserSession()],
)
errors.install(api, parameters=BODY_PARAMETERS)
api.add_router("", me.router)
api.add_router("", layouts_router)  # /me/layouts/{page}: chart layouts
# /runs/external before /runs/{run_id}: the first pattern that matches a path answers it (405 for POST)
api.add_router("", external.router)
api.add_router("", runs.router)
api.add_router("", nodes.router)
api.add_router("", datasets.router)  # /datasets…, /dataset-versions…
api.add_router("", models.router)  # /models…
api.add_router("", spend.router)  # /spend
api.add_router("", generations.router)  # /runs/{id}/generations, /generations/{id}/label
api.add_router("", alerts.router)  # /alerts/rules…, /alerts/notifications…
api.add_router("", sweeps.router)  # /sweeps…
api.add_router("", generation.router)  # /datasets/{id}/generate, /generation-jobs…


_BEHIND_LOGIN = ("openapi-view", "api-root")  # the browsable docs, and "/api/v1/" that leads to them


def _open_to_the_api(patterns: list[URLPattern | URLResolver]) -> list[URLPattern | URLResolver]:
    """The API answers 401/403 as JSON itself, so the login middleware must let its routes through (it
    would answer a 302 to the login page). The docs page stays behind the login."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            _open_to_the_api(pattern.url_patterns)
        elif pattern.name not in _BEHIND_LOGIN:
            pattern.callback = login_not_required(pattern.callback)
    return patterns


def urls() -> tuple[list[URLPattern | URLResolver], str]:
    """The API's routes and app name, for `include(..., namespace="api")`."""
    patterns, app_name, _ = api.urls
    return _open_to_the_api(list(patterns)), app_name


@csrf_exempt  # a POST to a wrong path is told it is wrong, not that it lacks a CSRF token
@login_not_required
def not_found(request: HttpRequest, rest: str = "") -> JsonResponse:
    """Any other path under /api/: a JSON 404, not the HTML page a browser gets."""
    return JsonResponse(errors.error_body(f"no API route {request.path!r}; see /api/v1/docs"), status=404)
