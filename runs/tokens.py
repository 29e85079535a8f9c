import hashlib
import hmac
import secrets

TOKEN_PREFIX = "triad_run_"  # noqa: S105 (a prefix that makes leaked tokens greppable, not a secret)


def token_new() -> tuple[str, str]:
    """A fresh run token and its hash. Only the hash is stored; the token is shown once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, expected_hash: str) -> bool:
    return hmac.compare_digest(token_hash(token), expected_hash)
