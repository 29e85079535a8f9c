import os
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
        )


@pytest.fixture
def triad(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    return Triad(home)


def no_traceback(done) -> None:
    assert "Traceback" not in done.stderr, done.stderr
