"""Secrets at rest (datasets_app/secrets.py): Fernet tokens under TRIAD_SECRETS_KEY."""

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from datasets_app import secrets

API_KEY = "sk-proj-abcdefghijklmnop1234"


def test_a_secret_round_trips_and_its_token_does_not_hold_it(settings):
    settings.TRIAD_SECRETS_KEY = Fernet.generate_key().decode()

    token, again = secrets.encrypt(API_KEY), secrets.encrypt(API_KEY)

    assert secrets.decrypt(token) == API_KEY == secrets.decrypt(again)
    assert token != again and API_KEY not in token and "abcdefgh" not in token


def test_another_key_refuses_the_token(settings):
    settings.TRIAD_SECRETS_KEY = Fernet.generate_key().decode()
    token = secrets.encrypt(API_KEY)
    settings.TRIAD_SECRETS_KEY = Fernet.generate_key().decode()

    with pytest.raises(secrets.SecretError, match="another TRIAD_SECRETS_KEY"):
        secrets.decrypt(token)
    with pytest.raises(secrets.SecretError):
        secrets.decrypt("not a token")


def test_keys_rotate_the_first_encrypts_and_any_decrypts(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.TRIAD_SECRETS_KEY = old
    under_old = secrets.encrypt(API_KEY)
    settings.TRIAD_SECRETS_KEY = f"{new}, {old}"

    under_new = secrets.encrypt(API_KEY)

    assert secrets.decrypt(under_old) == secrets.decrypt(under_new) == API_KEY
    settings.TRIAD_SECRETS_KEY = new
    assert secrets.decrypt(under_new) == API_KEY


def test_development_derives_a_key_from_secret_key_and_production_refuses_without_one(settings):
    settings.TRIAD_SECRETS_KEY = ""
    settings.TRIAD_DEV = True
    token = secrets.encrypt(API_KEY)
    assert secrets.decrypt(token) == API_KEY
    settings.SECRET_KEY = "another secret key, another derived key"
    with pytest.raises(secrets.SecretError):
        secrets.decrypt(token)

    settings.TRIAD_DEV = False
    with pytest.raises(ImproperlyConfigured, match="TRIAD_SECRETS_KEY: required"):
        secrets.encrypt(API_KEY)


def test_a_malformed_key_stops_start_up_naming_the_variable():
    env = {**os.environ, "TRIAD_SECRETS_KEY": "too-short", "TRIAD_DEV": "true"}

    done = subprocess.run(
        [sys.executable, "-c", "import controlplane.settings"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode != 0 and "TRIAD_SECRETS_KEY: expected Fernet keys" in done.stderr


def test_mask_shows_a_hint_never_the_key():
    assert secrets.mask(API_KEY) == "sk-…1234"
    assert secrets.mask("tok-0123456789abcd") == "…abcd"
    assert secrets.mask("short-key") == "…"
    assert secrets.mask("") == ""
