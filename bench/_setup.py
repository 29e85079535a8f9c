"""What the database benchmarks share: Django set up on the bench database, created and migrated."""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.processes import asgi_server, free_port, wait_port  # noqa: E402,F401 (re-exported for benches)


def django_setup(database: str = "triad_bench") -> None:
    """Django on DATABASE_URL (default: a bench database of its own), which is created and migrated."""
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    os.environ.setdefault("TRIAD_DEV", "true")  # a benchmark is development: no production key needed
    os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{database}")
    import django
    import psycopg
    from django.conf import settings
    from django.core.management import call_command

    django.setup()
    name = settings.DATABASES["default"]["NAME"]
    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            admin.execute(f'CREATE DATABASE "{name}"')
    call_command("migrate", verbosity=0)
