"""A real stack for end-to-end tests: uvicorn serving the ASGI app and a Celery worker on a GPU queue,
both on the test PostgreSQL database and Redis, with the trainer launched by the real `deepspeed`."""

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.db import connection
from playwright.sync_api import sync_playwright

from runs.lifecycle import run_cancel
from runs.models import ACTIVE_STATUSES, Run
from tests.processes import asgi_server, free_port, processes_mentioning  # noqa: F401 (re-exported for the e2e tests)

REPO = Path(__file__).resolve().parents[2]
# A sandbox node's DATABASE_URL: nothing listens on port 1, and there is no such user or database.
NO_DATABASE = "postgres://nobody@127.0.0.1:1/none"


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
    env: dict[str, str]
    workers: list[subprocess.Popen] = field(default_factory=list)

    def start_worker(
        self, *, gpu: bool = True, control: bool = True, sandbox: bool = True
    ) -> subprocess.Popen:
        """A Celery worker on this stack's GPU queue (unless `gpu` is False: GPU nodes of their own, from
        tests/e2e/netns.py, serve it), sandbox and control queues (unless `control` is False: a node
        alone, whose answers another worker records while it is busy; unless `sandbox` is False: a
        sandbox node of its own serves it) (its log: worker-<n>.log)."""
        queues = [f"gpu.{self.pool}"] if gpu else []
        queues += [f"sandbox-{self.pool}"] if control and sandbox else []
        queues += [f"control-{self.pool}"] if control else []
        return self._worker(queues, self.env)

    def start_sandbox_node(self) -> subprocess.Popen:
        """A worker on the sandbox queue alone, deployed as docs/sandbox.md says: a broker URL and no
        database credentials. Its DATABASE_URL points where nothing listens, so a query made by any task
        it runs fails that task."""
        env = {**self.env, "DATABASE_URL": NO_DATABASE}
        return self._worker([f"sandbox-{self.pool}"], env)

    def _worker(self, queues: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = (self.var_dir / f"worker-{len(self.workers)}.log").open("wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "controlplane",
                "worker",
                "-Q",
                ",".join(queues),
                "-P",
                "solo",
                "--loglevel",
                "INFO",
                "-n",
                f"{self.pool}-{len(self.workers)}@%h",
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.workers.append(proc)
        return proc

    def kill_worker(self, proc: subprocess.Popen) -> None:
        """As a node dying would: SIGKILL, no warm shutdown, no goodbye."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def log_tail(self) -> str:
        parts = []
        for path in sorted(self.var_dir.rglob("*.log")):
            parts.append(f"--- {path}\n" + path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)


@pytest.fixture
def stack(transactional_db, tmp_path, settings):
    with running_stack(tmp_path, settings) as stack:
        yield stack


@pytest.fixture
def split_stack(transactional_db, tmp_path, settings):
    """The stack with its sandbox queue served by a sandbox node of its own, which cannot reach the
    database (`Stack.start_sandbox_node`); the first worker serves the GPU and control queues."""
    with running_stack(tmp_path, settings, sandbox_apart=True) as stack:
        yield stack


@pytest.fixture
def host_stack(transactional_db, tmp_path, settings):
    """The stack with a worker for its control and sandbox queues only: its GPU queue is left to nodes of
    their own (tests/e2e/netns.py)."""
    with running_stack(tmp_path, settings, gpu_worker=False) as stack:
        yield stack


@contextlib.contextmanager
def running_stack(
    tmp_path: Path, settings, *, gpu_worker: bool = True, sandbox_apart: bool = False
) -> Iterator[Stack]:
    """The ASGI server and one worker on the configured database and Redis (`settings`: the test's, or
    django.conf.settings in a bench); at the end every active run is cancelled and everything stopped."""
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
        "TRIAD_SANDBOX_QUEUE": f"sandbox-{pool}",  # and so do dataset verification chunks
        "TRIAD_CONTROL_QUEUE": f"control-{pool}",  # and node registration
        "PYTHONUNBUFFERED": "1",
        "PGAPPNAME": f"triad-{pool}",  # names this stack's database sessions, to end them at teardown
    }
    web = asgi_server(env, port, tmp_path / "web.log")
    settings.TRIAD_SANDBOX_QUEUE = env["TRIAD_SANDBOX_QUEUE"]  # imports made by the test itself too
    settings.TRIAD_CONTROL_QUEUE = env["TRIAD_CONTROL_QUEUE"]  # (verification starts there)
    stack = Stack(base_url=base_url, pool=pool, var_dir=tmp_path, env=env)
    stack.start_worker(gpu=gpu_worker, sandbox=not sandbox_apart)
    if sandbox_apart:
        stack.start_sandbox_node()

    def web_up() -> bool:
        try:
            with urllib.request.urlopen(f"{base_url}/login/", timeout=2):
                return True
        except OSError:
            return False

    try:
        wait_until(web_up, 60, "the ASGI server")
        yield stack
    finally:
        for run_id in Run.objects.filter(status__in=ACTIVE_STATUSES).values_list("pk", flat=True):
            run_cancel(run_id=run_id)
        # Only runs a launcher claimed have processes to end: a factory-made "running" run stays
        # cancelling with no one to finish it, and waiting on it cost 40 s a test.
        claimed = Run.objects.filter(status__in=ACTIVE_STATUSES, claims__isnull=False)
        try:
            wait_until(lambda: not claimed.exists(), 40, "runs to stop")
        except AssertionError:
            pass
        for proc in [web, *stack.workers]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in [web, *stack.workers]:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        with connection.cursor() as cursor:  # sessions the killed servers may have left half-closed
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                [env["PGAPPNAME"]],
            )


def wait_verified(version_id: int, timeout_s: float = 120) -> None:
    """Until the stack's worker has run every reference solution of the version."""
    from datasets_app.models import Problem, ProblemStatus

    wait_until(
        lambda: not Problem.objects.filter(version_id=version_id, status=ProblemStatus.PENDING).exists(),
        timeout_s,
        f"verification of dataset version {version_id}",
    )


# As root Chromium needs --no-sandbox; the rest keep it off the closed network (no background fetches).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def page(monkeypatch):
    """A page in Debian's Chromium, driven by Playwright."""
    # Playwright's sync API runs an event loop in this thread; the test's ORM calls are still plain
    # synchronous ones, made between browser steps.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()
