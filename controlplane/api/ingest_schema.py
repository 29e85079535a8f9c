"""The run-token ingest endpoints (runs/api.py), described for the OpenAPI schema. They are plain Django
views with their own authentication, older than the API object, so the schema lists them by hand under
their own tag; docs/ingest.md is their full contract."""

from typing import Any

INGEST_TAG = "ingest (run token)"
INGEST_SECURITY = {
    "RunToken": {"type": "http", "scheme": "bearer", "description": "the run's token (triad_run_…)"}
}

_ERROR = {"description": '`{"error": …, "field": …}`'}
_RUN_ID = [{"name": "run_id", "in": "path", "required": True, "schema": {"type": "integer"}}]


def _operation(summary: str, description: str, *, body: bool = True) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "tags": [INGEST_TAG],
        "summary": summary,
        "description": description + " See docs/ingest.md.",
        "operationId": "ingest_" + summary.lower().replace(" ", "_"),
        "parameters": _RUN_ID,
        "security": [{"RunToken": []}],
        "responses": {"200": {"description": "accepted; carries the run's desired_state"}, "401": _ERROR},
    }
    if body:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
        operation["responses"].update({"400": _ERROR, "409": _ERROR, "413": _ERROR})
    return operation


INGEST_PATHS: dict[str, dict[str, Any]] = {
    "/runs/{run_id}/events": {
        "post": _operation(
            "Send events",
            'Metrics, generations, logs, status and heartbeats: `{"events": [{"seq": n, "type": …}]}`; '
            "repeats of a (run, seq) are accepted and ignored; 429 with Retry-After past the rate limit.",
        )
    },
    "/runs/{run_id}/spec": {
        "get": _operation("Read spec", "The run's spec, as the trainer starts from it.", body=False)
    },
    "/runs/{run_id}/claim": {
        "post": _operation("Claim", "A node claims its place in the gang of the run's attempt.")
    },
    "/runs/{run_id}/release": {
        "post": _operation("Release", "A node gives back a claim on a gang that has not formed.")
    },
}
