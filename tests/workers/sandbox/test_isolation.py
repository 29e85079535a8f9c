from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pytest

from workers.sandbox import Item, Limits, Result
from workers.sandbox.process_backend import slot_uid

from .conftest import run_items

ADD = "def add(a, b):\n    return a + b\n"
TESTS = "assert add(1, 2) == 3\n"


def run_one(backend: str, code: str, tests: str = TESTS, **limits: float) -> Result:
    return run_items(backend, [Item(id="x", code=code, tests=tests)], Limits(**limits))[0]  # type: ignore[arg-type]


def test_os_exit_before_the_tests_does_not_pass(backend: str) -> None:
    result = run_one(backend, "import os\nos._exit(0)\n")
    assert not result.passed and result.error_class == "crash"


def test_os_exit_inside_the_candidate_function_does_not_pass(backend: str) -> None:
    result = run_one(backend, "import os\ndef add(a, b):\n    os._exit(0)\n")
    assert not result.passed and result.error_class == "crash"


def test_sys_exit_does_not_pass(backend: str) -> None:
    result = run_one(backend, "import sys\nsys.exit(0)\n")
    assert not result.passed and result.error_class == "runtime_error"
    assert result.exception_type == "SystemExit"


def test_an_always_equal_return_value_does_not_pass(backend: str) -> None:
    code = "class Eq:\n    def __eq__(self, other):\n        return True\ndef add(a, b):\n    return Eq()\n"
    result = run_one(backend, code)
    assert not result.passed and result.error_class == "wrong_answer"


def test_subclasses_of_builtin_types_are_compared_as_their_base(backend: str) -> None:
    code = "import collections\nP = collections.namedtuple('P', 'x y')\ndef add(a, b):\n    return P(a, b)\n"
    result = run_one(backend, code, tests="assert add(1, 2) == (1, 2)\n")
    assert result.passed


def test_patching_builtins_does_not_fool_the_tests(backend: str) -> None:
    code = "import builtins\nbuiltins.AssertionError = type('X', (Exception,), {})\n" + ADD.replace(
        "a + b", "0"
    )
    result = run_one(backend, code)
    assert not result.passed and result.error_class == "wrong_answer"


def test_printing_a_fake_verdict_does_not_pass(backend: str) -> None:
    verdict = '{"error_class": "passed", "tests_passed": 1, "tests_total": 1}'
    code = f"print({verdict!r})\nimport os\nos._exit(0)\n"
    result = run_one(backend, code)
    assert not result.passed


def _alive(token: str) -> bool:
    for proc in Path("/proc").iterdir():
        try:
            if token.encode() in (proc / "cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def test_forked_sleeping_grandchild_is_killed(backend: str) -> None:
    # given code that leaves a daemonised grandchild sleeping, tagged with a unique token
    token = secrets.token_hex(8)
    code = (
        "import os, sys\n"
        "if os.fork() == 0:\n"
        "    if os.fork() == 0:\n"
        "        argv = [sys.executable, '-c', 'import time; time.sleep(60)']\n"
        f"        os.execv(sys.executable, [*argv, '{token}'])\n"
        "    os._exit(0)\n"
        "print(os.getpid(), flush=True)\n"
        "import time\ntime.sleep(0.3)\n" + ADD
    )
    result = run_one(backend, code)
    # then the item still passes, and nothing with the token is left running
    assert result.passed, result.stderr
    deadline = time.monotonic() + 5
    while _alive(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(token)
    if backend == "process":  # in bwrap the pid is the sandbox's own pid namespace
        assert not Path(f"/proc/{int(result.stdout.split()[0])}").exists()


def test_the_workers_environment_is_not_visible(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIAD_TEST_SECRET", "hunter2")
    code = "import os\nprint(sorted(os.environ))\nprint(os.environ.get('TRIAD_TEST_SECRET'))\n" + ADD
    result = run_one(backend, code)
    assert result.passed
    assert "hunter2" not in result.stdout and "TRIAD_TEST_SECRET" not in result.stdout


def test_bwrap_has_no_network() -> None:
    code = (
        "import socket\n"
        "for port in (6379, 5432):\n"
        "    try:\n"
        "        socket.create_connection(('127.0.0.1', port), timeout=1)\n"
        "        print('connected', port)\n"
        "    except OSError as e:\n"
        "        print('refused', port, e)\n" + ADD
    )
    result = _bwrap_or_skip(code)
    assert result.passed and "connected" not in result.stdout


def test_bwrap_cannot_write_outside_tmp() -> None:
    code = (
        "import os\n"
        "for path in ('/usr/triad_probe', '/triad_probe', os.path.expanduser('~/triad_probe'), "
        "'/etc/triad_probe', '/tmp/ok'):\n"
        "    try:\n"
        "        open(path, 'w').write('x')\n"
        "        print('wrote', path)\n"
        "    except OSError:\n"
        "        print('denied', path)\n" + ADD
    )
    result = _bwrap_or_skip(code)
    assert result.passed
    assert result.stdout.count("denied") == 4 and "wrote /tmp/ok" in result.stdout
    assert not Path("/triad_probe").exists() and not Path("/usr/triad_probe").exists()


def test_cold_bwrap_judge_is_pid_1_of_a_namespace_without_proc() -> None:
    # given a candidate that looks for /proc and signals its parent, the judge, with everything
    code = (
        "import os, signal\n"
        "print('ppid', os.getppid(), 'proc', os.path.exists('/proc/self'))\n"
        "for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP, signal.SIGXCPU):\n"
        "    try:\n"
        "        os.kill(os.getppid(), sig)\n"
        "    except OSError as e:\n"
        "        print('refused', sig, e.errno)\n" + ADD
    )
    result = _bwrap_or_skip(code)
    # then the judge is pid 1, no /proc is mounted, and it survives to pass the item (as root the
    # candidate's uid may not signal it; as a normal user the kernel drops signals to pid 1)
    assert result.passed, (result.error_class, result.stderr)
    assert result.stdout.startswith("ppid 1 proc False"), result.stdout


def _bwrap_or_skip(code: str) -> Result:
    from workers.sandbox.batch import bwrap_available

    if not bwrap_available():
        pytest.skip("bwrap does not work on this machine")
    return run_one("bwrap", code)


def test_fork_bomb_is_contained(backend: str) -> None:
    if backend == "process" and os.geteuid() == 0 and slot_uid(backend, 0) < 0:
        pytest.skip(
            "process backend as root with the interpreter unreachable by other uids: RLIMIT_NPROC "
            "does not bind root, so a fork bomb cannot be contained safely here"
        )
    # given a fork bomb; RLIMIT_NPROC stops it and the timeout ends it
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    result = run_one(backend, code, timeout_s=1.0)
    assert not result.passed and result.error_class in ("timeout", "crash")


def test_memory_hog_is_a_memory_limit(backend: str) -> None:
    code = "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))\n"
    result = run_one(backend, code, memory_mb=256)
    assert result.error_class == "memory_limit"


def test_print_loop_is_an_output_limit(backend: str) -> None:
    result = run_one(backend, "while True:\n    print('spam')\n")
    assert result.error_class == "output_limit"


def test_infinite_loop_is_a_timeout(backend: str) -> None:
    result = run_one(backend, "while True:\n    pass\n", timeout_s=0.5)
    assert result.error_class == "timeout"
