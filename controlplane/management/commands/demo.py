"""`make demo`: Triad on one machine. Migrates, creates a login, imports the bundled dataset, starts the
web server and the workers, launches a demo run and prints the URL. Ctrl-C stops everything it started.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from controlplane.accounts.models import Role
from controlplane.accounts.services import membership_set, team_default
from datasets_app.models import Problem, ProblemStatus
from datasets_app.services import dataset_import
from runs.launch import RunLaunchError, run_launch
from runs.lifecycle import run_cancel
from runs.models import ACTIVE_STATUSES, Run
from workers.sandbox.batch import SandboxUnavailable, resolve_backend
from workers.spec import RunConfig

BUNDLED_DATASET = Path(settings.BASE_DIR) / "datasets_app" / "data" / "demo_problems.jsonl"


def demo_child_env(*, host: str, port: int) -> dict[str, str]:
    """The environment of the demo's web server and workers: development mode like the demo itself
    (plain HTTP on this machine, the generated key under var/), whatever the shell had."""
    return {
        **os.environ,
        "TRIAD_DEV": "true",
        "TRIAD_CONTROL_URL": f"http://{host}:{port}",
        "PYTHONUNBUFFERED": "1",
    }


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run Triad on this machine with a demo run (embedded mode unless DATABASE_URL etc. are set)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))
        parser.add_argument("--steps", type=int, default=600)
        parser.add_argument("--no-run", action="store_true", help="start everything but launch no run")

    def handle(self, *args: object, **opts: object) -> None:
        host, port, steps = str(opts["host"]), int(str(opts["port"])), int(str(opts["steps"]))
        if not settings.TRIAD_DEV:  # its login page would redirect to an HTTPS nobody serves
            raise CommandError("the demo serves plain HTTP on this machine: run it with TRIAD_DEV=true")
        try:  # the demo runs generated code: refuse up front where the sandbox cannot isolate it
            resolve_backend(None)
        except SandboxUnavailable as exc:
            raise CommandError(f"the demo needs a working sandbox: {exc}") from None
        call_command("migrate", interactive=False, verbosity=0)
        user, password = self._login()
        version = dataset_import(
            user=user,
            name="demo-synthetic",
            fileobj=BUNDLED_DATASET.open("rb"),
            filename=BUNDLED_DATASET.name,
            team=team_default(),  # the demo login's team, which its run launches into
        ).version
        env = demo_child_env(host=host, port=port)
        python = sys.executable
        celery = [python, "-m", "celery", "-A", "controlplane", "worker", "--loglevel", "WARNING"]
        commands = {
            "web": [
                python,
                "-m",
                "uvicorn",
                "controlplane.asgi:application",
                "--host",
                host,
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            # -B: the beat that reaps lost runs rides along with the control worker.
            "control worker": [
                *celery,
                "-Q",
                f"{settings.TRIAD_CONTROL_QUEUE},{settings.TRIAD_SANDBOX_QUEUE}",
                "-c",
                "1",
                "-n",
                "control@%h",
                "-B",
                "--schedule",
                str(settings.VAR_DIR / "celerybeat-schedule"),
            ],
            "gpu worker": [*celery, "-Q", f"gpu.{settings.TRIAD_DEFAULT_POOL}", "-P", "solo", "-n", "gpu@%h"],
        }
        # Ctrl-C and a plain `kill` both end in the same clean stop, even where SIGINT came in ignored
        # (a background job of a non-interactive shell).
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        procs = {
            name: subprocess.Popen(cmd, env=env, start_new_session=True) for name, cmd in commands.items()
        }
        try:
            self._wait_for(f"http://{host}:{port}/login/")
            self._wait_for_verification(version.pk)
            if not opts["no_run"]:
                try:
                    launched = run_launch(
                        user=user,
                        dataset_version=version,
                        name="demo",
                        team=version.dataset.team,
                        # A short imitation of the references leaves the tiny model at a ~0.25 pass
                        # rate; RL (GRPO, fresh optimizer, a 10x smaller rate) then climbs from there,
                        # as bench/learning.py measures.
                        config=RunConfig(
                            steps=steps,
                            prompts_per_step=4,
                            group_size=8,
                            lr=3e-4,
                            max_new_tokens=24,
                            sft_warmup_steps=100,
                            sft_lr=3e-3,
                        ),
                    )
                except RunLaunchError as exc:
                    self.stderr.write(f"no demo run: {exc}")
                else:
                    self.stdout.write(f"launched run #{launched.run.pk}")
            self.stdout.write(self.style.SUCCESS(f"\nTriad is running at http://{host}:{port}/"))
            self.stdout.write(f"log in as: {user.get_username()} / {password}")
            self.stdout.write("Ctrl-C stops everything.\n")
            while all(p.poll() is None for p in procs.values()):
                time.sleep(1)
            dead = [name for name, p in procs.items() if p.poll() is not None]
            self.stderr.write(f"{', '.join(dead)} exited; stopping the rest")
        except KeyboardInterrupt:
            self.stdout.write("\nstopping…")
        finally:
            self._stop(procs)

    def _login(self) -> tuple[User, str]:
        password = secrets.token_urlsafe(9)
        user, _ = User.objects.get_or_create(
            username="demo", defaults={"is_staff": True, "is_superuser": True}
        )
        user.set_password(password)
        user.save()
        # A superuser is admin of every team already; the membership shows the demo's team on its pages.
        membership_set(team=team_default(), user=user, role=Role.ADMIN, actor=None)
        return user, password

    def _wait_for_verification(self, version_id: int, timeout_s: float = 180) -> None:
        """Runs train on verified problems only: let the control worker run every reference first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pending = Problem.objects.filter(version_id=version_id, status=ProblemStatus.PENDING).count()
            if not pending:
                verified = Problem.objects.filter(
                    version_id=version_id, status=ProblemStatus.VERIFIED
                ).count()
                self.stdout.write(f"dataset verified: {verified} problems pass their tests")
                return
            time.sleep(0.5)
        self.stderr.write("verification is still running; the demo run may find no verified problems yet")

    def _wait_for(self, url: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (our own local URL)
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"the web server did not answer at {url} within {timeout_s:.0f}s")

    def _stop(self, procs: dict[str, subprocess.Popen[bytes]]) -> None:
        # Cancel live runs first so their trainers checkpoint and the launcher kills their process trees.
        for run_id in Run.objects.filter(status__in=ACTIVE_STATUSES).values_list("pk", flat=True):
            run_cancel(run_id=run_id)
        deadline = time.monotonic() + 20
        while Run.objects.filter(status__in=ACTIVE_STATUSES).exists() and time.monotonic() < deadline:
            if procs["web"].poll() is not None:
                break
            time.sleep(0.5)
        for proc in procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
