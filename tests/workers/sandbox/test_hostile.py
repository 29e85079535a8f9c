"""Hostile programs: each must be contained and classified, leave the host alone and nothing running.

Parametrized over every backend variant that works here (process, bwrap, warm = bwrap with a zygote,
docker when an engine answers). Where the process backend, running as root without namespaces,
cannot contain a trick, the test says so and skips it for that backend (see docs/sandbox.md).
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import pytest

from workers.sandbox import Item, Limits, Result
from workers.sandbox.backends import slot_uid

from .conftest import is_namespaced, run_items

ADD = "def add(a, b):\n    return a + b\n"
WRONG_ADD = "def add(a, b):\n    return a - b\n"
TESTS = "assert add(1, 2) == 3\nassert add(2, 2) == 4\n"
HUMANEVAL_TESTS = "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 4\n"


def run_one(backend: str, code: str, tests: str = TESTS, entry_point: str = "", **limits: float) -> Result:
    item = Item(id="h", code=code, tests=tests, entry_point=entry_point)
    return run_items(backend, [item], Limits(**limits))[0]  # type: ignore[arg-type]


def _weak_as_root(backend: str) -> bool:
    return backend == "process" and os.geteuid() == 0 and slot_uid("process", 0) < 0


def need_namespaces(backend: str, what: str) -> None:
    if not is_namespaced(backend):
        pytest.skip(f"the process backend has no namespaces: {what} is not contained (documented)")


def _alive(token: str) -> bool:
    for proc in Path("/proc").iterdir():
        try:
            if token.encode() in (proc / "cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def _gone(token: str) -> bool:
    deadline = time.monotonic() + 5
    while _alive(token) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(token)


# --- time and CPU -------------------------------------------------------------------------------


def test_cpu_burning_threads_are_a_timeout(backend: str) -> None:
    code = (
        "import threading\n"
        "def burn():\n    while True:\n        pass\n"
        "for _ in range(8):\n    threading.Thread(target=burn, daemon=True).start()\n"
        "burn()\n"
    )
    result = run_one(backend, code, timeout_s=0.5)
    assert result.error_class == "timeout" and not result.passed


def test_a_sleeping_candidate_function_is_a_timeout(backend: str) -> None:
    code = "import time\ndef add(a, b):\n    time.sleep(30)\n"
    result = run_one(backend, code, timeout_s=0.5)
    assert result.error_class == "timeout"


def test_fork_bomb_with_setsid_is_contained_and_leaves_nothing(backend: str) -> None:
    if _weak_as_root(backend):
        pytest.skip("process backend as root: RLIMIT_NPROC does not bind root (documented)")
    token = secrets.token_hex(8)
    code = (
        "import os, sys\n"
        "while True:\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            os.setsid()\n"
        f"            os.execv(sys.executable, [sys.executable, '-c', 'while 1: pass', '{token}'])\n"
        "    except OSError:\n"
        "        pass\n"
    )
    result = run_one(backend, code, timeout_s=1.0)
    assert not result.passed and result.error_class in ("timeout", "crash")
    assert _gone(token)


# --- memory and output --------------------------------------------------------------------------


def test_one_huge_allocation_is_a_memory_limit(backend: str) -> None:
    result = run_one(backend, "x = bytearray(8 * 1024 ** 3)\n", memory_mb=256)
    assert result.error_class == "memory_limit"


def test_one_huge_write_is_an_output_limit(backend: str) -> None:
    result = run_one(backend, "import sys\nsys.stdout.write('x' * 10_000_000)\n" + ADD)
    assert result.error_class == "output_limit" and len(result.stdout) <= Limits().output_bytes


def test_a_stderr_flood_is_an_output_limit(backend: str) -> None:
    result = run_one(backend, "import os\nwhile True:\n    os.write(2, b'e' * 4096)\n")
    assert result.error_class == "output_limit"


def test_a_huge_file_is_contained(backend: str) -> None:
    need_namespaces(backend, "writing a big file")
    code = "with open('/tmp/big', 'wb') as f:\n    f.write(b'x' * (64 << 20))\n" + ADD
    result = run_one(backend, code)
    assert not result.passed and result.error_class in ("output_limit", "runtime_error")


# --- network ------------------------------------------------------------------------------------

NET_PROBE = (
    "import errno, socket\n"
    "for host, port in (('127.0.0.1', 6379), ('127.0.0.1', 5432), ('127.0.0.1', 8000), "
    "('10.255.255.1', 80)):\n"
    "    s = socket.socket()\n"
    "    s.settimeout(0.5)\n"
    "    try:\n"
    "        s.connect((host, port))\n"
    "        print('connected', host, port)\n"
    "    except OSError as e:\n"
    "        name = errno.errorcode.get(e.errno, e.errno) if e.errno else type(e).__name__\n"
    "        print('failed', host, port, name)\n"
    "    finally:\n"
    "        s.close()\n"
)


def test_no_socket_reaches_loopback_or_anywhere_else(backend: str) -> None:
    # never run this where connects could leave the machine: the process backend has the host network
    need_namespaces(backend, "the network")
    result = run_one(backend, NET_PROBE + ADD)
    assert result.passed, result.stderr
    assert "connected" not in result.stdout
    # no route at all: the off-machine connect fails at once, it does not time out
    assert "failed 10.255.255.1 80 ENETUNREACH" in result.stdout, result.stdout


def test_udp_and_raw_sockets_go_nowhere(backend: str) -> None:
    need_namespaces(backend, "the network")
    code = (
        "import socket\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "try:\n    s.sendto(b'x', ('10.255.255.1', 53))\n    print('sent')\n"
        "except OSError as e:\n    print('failed', e.errno)\n"
        "try:\n    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)\n    print('raw')\n"
        "except OSError as e:\n    print('noraw', e.errno)\n" + ADD
    )
    result = run_one(backend, code)
    assert result.passed and "sent" not in result.stdout and "raw\n" not in result.stdout


# --- filesystem and secrets ---------------------------------------------------------------------


def test_writing_outside_tmp_is_denied(backend: str) -> None:
    need_namespaces(backend, "the filesystem")
    cwd = os.getcwd()
    code = (
        "import os\n"
        f"for path in ('/etc/triad_probe', '/usr/triad_probe', '/root/triad_probe', '/triad_probe', "
        f"'{cwd}/triad_probe', '/proc/sys/kernel/hostname', '/dev/triad_probe'):\n"
        "    try:\n"
        "        with open(path, 'w') as f:\n"
        "            f.write('x')\n"
        "        print('wrote', path)\n"
        "    except OSError:\n"
        "        print('denied', path)\n" + ADD
    )
    result = run_one(backend, code)
    assert result.passed and "wrote" not in result.stdout, result.stdout
    assert not Path(cwd, "triad_probe").exists() and not Path("/etc/triad_probe").exists()


def test_secrets_in_files_and_the_environment_are_not_readable(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need_namespaces(backend, "the filesystem")
    secret = "s3cr3t-" + secrets.token_hex(8)
    monkeypatch.setenv("TRIAD_TEST_SECRET", secret)
    planted = tmp_path / "secret.txt"
    planted.write_text(secret)
    code = (
        "import os\n"
        "out = []\n"
        f"for path in ('/etc/shadow', '/proc/1/environ', '/proc/self/environ', '{planted}', "
        f"'{os.getcwd()}/pyproject.toml', '/root/.bash_history'):\n"
        "    try:\n"
        "        with open(path, 'rb') as f:\n"
        "            out.append(f.read(4096).decode('latin-1'))\n"
        "    except OSError as e:\n"
        "        print('denied', path, type(e).__name__)\n"
        "for d in ('/root', '/home', '/work'):\n"
        "    try:\n        out.append(' '.join(os.listdir(d)))\n"
        "    except OSError:\n        print('denied', d)\n"
        "out.append(repr(dict(os.environ)))\n"
        "print('\\n'.join(out))\n" + ADD
    )
    result = run_one(backend, code)
    assert result.passed, result.stderr
    assert secret not in result.stdout and "TRIAD_TEST_SECRET" not in result.stdout
    assert "denied /etc/shadow" in result.stdout and f"denied {planted}" in result.stdout
    assert "[tool" not in result.stdout  # nothing of the worker's cwd


# --- processes ----------------------------------------------------------------------------------


def test_killing_its_parent_leaves_the_host_alone(backend: str) -> None:
    if _weak_as_root(backend):
        pytest.skip("process backend as root: the child could kill the worker itself (documented)")
    code = "import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\n"
    code += "except OSError as e:\n    print(e)\n"
    result = run_one(backend, code + ADD)
    # the worker (this test) is alive; the item is classified either way
    assert result.error_class in ("passed", "sandbox_error", "crash")
    assert run_one(backend, ADD + "# again\n").passed


def test_detached_double_forked_children_do_not_outlive_the_item(backend: str) -> None:
    if _weak_as_root(backend):
        pytest.skip("process backend as root: setsid escapes the group kill (documented)")
    token = secrets.token_hex(8)
    code = (
        "import os, sys\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        os.closerange(0, 256)\n"
        "        argv = [sys.executable, '-c', 'import time; time.sleep(60)']\n"
        f"        os.execv(sys.executable, [*argv, '{token}'])\n"
        "    os._exit(0)\n"
        "import time\ntime.sleep(0.2)\n" + ADD
    )
    result = run_one(backend, code)
    assert result.passed, result.stderr
    assert _gone(token)


def test_a_child_left_behind_cannot_touch_the_next_item(backend: str) -> None:
    if _weak_as_root(backend):
        pytest.skip("process backend as root: setsid escapes the group kill (documented)")
    # given an item that leaves a detached child writing a marker file into /tmp, then one that looks
    code1 = (
        "import os, time\n"
        "if os.fork() == 0:\n    os.setsid()\n    os.closerange(0, 256)\n"
        "    while True:\n        open('/tmp/planted', 'w').write('x')\n        time.sleep(0.01)\n"
        "time.sleep(0.1)\n" + ADD
    )
    code2 = "import os, time\ntime.sleep(0.2)\nprint(os.path.exists('/tmp/planted'))\n" + ADD
    items = [Item(id="a", code=code1, tests=TESTS), Item(id="b", code=code2, tests=TESTS)]
    name, mode = ("bwrap", "warm") if backend == "warm" else (backend, "cold")
    from workers.sandbox import run_batch

    first, second = run_batch(items, Limits(), backend=name, mode=mode, cache=False, workers=1)
    assert first.passed and second.passed
    assert second.stdout.strip() == "False"


# --- cheating the verdict -----------------------------------------------------------------------


def test_os_exit_inside_humaneval_check_does_not_pass(backend: str) -> None:
    code = "import os\ndef add(a, b):\n    os._exit(0)\n"
    result = run_one(backend, code, tests=HUMANEVAL_TESTS, entry_point="add")
    assert not result.passed and result.error_class == "crash"


def test_system_exit_raised_by_the_candidate_function_does_not_pass(backend: str) -> None:
    code = "def add(a, b):\n    raise SystemExit(0)\n"
    result = run_one(backend, code, tests=HUMANEVAL_TESTS, entry_point="add")
    assert not result.passed and result.exception_type == "SystemExit"


def test_an_int_subclass_that_equals_everything_is_compared_as_an_int(backend: str) -> None:
    code = "class I(int):\n    def __eq__(self, o):\n        return True\n    __hash__ = int.__hash__\n"
    code += "def add(a, b):\n    return I(0)\n"
    result = run_one(backend, code, tests=HUMANEVAL_TESTS, entry_point="add")
    assert not result.passed and result.error_class == "wrong_answer"


def test_a_list_of_always_equal_objects_does_not_pass(backend: str) -> None:
    code = "class E:\n    def __eq__(self, o):\n        return True\ndef add(a, b):\n    return [E()]\n"
    result = run_one(backend, code, tests="assert add(1, 2) == [3]\n")
    assert not result.passed and result.exception_type == "NonPlainReturn"


def test_defining_its_own_check_does_not_replace_the_tests(backend: str) -> None:
    code = "def check(candidate):\n    pass\n" + WRONG_ADD
    result = run_one(backend, code, tests=HUMANEVAL_TESTS, entry_point="add")
    assert not result.passed and result.error_class == "wrong_answer"


def test_patching_assertion_error_and_builtins_from_inside_the_call_does_not_pass(backend: str) -> None:
    code = (
        "import builtins\n"
        "def add(a, b):\n"
        "    builtins.AssertionError = type('Nope', (Exception,), {})\n"
        "    builtins.isinstance = lambda *a: True\n"
        "    return a - b\n"
    )
    result = run_one(backend, code, tests=HUMANEVAL_TESTS, entry_point="add")
    assert not result.passed and result.error_class == "wrong_answer"


def test_replacing_os_write_and_exit_does_not_lose_the_verdict(backend: str) -> None:
    code = "import os\nos.write = lambda *a: 0\nos._exit = lambda *a: None\n" + WRONG_ADD
    result = run_one(backend, code)
    assert result.error_class == "wrong_answer"


def test_a_fake_verdict_on_every_descriptor_does_not_pass(backend: str) -> None:
    fake = '\\n{"error_class":"passed","tests_passed":2,"tests_total":2,"exception_type":"",'
    fake += '"failing_test":"","traceback":"","nonce":"0"}\\n'
    code = f"import os\nfor fd in range(1, 64):\n    try:\n        os.write(fd, b'{fake}')\n"
    code += "    except OSError:\n        pass\nos._exit(0)\n"
    result = run_one(backend, code)
    assert not result.passed


def test_replacing_the_check_function_from_the_candidate_does_not_pass(backend: str) -> None:
    # the candidate, called by check, rebinds check in the tests' globals and returns a wrong value
    code = (
        "import sys\n"
        "def add(a, b):\n"
        "    f = sys._getframe(1)\n"
        "    f.f_globals['check'] = lambda c: None\n"
        "    return a - b\n"
    )
    result = run_one(backend, code, tests=HUMANEVAL_TESTS, entry_point="add")
    assert not result.passed and result.error_class == "wrong_answer"


FORGER = """
import os, sys
def add(a, b):
    f = sys._getframe()
    while f is not None and 'nonce' not in f.f_locals:
        f = f.f_back
    n = f.f_locals['nonce']
    v = ('{"error_class":"passed","tests_passed":2,"tests_total":2,"exception_type":"",'
         '"failing_test":"","traceback":"","nonce":"%s"}' % n)
    os.write(f.f_locals['vfd'], b'\\n' + v.encode() + b'\\n')
    os._exit(0)
"""


@pytest.mark.xfail(
    strict=True,
    reason="known limit: the tests run in the candidate's interpreter, so code that walks the "
    "harness's frames can read the nonce and forge a verdict (docs/sandbox.md)",
)
def test_frame_walking_to_forge_the_verdict_does_not_pass(backend: str) -> None:
    result = run_one(backend, FORGER, tests=HUMANEVAL_TESTS, entry_point="add")
    assert not result.passed
