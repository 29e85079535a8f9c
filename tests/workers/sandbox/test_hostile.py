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
from workers.sandbox.process_backend import slot_uid

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


def test_concurrent_and_successive_items_cannot_reach_each_other(backend: str) -> None:
    # each slot has a network namespace of its own; an item's sockets die with it
    need_namespaces(backend, "the network")
    port = 20000 + secrets.randbelow(20000)
    listen = (
        "import os, socket, time\n"
        f"tcp = socket.socket()\ntcp.bind(('127.0.0.1', {port}))\ntcp.listen()\n"
        "unix = socket.socket(socket.AF_UNIX)\nunix.bind('\\0triad-probe')\nunix.listen()\n"
        "if os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\n"
        "time.sleep(1.0)\n" + ADD
    )
    connect = (
        "import socket, time\n"
        "time.sleep(0.4)\n"
        f"targets = ((socket.AF_INET, ('127.0.0.1', {port})), (socket.AF_UNIX, '\\0triad-probe'))\n"
        "for family, address in targets:\n"
        "    s = socket.socket(family)\n"
        "    try:\n        s.connect(address)\n        print('reached', family)\n"
        "    except OSError as e:\n        print('refused', family)\n" + ADD
    )
    name, mode = ("bwrap", "warm") if backend == "warm" else (backend, "cold")
    from workers.sandbox import run_batch

    items = [Item(id="a", code=listen, tests=TESTS), Item(id="b", code=connect, tests=TESTS)]
    together = run_batch(items, Limits(), backend=name, mode=mode, cache=False, workers=2)
    one_after_the_other = run_batch(items, Limits(), backend=name, mode=mode, cache=False, workers=1)
    for result in (*together, *one_after_the_other):
        assert result.passed, result.stderr
    for result in (together[1], one_after_the_other[1]):
        assert "reached" not in result.stdout and result.stdout.count("refused") == 2, result.stdout


def test_the_standard_devices_work(backend: str) -> None:
    code = (
        "import os\n"
        "with open('/dev/null', 'w') as f:\n    f.write('x')\n"
        "with open('/dev/zero', 'rb') as f:\n    assert f.read(4) == bytes(4)\n"
        "with open('/dev/urandom', 'rb') as f:\n    assert len(f.read(4)) == 4\n"
        "assert len(os.urandom(4)) == 4\n" + ADD
    )
    result = run_one(backend, code)
    assert result.passed, result.stderr


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


def test_frame_walking_to_forge_the_verdict_does_not_pass(backend: str) -> None:
    result = run_one(backend, FORGER, tests=HUMANEVAL_TESTS, entry_point="add")
    assert not result.passed


# --- the candidate process holds no secret and cannot reach the judge -----------------------------

MEMORY_SCAN = """
import ctypes, re
found = set()
pattern = re.compile(rb"triad-token-[0-9a-f]{32}")
control = ("triad-token-" + "ab" * 16).encode()  # in this process's memory on purpose
with open("/proc/self/maps") as maps:
    regions = [line.split() for line in maps]
for fields in regions:
    if not fields[1].startswith("rw") or (len(fields) > 5 and fields[5].startswith("[v")):
        continue
    start, end = (int(x, 16) for x in fields[0].split("-"))
    found.update(m.decode() for m in pattern.findall(ctypes.string_at(start, end - start)))
print(sorted(found))
def add(a, b):
    return a + b
"""


def test_the_candidate_process_holds_neither_the_tests_nor_the_nonce(backend: str) -> None:
    if backend == "bwrap":
        pytest.skip("a cold bwrap sandbox has no /proc to list its memory by; warm mode runs the same runner")
    # given tests that carry a unique token, and a candidate that searches all of its own
    # writable memory for tokens (and plants one of its own, to show that the search works)
    token = "triad-token-" + secrets.token_hex(16)
    tests = f"assert add(1, 2) == 3, {token!r}\nassert add(2, 2) == 4\n"
    result = run_one(backend, MEMORY_SCAN, tests=tests, timeout_s=10.0)
    # then it finds its own token only: the tests (and the nonce sent with them) never were there
    assert result.passed, result.stderr
    assert result.stdout.strip() == str(["triad-token-" + "ab" * 16])


def test_the_candidate_process_cannot_read_the_judges_memory_or_descriptors(backend: str) -> None:
    if _weak_as_root(backend):
        pytest.skip("process backend as root: the candidate runs as root too (documented)")
    code = (
        "import os\n"
        "judge = os.getppid()\n"
        "for what in ('mem', 'environ', 'fd/0', 'fd/3'):\n"
        "    try:\n"
        "        open(f'/proc/{judge}/{what}', 'rb').close()\n"
        "        print('opened', what)\n"
        "    except OSError:\n"
        "        print('denied', what)\n"
        "try:\n    os.listdir(f'/proc/{judge}/fd')\n    print('listed fd')\n"
        "except OSError:\n    print('denied fd')\n" + ADD
    )
    result = run_one(backend, code)
    assert result.passed, result.stderr
    assert "opened" not in result.stdout and "listed" not in result.stdout, result.stdout
    assert result.stdout.count("denied") == 5


def test_patching_a_module_the_tests_use_does_not_change_the_tests(backend: str) -> None:
    # the tests import math in the judge's interpreter, not the candidate's
    code = "import math\nmath.isclose = lambda *a, **k: True\n" + WRONG_ADD
    result = run_one(backend, code, tests="import math\nassert math.isclose(add(1, 2), 3)\n")
    assert not result.passed and result.error_class == "wrong_answer"


def test_forged_messages_on_every_descriptor_do_not_pass(backend: str) -> None:
    # a well-formed answer "3" for the call pipe, written everywhere before the real messages
    code = (
        "import os\n"
        "frame = b'R' + b'i3;'\n"
        "for fd in range(3, 64):\n"
        "    try:\n"
        "        os.write(fd, len(frame).to_bytes(4, 'big') + frame)\n"
        "    except OSError:\n"
        "        pass\n" + WRONG_ADD
    )
    result = run_one(backend, code)
    assert not result.passed and result.error_class == "crash"
    assert result.exception_type == "ProtocolError"


def test_closing_the_call_pipes_does_not_pass(backend: str) -> None:
    code = "import os\ndef add(a, b):\n    os.closerange(3, 256)\n    return a + b\n"
    result = run_one(backend, code, tests=HUMANEVAL_TESTS, entry_point="add")
    assert not result.passed and result.error_class == "crash"


def test_a_function_that_returns_the_candidates_own_object_does_not_pass(backend: str) -> None:
    # an object that would compare equal stays in the candidate process: the tests see a handle
    code = "class Three:\n    def __eq__(self, other):\n        return True\n"
    code += "def add(a, b):\n    return Three\n"
    result = run_one(backend, code, tests="assert add(1, 2)() == 3\n")
    assert not result.passed and result.exception_type == "NonPlainReturn"


def test_shadowing_a_builtin_the_tests_use_does_not_pass(backend: str) -> None:
    # the tests' own arithmetic keeps the real abs
    code = "def abs(x):\n    return 0\n\ndef half(x):\n    return x\n"
    tests = "def check(candidate):\n    assert abs(candidate(1.0) - 0.5) < 1e-9\n"
    result = run_one(backend, code, tests=tests, entry_point="half")
    assert not result.passed and result.error_class == "wrong_answer"


def test_a_fake_standard_module_does_not_pass(backend: str) -> None:
    # MBPP tests that use math without importing it get the real math, not the candidate's class
    code = "class math:\n    isclose = staticmethod(lambda *a, **k: True)\n\ndef area(r):\n    return 0\n"
    result = run_one(backend, code, tests="assert math.isclose(area(1), 3.14159, rel_tol=1e-3)\n")
    assert not result.passed and result.error_class == "wrong_answer"
