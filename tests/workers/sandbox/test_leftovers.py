"""Nothing of a sandbox item outlives the item: hostile batches, run the way a worker runs them.

Each batch runs in the CLI (``python -m workers.sandbox``), placed in a fresh pids cgroup of its own
(as the report that found the race had it: a worker in a capped cgroup), so everything it starts,
whatever session or pid namespace it ends up in, stays countable there. Once the command has exited
that cgroup must hold no process at all: no candidate process of a slot uid, no judge, no bwrap.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workers.sandbox.batch import bwrap_available

ADD = "def add(a, b):\n    return a + b\n"
TESTS = "assert add(1, 2) == 3\nassert add(2, 2) == 4\n"
# The hostile programs of test_hostile.py, and a few that make the race likelier: forks in a loop
# that ignore errors (one of them last, so it is still running when the batch ends), setsid and
# double forks that sleep. Those marked True must pass every time.
HOSTILE: list[tuple[str, bool]] = [
    (
        "import os, sys\nwhile True:\n    try:\n        if os.fork() == 0:\n            os.setsid()\n"
        "            os.execv(sys.executable, [sys.executable, '-c', 'while 1: pass'])\n"
        "    except OSError:\n        pass\n",
        False,
    ),
    (
        "import os, time\nif os.fork() == 0:\n    while True:\n        try:\n            os.fork()\n"
        "        except OSError:\n            time.sleep(0.01)\ntime.sleep(0.3)\n" + ADD,
        False,
    ),
    (
        "import os, sys\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        os.closerange(0, 256)\n"
        "        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "    os._exit(0)\nimport time\ntime.sleep(0.2)\n" + ADD,
        True,
    ),
    (
        "import os, time\nfor i in range(5):\n    if os.fork() == 0:\n        os.setsid()\n"
        "        if os.fork():\n            os._exit(0)\n        time.sleep(60)\n" + ADD,
        True,
    ),
    (
        "import threading\ndef burn():\n    while True:\n        pass\n"
        "for _ in range(8):\n    threading.Thread(target=burn, daemon=True).start()\nburn()\n",
        False,
    ),
    ("import time\ndef add(a, b):\n    time.sleep(30)\n", False),
    ("x = bytearray(8 * 1024 ** 3)\n", False),
    ("import sys\nsys.stdout.write('x' * 10_000_000)\n" + ADD, False),
    ("import os\nwhile True:\n    os.write(2, b'e' * 4096)\n", False),
    (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    os.closerange(0, 256)\n"
        "    while True:\n        open('/tmp/planted', 'w').write('x')\n        time.sleep(0.01)\n"
        "time.sleep(0.1)\n" + ADD,
        True,
    ),
    (
        "import os, signal\ntry:\n    os.kill(os.getppid(), signal.SIGKILL)\n"
        "except OSError as e:\n    print(e)\n" + ADD,
        False,
    ),
    (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\ntime.sleep(0.3)\n" + ADD,
        True,
    ),
    ("with open('/tmp/big', 'wb') as f:\n    f.write(b'x' * (64 << 20))\n" + ADD, False),
    ("import os\nos._exit(0)\n", False),
    ("import sys\nsys.exit(1)\n", False),
    ("def add(a, b):\n    return a - b\n", False),
    (ADD, True),
    ("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", False),
]
BATCHES = 10


def _own_pids_cgroup() -> Path | None:
    """Our cgroup in the pids hierarchy (v1) or the unified one (v2), as a directory we can write."""
    mounts: dict[str, str] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" - ")
        fstype, _, options = fields[1].split(" ", 2)
        point = fields[0].split(" ")[4]
        if fstype == "cgroup" and "pids" in options.split(","):
            mounts["pids"] = point
        elif fstype == "cgroup2":
            mounts["v2"] = point
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        key = "pids" if "pids" in controllers.split(",") else "v2" if controllers == "" else ""
        if key in mounts and key == ("pids" if "pids" in mounts else "v2"):
            top = Path(mounts[key]) / path.lstrip("/")
            return top if os.access(top, os.W_OK) else None
    return None


def _procs_under(top: Path) -> list[int]:
    found: list[int] = []
    for here, _, _ in os.walk(top):
        with open(os.path.join(here, "cgroup.procs")) as f:
            found += [int(line) for line in f if line.strip()]
    return found


def _describe(pids: list[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            out.append(f"{pid} uid={uid} {cmd}")
        except (OSError, StopIteration):
            continue
    return out


def _kill_all(top: Path) -> None:
    """Tidy up after a failure, so one failing run does not leave a machine full of spinners."""
    for _ in range(200):
        pids = _procs_under(top)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


@pytest.fixture
def capped_cgroup() -> object:
    """A fresh pids cgroup (capped at 2,000 like the report's), removed afterwards."""
    if not bwrap_available() or os.geteuid() != 0:
        pytest.skip("needs the bwrap backend as root")
    own = _own_pids_cgroup()
    if own is None:
        pytest.skip("no writable pids cgroup to run the batches in")
    top = own / f"triad-test-{secrets.token_hex(4)}"
    top.mkdir()
    if (top / "pids.max").exists():
        (top / "pids.max").write_text("2000")
    try:
        yield top
    finally:
        _kill_all(top)
        for here, _, _ in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
            os.rmdir(here)


@pytest.mark.parametrize("mode", ["cold", "warm"])
def test_nothing_of_a_hostile_batch_outlives_the_batch(mode: str, capped_cgroup: Path) -> None:
    # given 18 hostile programs (fork bombs, setsid and double forks, floods) run together on two
    # workers, ten batches in a row, each batch a CLI run inside our capped cgroup
    procs = capped_cgroup / "cgroup.procs"
    doc = {
        "limits": {"timeout_s": 1.0},
        "items": [{"id": str(i), "code": code, "tests": TESTS} for i, (code, _) in enumerate(HOSTILE)],
    }
    argv = [sys.executable, "-m", "workers.sandbox", "--backend", "bwrap", "--workers", "2", "--mode", mode]
    leftovers: list[str] = []
    flaky: list[str] = []
    for batch in range(BATCHES):
        done = subprocess.run(
            argv,
            input=json.dumps(doc),
            capture_output=True,
            text=True,
            timeout=300,
            preexec_fn=lambda: procs.write_text("0"),  # a test: one thread, no locks to inherit
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        # then, the moment the command has exited, nothing it started is left
        left = _procs_under(capped_cgroup)
        if left:
            leftovers.append(f"batch {batch}: {len(left)} left: {_describe(left)[:6]}")
            _kill_all(capped_cgroup)
        results = json.loads(done.stdout)["results"]
        for (_, must_pass), result in zip(HOSTILE, results, strict=True):
            if must_pass and not result["passed"]:  # a leftover of an earlier item ate its budget
                flaky.append(f"batch {batch} item {result['id']}: {result['error_class']}")
    assert not leftovers, "\n".join(leftovers)
    assert not flaky, "\n".join(flaky)
