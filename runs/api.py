"""The ingest API: the one door through which everything a run emits enters the control plane."""

import json

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from runs import attempts, ingest, lifecycle, spec
from runs.events import BatchTooLarge, EventError, parse_batch, string_problem
from runs.models import TERMINAL_STATUSES, Run
from runs.ratelimit import ingest_retry_after
from runs.selectors import run_token_hash
from runs.tokens import token_matches


def _error(status: int, message: str, **extra: object) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def _too_big(length: int) -> JsonResponse:
    """413 with the limit: a client halves its batch until it fits, and drops only an event that alone
    does not."""
    limit = settings.TRIAD_INGEST_MAX_BYTES
    return _error(413, f"body: {length} bytes is over the {limit}-byte limit", field="body", max_bytes=limit)


_MAX_RUN_ID = 2**63 - 1
_NO_RUN_HASH = "0" * 64  # compared against when the run does not exist; no token hashes to it


def _authenticate(request: HttpRequest, run_id: int) -> int | JsonResponse:
    """The run's id if the request carries its token; else the error to answer."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _error(401, "Authorization: expected 'Bearer <run token>'")
    # No run has an id past 64 bits, and SQLite cannot even bind one (OverflowError): no such run.
    expected = run_token_hash(run_id=run_id) if run_id <= _MAX_RUN_ID else None
    # An unknown run and a wrong token get the same answer (and the same hashing work), so that the
    # API does not tell a caller without the token which run ids exist.
    matches = token_matches(token.strip(), expected or _NO_RUN_HASH)
    if expected is None or not matches:
        return _error(401, f"run {run_id}: no such run, or the token does not match it")
    return run_id


@csrf_exempt
@login_not_required
@require_POST
def run_events(request: HttpRequest, run_id: int) -> JsonResponse:
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > settings.TRIAD_INGEST_MAX_BYTES:
        return _too_big(length)
    auth = _authenticate(request, run_id)
    if isinstance(auth, JsonResponse):
        return auth
    if len(request.body) > settings.TRIAD_INGEST_MAX_BYTES:  # a body sent without Content-Length
        return _too_big(len(request.body))
    try:
        body = json.loads(request.body)
    except UnicodeDecodeError:
        return _error(400, "body: not valid UTF-8", field="body")
    except json.JSONDecodeError as exc:
        return _error(
            400, f"body: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", field="body"
        )
    except RecursionError:
        return _error(400, "body: nested too deeply", field="body")
    try:
        batch = parse_batch(body, max_events=settings.TRIAD_INGEST_MAX_EVENTS)
    except BatchTooLarge as exc:
        # 413 with the limit, so that a client splits the batch instead of dropping it.
        return JsonResponse(exc.as_dict(), status=413)
    except EventError as exc:
        return JsonResponse(exc.as_dict(), status=400)
    if (wait := ingest_retry_after(run_id=auth, events=batch.received)) is not None:
        response = _error(
            429, f"run {run_id}: over {settings.TRIAD_INGEST_EVENTS_PER_S} events/s; retry later"
        )
        response["Retry-After"] = str(wait)
        return response
    result = ingest.run_ingest(run_id=auth, batch=batch)
    if result.fenced:
        if batch.attempt not in (None, result.attempt):
            message = (
                f"run {run_id}: attempt {batch.attempt} is fenced: the run is on attempt {result.attempt}"
            )
        else:
            message = f"run {run_id} is lost: its attempt is fenced; resume it"
        return _error(409, message, desired_state=result.desired_state)
    return JsonResponse(
        {"accepted": result.accepted, "duplicates": result.duplicates, "desired_state": result.desired_state}
    )


@login_not_required
@require_GET
def run_spec(request: HttpRequest, run_id: int) -> JsonResponse:
    auth = _authenticate(request, run_id)
    if isinstance(auth, JsonResponse):
        return auth
    run = Run.objects.select_related("dataset_version__dataset").get(pk=auth)
    if run.status in TERMINAL_STATUSES:
        return _error(
            409, f"run {run_id} is {run.status}; there is nothing to start", desired_state=run.status
        )
    served = spec.run_spec(run=run)
    # What the attempt's node trains from, kept for the run page and "re-run exactly".
    attempts.attempt_spec_record(run_id=run.pk, attempt=run.attempt, spec=served)
    return JsonResponse(served)


CLAIM_MAX_CHARS = 200  # Run.claimed_by
# The claim's body: its key and attempt, and the launcher's provenance (at most PROVENANCE_MAX_BYTES
# once parsed; its escapes, \uXXXX for a character, may make it a few times that on the wire).
CLAIM_MAX_BYTES = 4 * attempts.PROVENANCE_MAX_BYTES


@csrf_exempt
@login_not_required
@require_POST
def run_claim(request: HttpRequest, run_id: int) -> JsonResponse:
    """`{"attempt": n, "claim": "<key>", "provenance": {...}}`: the launcher takes the run's attempt
    before starting anything; 200 if this key holds it, 409 (with the desired state) if another does or
    the run moved on. "provenance" (what the node runs with) is optional: an older launcher sends none."""
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > CLAIM_MAX_BYTES:
        return _error(413, f"body: {length} bytes is over the {CLAIM_MAX_BYTES}-byte limit", field="body")
    auth = _authenticate(request, run_id)
    if isinstance(auth, JsonResponse):
        return auth
    if len(request.body) > CLAIM_MAX_BYTES:  # a body sent without Content-Length
        return _error(413, f"body: over the {CLAIM_MAX_BYTES}-byte limit", field="body")
    try:
        body = json.loads(request.body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return _error(400, "body: expected a JSON object", field="body")
    attempt = body.get("attempt") if isinstance(body, dict) else None
    claim = body.get("claim") if isinstance(body, dict) else None
    if not isinstance(attempt, int) or isinstance(attempt, bool) or attempt < 1:
        return _error(400, "attempt: expected an integer ≥ 1", field="attempt")
    if not isinstance(claim, str) or not claim.strip() or len(claim) > CLAIM_MAX_CHARS:
        return _error(
            400, f"claim: expected a non-empty string of at most {CLAIM_MAX_CHARS} characters", field="claim"
        )
    if (problem := string_problem(claim)) is not None:
        return _error(400, f"claim: {problem}", field="claim")
    provenance = body.get("provenance")
    if provenance is not None:
        try:
            provenance = attempts.provenance_clean(provenance)
        except attempts.ProvenanceError as exc:
            return _error(400, str(exc), field="provenance")
    result = lifecycle.run_claim(run_id=auth, attempt=attempt, claim=claim, provenance=provenance)
    if not result.claimed:
        return _error(
            409,
            f"run {run_id}: attempt {attempt} is not this launcher's to start "
            f"(the run is {result.desired_state})",
            desired_state=result.desired_state,
        )
    return JsonResponse({"claimed": True, "attempt": attempt, "desired_state": result.desired_state})
