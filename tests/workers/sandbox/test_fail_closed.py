"""The sandbox never fails open: without working isolation it refuses, unless an operator opted in."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.sandbox import Item, Limits, SandboxUnavailable, batch, run_batch
from workers.sandbox import __main__ as cli

SECRET = "s3cr3t-database-password"


@pytest.fixture
def victim() -> Iterator[int]:
    """Another process of this machine holding a secret in its environment (a web worker, say)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], env={**os.environ, "TRIAD_VICTIM": SECRET}
    )
    yield proc.pid
    proc.kill()
    proc.wait()


def _stealer(pid: int, marker: Path) -> Item:
    """A candidate that records that it ran and passes only if it read the victim's secret."""
    code = (
        f"open({str(marker)!r}, 'w').write('ran')\n"
        f"def stolen():\n"
        f"    try:\n"
        f"        return open('/proc/{pid}/environ', 'rb').read()\n"
        f"    except OSError:\n"
        f"        return b''\n"
    )
    return Item(id="steal", code=code, tests=f"assert {SECRET.encode()!r} in stolen()")


def test_the_default_backend_refuses_to_run_code_when_bwrap_is_missing(bwrap_missing, victim, tmp_path):
    marker = tmp_path / f"ran-{uuid.uuid4().hex}"

    with pytest.raises(SandboxUnavailable) as refused:
        run_batch([_stealer(victim, marker)], Limits(timeout_s=5))

    message = str(refused.value)
    assert "/nonexistent/bwrap is not installed" in message
    assert "apt-get install bubblewrap" in message
    assert "TRIAD_SANDBOX_UNISOLATED=1" in message
    assert not marker.exists(), "the candidate ran although the sandbox refused"


def test_an_explicit_bwrap_backend_refuses_too(bwrap_missing):
    with pytest.raises(SandboxUnavailable, match="the bwrap backend does not work here"):
        run_batch([Item(id="a", code="x = 1", tests="assert x == 1")], backend="bwrap")


def test_the_operator_opt_in_runs_trusted_code_unisolated_and_says_so(bwrap_missing, monkeypatch, caplog):
    monkeypatch.setenv(batch.UNISOLATED_ENV, "1")

    with caplog.at_level("WARNING", logger="workers.sandbox.batch"):
        [result] = run_batch([Item(id="a", code="x = 1", tests="assert x == 1")], cache=False)

    assert result.passed
    assert "SANDBOX UNISOLATED (TRIAD_SANDBOX_UNISOLATED=1)" in caplog.text


def test_a_malformed_opt_in_is_refused_naming_the_variable(bwrap_missing, monkeypatch):
    monkeypatch.setenv(batch.UNISOLATED_ENV, "maybe")

    with pytest.raises(SandboxUnavailable, match="TRIAD_SANDBOX_UNISOLATED: expected 1 or 0, got 'maybe'"):
        run_batch([Item(id="a", code="x = 1", tests="assert x == 1")])


def test_choosing_docker_where_no_engine_runs_refuses_instead_of_falling_back(bwrap_missing, monkeypatch):
    from workers.sandbox import docker_backend

    if not docker_backend.unavailable_reason():
        pytest.skip("a docker engine runs here")
    monkeypatch.setenv(batch.BACKEND_ENV, "docker")
    monkeypatch.setenv(batch.UNISOLATED_ENV, "1")  # the choice of docker is not undone by the opt-in

    with pytest.raises(SandboxUnavailable, match="the docker backend does not work here"):
        run_batch([Item(id="a", code="x = 1", tests="assert x == 1")])


def test_the_cli_refuses_with_exit_status_1_and_says_what_to_install(bwrap_missing, monkeypatch, capsys):
    doc = {"items": [{"id": "a", "code": "x = 1", "tests": "assert x == 1"}]}
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(doc)))

    status = cli.main([])

    assert status == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "sandbox unavailable" in captured.err
    assert "apt-get install bubblewrap" in captured.err
