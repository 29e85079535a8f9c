"""The ingest API: the one door through which everything a run emits enters the control plane."""

import json
from typing import Any, TypeGuard

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from runs import attempts, gang, ingest, spec
from runs.alerts import hooks as alert_hooks
from runs.events import BatchTooLarge, EventError, parse_batch, string_problem, text_strings_clean
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
        # Decoded as json.loads decodes bytes, and kept as text: one scan of it tells whether any string
        # of the batch needs checking for NUL and lone surrogates.
        raw = request.body
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        body = json.loads(text)
    except UnicodeDecodeError:
        return _error(400, "body: not valid UTF-8", field="body")
    except json.JSONDecodeError as exc:
        return _error(
            400, f"body: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", field="body"
        )
    except RecursionError:
        return _error(400, "body: nested too deeply", field="body")
    try:
        batch = parse_batch(
            body, max_events=settings.TRIAD_INGEST_MAX_EVENTS, strings_clean=text_strings_clean(text)
        )
    except BatchTooLarge as exc:
        # 413 with the limit, so that a client splits the batch instead of dropping it.
        return JsonResponse(exc.as_dict(), status=413)
    except EventError as exc:
        alert_hooks.metric_values_refused(auth, body, exc.event_index)  # NaN rules hear of a NaN value
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


CLAIM_MAX_CHARS = 200  # Run.claimed_by, RunClaim.key/node/address
# The claim's body: its key and attempt, what the node offers the gang, and the launcher's provenance (at
# most PROVENANCE_MAX_BYTES once parsed; its escapes, \uXXXX for a character, may make it a few times that
# on the wire).
CLAIM_MAX_BYTES = 4 * attempts.PROVENANCE_MAX_BYTES
CLAIM_MAX_DEVICES = 64
_MAX_INT = 2**31 - 1  # RunClaim's integer columns


class _BadClaim(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


def _claim_body(request: HttpRequest, run_id: int) -> tuple[int, dict[str, Any]] | JsonResponse:
    """The run's id and the JSON object of a claim or release, with its attempt and key checked; else the
    error to answer."""
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
    if not isinstance(body, dict):
        return _error(400, "body: expected a JSON object", field="body")
    attempt = body.get("attempt")
    if not _is_int(attempt) or not 1 <= attempt <= _MAX_INT:
        return _error(400, "attempt: expected an integer ≥ 1", field="attempt")
    try:
        _text(body, "claim", required=True)
    except _BadClaim as exc:
        return _error(400, str(exc), field=exc.field)
    return auth, body


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    limit = f"a{' non-empty' if required else ''} string of at most {CLAIM_MAX_CHARS} characters"
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > CLAIM_MAX_CHARS:
        raise _BadClaim(name, f"expected {limit}")
    if (problem := string_problem(value)) is not None:
        raise _BadClaim(name, problem)
    return value


def _gang_offer(body: dict[str, Any]) -> dict[str, Any]:
    """What the node offers the gang (all optional: an older launcher sends none of it)."""
    port, ranks, devices = body.get("port"), body.get("ranks"), body.get("devices")
    if port is not None and not (_is_int(port) and 1 <= port <= 65535):
        raise _BadClaim("port", "expected an integer from 1 to 65535, or null")
    if ranks is not None and not (_is_int(ranks) and 1 <= ranks <= _MAX_INT):
        raise _BadClaim("ranks", "expected an integer ≥ 1")
    if devices is not None and not (
        isinstance(devices, list)
        and len(devices) <= CLAIM_MAX_DEVICES
        and all(_is_int(d) and 0 <= d <= _MAX_INT for d in devices)
    ):
        raise _BadClaim("devices", f"expected a list of at most {CLAIM_MAX_DEVICES} GPU ids (integers ≥ 0)")
    return {
        "node": _text(body, "node").strip(),
        "address": _text(body, "address").strip(),
        "port": port,
        "ranks": ranks,
        "devices": devices or [],
    }


@csrf_exempt
@login_not_required
@require_POST
def run_claim(request: HttpRequest, run_id: int) -> JsonResponse:
    """`{"attempt": n, "claim": "<key>", "node", "address", "port", "ranks", "devices", "provenance"}`: a
    node claims its place in the gang of the run's attempt before starting anything, and polls the same
    way until the gang formed (runs/gang.py). 200 with the gang if this key holds a claim; 409 (with the
    desired state; "retry": true when it may work later) if not. Everything but attempt and claim is
    optional: an older launcher sends none of it (a gang of one, its node from its key)."""
    parsed = _claim_body(request, run_id)
    if isinstance(parsed, JsonResponse):
        return parsed
    auth, body = parsed
    try:
        offer = _gang_offer(body)
    except _BadClaim as exc:
        return _error(400, str(exc), field=exc.field)
    provenance = body.get("provenance")
    if provenance is not None:
        try:
            provenance = attempts.provenance_clean(provenance)
        except attempts.ProvenanceError as exc:
            return _error(400, str(exc), field="provenance")
    attempt = body["attempt"]
    result = gang.gang_claim(
        run_id=auth, attempt=attempt, claim=body["claim"], provenance=provenance, **offer
    )
    if not result.claimed:
        extra = {"retry": True} if result.retry else {}
        return _error(409, result.error, desired_state=result.desired_state, **extra)
    return JsonResponse(
        {
            "claimed": True,
            "attempt": attempt,
            "desired_state": result.desired_state,
            "gang": result.gang,
            "wait_s": settings.TRIAD_GANG_WAIT_S,
        }
    )


@csrf_exempt
@login_not_required
@require_POST
def run_release(request: HttpRequest, run_id: int) -> JsonResponse:
    """`{"attempt": n, "claim": "<key>"}`: a node gives back its claim on a gang that has not formed (it
    waited long enough, or stops). 200 whether or not the key held one; 409 once the gang formed."""
    parsed = _claim_body(request, run_id)
    if isinstance(parsed, JsonResponse):
        return parsed
    auth, body = parsed
    result = gang.gang_release(run_id=auth, attempt=body["attempt"], claim=body["claim"])
    if result.formed:
        return _error(
            409,
            f"run {run_id}: attempt {body['attempt']}'s gang formed; its claims are the run's now",
            desired_state=result.desired_state,
        )
    return JsonResponse({"released": result.released, "desired_state": result.desired_state})
