"""A command in a repository workspace: isolated, limited, and leaving nothing behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.workers.slot_processes import slot_processes
from workers.sandbox import SandboxUnavailable, batch
from workers.sandbox.batch import bwrap_available
from workers.sandbox.process_backend import SLOT_UID_BASE
from workers.sandbox.workspace_exec import PYTHON, run_in_workspace

needs_bwrap = pytest.mark.skipif(not bwrap_available(), reason="bwrap does not work on this machine")


@needs_bwrap
def test_the_command_runs_in_the_workspace_as_an_unprivileged_uid_and_its_writes_stay(tmp_path: Path) -> None:
    (tmp_path / "mod.py").write_text("VALUE = 41\n")
    code = (
        "import os, mod\nprint(os.getcwd(), os.getuid(), mod.VALUE + 1)\nopen('out.txt', 'w').write('hi')\n"
    )

    result = run_in_workspace(
        tmp_path, [PYTHON, "-c", "import sys; sys.path.insert(0, ''); " + code], timeout_s=20
    )

    assert result.error_class == "" and result.returncode == 0, result.stderr
    cwd, uid, value = result.stdout.split()
    assert cwd == "/repo" and value == "42"
    if os.geteuid() == 0:
        assert int(uid) >= SLOT_UID_BASE
    assert (tmp_path / "out.txt").read_text() == "hi"


@needs_bwrap
def test_there_is_no_network_and_the_host_filesystem_is_read_only(tmp_path: Path) -> None:
    code = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('1.1.1.1', 80), timeout=2); print('net: open')\n"
        "except OSError as e:\n"
        "    print('net: refused', e.errno)\n"
        "for path in ('/usr/evil', '/etc/evil', '/root/evil'):\n"
        "    try:\n"
        "        open(path, 'w'); print('wrote', path)\n"
        "    except OSError:\n"
        "        pass\n"
    )
    result = run_in_workspace(tmp_path, [PYTHON, "-c", code], timeout_s=20)

    assert result.stdout.startswith("net: refused"), result.stdout + result.stderr
    assert "wrote" not in result.stdout


@needs_bwrap
def test_a_timeout_kills_the_command_and_says_so(tmp_path: Path) -> None:
    start = time.monotonic()
    result = run_in_workspace(tmp_path, [PYTHON, "-c", "import time; time.sleep(60)"], timeout_s=1)

    assert result.timed_out and result.error_class == "timeout"
    assert time.monotonic() - start < 10
    assert slot_processes() == []


@needs_bwrap
def test_a_fork_bomb_is_contained_and_leaves_no_process(tmp_path: Path) -> None:
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    start = time.monotonic()
    result = run_in_workspace(tmp_path, [PYTHON, "-c", bomb], timeout_s=2)

    assert result.timed_out
    assert time.monotonic() - start < 20
    assert slot_processes() == []
    # and the slot is usable at once
    again = run_in_workspace(tmp_path, [PYTHON, "-c", "print('after')"], timeout_s=20)
    assert again.stdout.strip() == "after"


@needs_bwrap
def test_a_daemon_that_detaches_does_not_outlive_the_command(tmp_path: Path) -> None:
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(0.5); open('late.txt', 'w').write('alive')\n"
        "    os._exit(0)\n"
        "print('parent done')\n"
    )
    result = run_in_workspace(tmp_path, [PYTHON, "-c", code], timeout_s=20)
    time.sleep(1.0)

    assert result.stdout.strip() == "parent done"
    assert not (tmp_path / "late.txt").exists()
    assert slot_processes() == []


@needs_bwrap
def test_output_is_capped_and_the_cut_is_said(tmp_path: Path) -> None:
    result = run_in_workspace(tmp_path, [PYTHON, "-c", "print('x' * 100000)"], timeout_s=20, output_cap=1000)

    assert result.stdout.startswith("x" * 1000)
    assert result.stdout.endswith("[output cut: 99001 more bytes]")


@needs_bwrap
def test_memory_beyond_the_limit_fails_inside_the_command(tmp_path: Path) -> None:
    code = "try:\n    b = bytearray(600 << 20)\n    print('got')\nexcept MemoryError:\n    print('refused')"
    result = run_in_workspace(tmp_path, [PYTHON, "-c", code], timeout_s=20, memory_mb=256)

    assert result.stdout.strip() == "refused"


def test_without_isolation_it_refuses_and_runs_nothing(bwrap_missing, tmp_path: Path) -> None:
    with pytest.raises(SandboxUnavailable) as refused:
        run_in_workspace(tmp_path, [PYTHON, "-c", "open('ran', 'w')"], timeout_s=5)

    assert "TRIAD_SANDBOX_UNISOLATED=1" in str(refused.value)
    assert not (tmp_path / "ran").exists()


def test_the_operator_opt_in_runs_it_unisolated_in_the_workspace(
    bwrap_missing, monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(batch.UNISOLATED_ENV, "1")

    result = run_in_workspace(
        tmp_path, [PYTHON, "-c", "import os; open('ran', 'w'); print(os.getcwd())"], timeout_s=20
    )

    assert result.error_class == "", result.stderr
    assert result.stdout.strip() == str(tmp_path.resolve())
    assert (tmp_path / "ran").exists()


@needs_bwrap
def test_a_command_that_cannot_start_is_the_sandboxs_error_not_the_commands(tmp_path: Path) -> None:
    result = run_in_workspace(tmp_path, ["/nonexistent/program"], timeout_s=20)
    assert result.error_class == "sandbox_error" and result.returncode == -1
    assert "FileNotFoundError" in result.stderr
