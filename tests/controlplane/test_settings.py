"""Settings from the environment: a bare start is production-safe, development is opted into.

Each case starts a fresh Python with only the variables it names (the settings module reads the
environment once, at import), as a deployment would.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from controlplane.management.commands.demo import demo_child_env

REPO = Path(__file__).resolve().parents[2]
READ = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({k: getattr(settings, k, None) for k in %r}, default=str))"
)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    # Nothing of the test run's own environment (TRIAD_DEV, DATABASE_URL, ...) leaks in.
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
        "TRIAD_VAR_DIR": str(tmp_path / "var"),
        **extra,
    }


def _production(tmp_path: Path, **extra: str) -> dict[str, str]:
    return _env(tmp_path, SECRET_KEY=secrets.token_urlsafe(60), ALLOWED_HOSTS="triad.example.com", **extra)


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def _settings(env: dict[str, str], *names: str) -> dict:
    done = _python(READ % (names,), env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_bare_start_without_a_secret_key_fails_and_names_the_variable(tmp_path):
    done = _python("import django; django.setup()", _env(tmp_path))

    assert done.returncode != 0
    assert "SECRET_KEY: required" in done.stderr
    assert not (tmp_path / "var" / "secret_key").exists()  # no key invented outside development


def test_an_eval_reaper_timeout_within_two_node_heartbeats_fails_and_names_both_variables(tmp_path):
    env = _env(tmp_path, TRIAD_DEV="true", TRIAD_NODE_HEARTBEAT_S="15", TRIAD_EVAL_LOST_AFTER_S="30")

    done = _python("import django; django.setup()", env)

    assert done.returncode != 0
    assert "TRIAD_EVAL_LOST_AFTER_S (30) must be more than twice TRIAD_NODE_HEARTBEAT_S (15)" in done.stderr
    assert _settings({**env, "TRIAD_EVAL_LOST_AFTER_S": "31"}, "TRIAD_EVAL_LOST_AFTER_S") == {
        "TRIAD_EVAL_LOST_AFTER_S": 31.0
    }


def test_a_bare_start_with_a_secret_key_is_production_safe(tmp_path):
    got = _settings(
        _production(tmp_path),
        "DEBUG",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_CONTENT_TYPE_NOSNIFF",
        "X_FRAME_OPTIONS",
        "SECURE_PROXY_SSL_HEADER",
    )

    assert got == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "X_FRAME_OPTIONS": "DENY",
        "SECURE_PROXY_SSL_HEADER": None,
    }


def test_check_deploy_is_clean_with_production_variables(tmp_path):
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=_production(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNINGS" not in done.stdout + done.stderr


def test_the_secret_key_can_come_from_a_file(tmp_path):
    key = secrets.token_urlsafe(60)
    key_file = tmp_path / "secret_key"
    key_file.write_text(key + "\n")

    got = _settings(_env(tmp_path, SECRET_KEY_FILE=str(key_file)), "SECRET_KEY")

    assert got == {"SECRET_KEY": key}


def test_development_mode_serves_plain_http_with_a_generated_key(tmp_path):
    got = _settings(
        _env(tmp_path, TRIAD_DEV="true"),
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
    )

    assert got == {
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
    }
    assert len((tmp_path / "var" / "secret_key").read_text().strip()) >= 50


def test_a_tls_terminating_proxy_names_its_header(tmp_path):
    env = _production(tmp_path, SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https")

    assert _settings(env, "SECURE_PROXY_SSL_HEADER") == {
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"]
    }
    bad = _python("import django; django.setup()", _production(tmp_path, SECURE_PROXY_SSL_HEADER="https"))
    assert "SECURE_PROXY_SSL_HEADER: expected HEADER,VALUE" in bad.stderr


def test_a_sqlite_database_url_connects(tmp_path):
    env = _env(tmp_path, TRIAD_DEV="true", DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}")

    done = _python(
        "import django; django.setup(); from django.db import connection; "
        "connection.ensure_connection(); print(connection.vendor)",
        env,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "sqlite"


def test_a_postgresql_database_url_keeps_its_connection_pool(tmp_path):
    env = _env(tmp_path, TRIAD_DEV="true", DATABASE_URL="postgres://triad@db.example.com:5432/triad")

    got = _settings(env, "DATABASES")

    assert got["DATABASES"]["default"]["OPTIONS"]["pool"]["max_size"] == 20


def test_manage_py_demo_starts_in_development_mode_with_nothing_set(tmp_path):
    # A sandbox backend that cannot exist makes the demo stop at its first step, after the settings
    # loaded: without development mode they would have refused for want of SECRET_KEY.
    done = subprocess.run(
        [sys.executable, "manage.py", "demo", "--no-run"],
        cwd=REPO,
        env=_env(tmp_path, TRIAD_SANDBOX_BACKEND="none"),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert "SECRET_KEY" not in done.stderr
    assert "the demo needs a working sandbox" in done.stderr


def test_the_demo_s_web_server_and_workers_inherit_development_mode(monkeypatch):
    monkeypatch.setenv("TRIAD_DEV", "false")

    env = demo_child_env(host="127.0.0.1", port=8123)

    assert env["TRIAD_DEV"] == "true"
    assert env["TRIAD_CONTROL_URL"] == "http://127.0.0.1:8123"
