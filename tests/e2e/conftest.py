"""A real stack for end-to-end tests: uvicorn serving the ASGI app and a Celery worker on a GPU queue,
both on the test PostgreSQL database and Redis, with the trainer launched by the real `deepspeed`."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from runs.models import ACTIVE_STATUSES, Run
from runs.services import run_cancel

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")


@dataclass
class Stack:
    base_url: str
    pool: str
    var_dir: Path

    def log_tail(self) -> str:
        parts = []
        for path in sorted(self.var_dir.rglob("*.log")):
            parts.append(f"--- {path}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)


@pytest.fixture
def stack(transactional_db, tmp_path):
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    port = free_port()
    pool = f"e2e-{uuid.uuid4().hex[:8]}"
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": settings.REDIS_URL,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "TRIAD_CONTROL_URL": base_url,
        "TRIAD_VAR_DIR": str(tmp_path),
        "SECRET_KEY": settings.SECRET_KEY,
        "TRIAD_HEARTBEAT_S": "1",
        "TRIAD_DEFAULT_POOL": pool,  # runs launched from the browser go to this test's worker
        "PYTHONUNBUFFERED": "1",
    }
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("web", "worker")}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "controlplane.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=env,
            stdout=logs["web"],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ),
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "controlplane",
                "worker",
                "-Q",
                f"gpu.{pool}",
                "-P",
                "solo",
                "--loglevel",
                "INFO",
                "-n",
                f"{pool}@%h",
            ],
            cwd=REPO,
            env=env,
            stdout=logs["worker"],
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ),
    ]

    def web_up() -> bool:
        try:
            with urllib.request.urlopen(f"{base_url}/login/", timeout=2):
                return True
        except OSError:
            return False

    try:
        wait_until(web_up, 60, "the ASGI server")
        yield Stack(base_url=base_url, pool=pool, var_dir=tmp_path)
    finally:
        for run_id in Run.objects.filter(status__in=ACTIVE_STATUSES).values_list("pk", flat=True):
            run_cancel(run_id=run_id)
        try:
            wait_until(
                lambda: not Run.objects.filter(status__in=ACTIVE_STATUSES).exists(), 40, "runs to stop"
            )
        except AssertionError:
            pass
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for f in logs.values():
            f.close()
        with connection.cursor() as cursor:  # sessions the killed servers may have left half-closed
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found
