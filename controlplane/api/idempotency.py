"""`Idempotency-Key` on the calls that create something expensive (launching a run, uploading a dataset):
a client that lost the answer retries with the same key and gets the first answer again, instead of a
second run. Keys are per user and per operation and kept for a day; the same key with a different body
is a 409, since the client has mixed two requests up."""

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from controlplane.accounts.models import ApiIdempotency
from controlplane.api.errors import ApiError

KEEP = timedelta(days=1)
KEY_MAX = 200


def request_fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


IN_PROGRESS = 0  # the status of a key whose first request has not answered yet


def idempotent(
    request: HttpRequest,
    *,
    operation: str,
    fingerprint: str,
    create: Callable[[], tuple[int, Any]],
) -> tuple[int, Any]:
    """Run `create` (→ status, JSON-able body) once per `Idempotency-Key`; without the header, always.

    The key is reserved (committed) before `create` runs, as Stripe does: a retry that arrives while the
    first request is still working gets a 409 saying so rather than creating a second run; `create`
    keeps its own transactions (a launch that records a failed run keeps that record). A refusal is not
    remembered, so the client may fix the body and retry with the same key."""
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        return create()
    if len(key) > KEY_MAX:
        raise ApiError(400, f"Idempotency-Key: at most {KEY_MAX} characters", field="Idempotency-Key")
    user_id = int(request.user.pk or 0)  # the API's auth has run: a real user with a pk
    mine = ApiIdempotency.objects.filter(user_id=user_id, operation=operation)
    mine.filter(created_at__lt=timezone.now() - KEEP).delete()
    try:
        with transaction.atomic():
            reserved = ApiIdempotency.objects.create(
                user_id=user_id,
                operation=operation,
                key=key,
                request_hash=fingerprint,
                status=IN_PROGRESS,
                response={},
            )
    except IntegrityError:
        earlier = mine.filter(key=key).first()
        if earlier is None:  # it was refused and forgotten in between: try again from the start
            return idempotent(request, operation=operation, fingerprint=fingerprint, create=create)
        if earlier.request_hash != fingerprint:
            raise ApiError(
                409,
                "Idempotency-Key: already used for a different request; use a fresh key for a new one",
                field="Idempotency-Key",
            ) from None
        if earlier.status == IN_PROGRESS:
            raise ApiError(
                409,
                "Idempotency-Key: the first request with this key is still being processed; retry shortly",
                field="Idempotency-Key",
            ) from None
        return earlier.status, earlier.response
    try:
        status, body = create()
    except BaseException:
        reserved.delete()
        raise
    if status >= 300:
        reserved.delete()
    else:
        reserved.status = status
        reserved.response = json.loads(json.dumps(body, default=str))
        reserved.save(update_fields=["status", "response"])
    return status, body
