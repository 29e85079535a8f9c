import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


class Triad:
    """The `triad` command run as a user runs it: its own process, its own config directory, and no
    TRIAD_URL / TRIAD_TOKEN unless a test sets them."""

    def __init__(self, home: Path):
        self.home = home
        self.env = {
            "PATH": os.environ["PATH"],
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "PYTHONPATH": str(REPO),
            "LANG": "C.UTF-8",
        }

    @property
    def config_file(self) -> Path:
        return self.home / ".config" / "triad" / "config.json"

    def __call__(self, *args: str, input: str | None = None, timeout: float = 120, **env: str):
        return subprocess.run(
            [sys.executable, "-m", "triad", *args],
            input=input if input is not None else "",
            capture_output=True,
            text=True,
            env={**self.env, **env},
            cwd=self.home,
            timeout=timeout,
        )

    def popen(self, *args: str, **env: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "triad", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**self.env, **env},
            cwd=self.home,
            # As a person's shell would start it. A job started with `&` (make test's embedded run) has
            # SIGINT ignored, which its children inherit; Python then installs no KeyboardInterrupt.
            preexec_fn=_interruptible,
        )


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def triad(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    return Triad(home)


def no_traceback(done) -> None:
    assert "Traceback" not in done.stderr, done.stderr


@pytest.fixture
def world(live_server, triad):
    """A live server with alice, her write and read tokens, a dataset version of three verified
    problems, and a running run that has logged and reported metrics through the ingest door."""
    import httpx

    from controlplane.accounts.services import api_token_create
    from runs.models import RunStatus
    from tests.factories import TEST_TOKEN, DatasetVersionFactory, ProblemFactory, RunFactory, UserFactory

    alice = UserFactory(username="alice")
    version = DatasetVersionFactory(dataset__created_by=alice, dataset__name="adders", problem_count=3)
    for _ in range(3):
        ProblemFactory(version=version)
    run = RunFactory(created_by=alice, dataset_version=version, name="warm-up", status=RunStatus.RUNNING)
    write, _ = api_token_create(user=alice, name="laptop", scope="write", expires_in_days=30)
    read, _ = api_token_create(user=alice, name="ci", scope="read", expires_in_days=30)

    events = [
        {"seq": i, "type": "log", "level": "info", "message": f"step {i} done", "time": 1767225600.0 + i}
        for i in range(3)
    ] + [
        {
            "seq": 10 + step,
            "type": "metric",
            "step": step,
            "time": 1767225600.0 + step,
            "values": {"reward/mean": step / 10, "pass_rate": step / 20},
        }
        for step in range(5)
    ]
    answer = httpx.post(
        f"{live_server.url}/api/v1/runs/{run.pk}/events",
        headers={"Authorization": f"Bearer {TEST_TOKEN}"},
        json={"events": events},
    )
    assert answer.status_code == 200, answer.text

    triad.env.update({"TRIAD_URL": live_server.url, "TRIAD_TOKEN": write})
    return World(url=live_server.url, user=alice, token=write, read_token=read, run=run, version=version)


class World:
    def __init__(self, **fields):
        self.__dict__.update(fields)
