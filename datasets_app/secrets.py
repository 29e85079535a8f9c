"""Secrets at rest (a teacher's API key): Fernet tokens under a key from the environment.

The key is TRIAD_SECRETS_KEY (a Fernet key: 32 url-safe base64 bytes; several, comma-separated, rotate:
the first encrypts, any of them decrypts). Unset in development (TRIAD_DEV), a key derived from
SECRET_KEY stands in, so `make demo` works without one; unset in production, storing or reading a secret
is refused with ImproperlyConfigured naming the variable. A stored token is never decrypted for display:
pages show `mask()` of the plain text, taken once when it is entered.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

VARIABLE = "TRIAD_SECRETS_KEY"
HOW_TO_GENERATE = (
    "generate one with `python -c 'from cryptography.fernet import Fernet; "
    "print(Fernet.generate_key().decode())'`"
)
_DEV_LABEL = b"triad secrets (development only): "


class SecretError(ValueError):
    """A token this deployment's key cannot open: another key, or not a token at all."""


def _fernet() -> MultiFernet:
    configured = str(getattr(settings, VARIABLE, "") or "")
    keys = [k.strip() for k in configured.split(",") if k.strip()]
    if not keys:
        if not settings.TRIAD_DEV:
            raise ImproperlyConfigured(
                f"{VARIABLE}: required to store or read secrets (a teacher's API key); {HOW_TO_GENERATE}"
            )
        digest = hashlib.sha256(_DEV_LABEL + str(settings.SECRET_KEY).encode()).digest()
        keys = [base64.urlsafe_b64encode(digest).decode()]
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError as exc:  # settings validate at start-up; an override in a test may not
        raise ImproperlyConfigured(f"{VARIABLE}: not a Fernet key ({exc})") from exc


def encrypt(plain: str) -> str:
    """A token (url-safe ASCII) holding `plain`; a new one each call (Fernet adds a random IV)."""
    return _fernet().encrypt(plain.encode()).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretError(
            f"cannot decrypt this secret: it was stored under another {VARIABLE} (or is damaged); "
            "enter it again"
        ) from exc


def mask(plain: str) -> str:
    """A hint a person recognises their key by, never enough to use it: 'sk-…abcd' (its first three
    characters only when it is long enough that seven leave plenty unknown)."""
    if not plain:
        return ""
    if len(plain) < 12:
        return "…"
    if len(plain) < 24:
        return f"…{plain[-4:]}"
    return f"{plain[:3]}…{plain[-4:]}"
