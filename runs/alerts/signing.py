"""The webhook signature: HMAC-SHA256, keyed by the rule's secret, over `<timestamp>.<body>`.

Plain Python (a receiver can copy it): signing the timestamp with the body lets a receiver refuse a
replayed request (an old timestamp) as well as a forged one (docs/alerts.md, "Verifying a webhook").
"""

import hashlib
import hmac

SIGNATURE_HEADER = "X-Triad-Signature"
TIMESTAMP_HEADER = "X-Triad-Timestamp"


def signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The header's value: `sha256=<hex digest>`."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_valid(
    *, secret: str, timestamp: str, body: bytes, header: str, now: float, tolerance_s: int = 300
) -> bool:
    """What a receiver checks: the signature matches (compared in constant time) and the timestamp is
    within `tolerance_s` of its clock."""
    if not timestamp.isdigit() or abs(now - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret=secret, timestamp=int(timestamp), body=body), header)
