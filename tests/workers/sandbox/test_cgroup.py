"""The slot cgroups (workers/sandbox/cgroup.py) on the real hierarchies of this machine.

v1 (pids + freezer) is what the sandbox uses here; v2 is exercised on the unified hierarchy where
one is mounted (on a hybrid machine it has no pids controller, but ``cgroup.kill`` works).
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from workers.sandbox import cgroup, payload, process_backend
from workers.sandbox.batch import bwrap_available
from workers.sandbox.types import Item, Limits

V1_MOUNTINFO = (
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)
V1_CGROUP = "8:pids:/worker\n6:freezer:/\n4:memory:/x\n0::/\n"
V2_MOUNTINFO = "30 23 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def test_layout_prefers_the_v1_pids_and_freezer_hierarchies_under_our_own_cgroups() -> None:
    found = cgroup.layout(V1_MOUNTINFO, V1_CGROUP)
    assert found == cgroup.Layout(
        1, ("/sys/fs/cgroup/pids/worker/triad-sandbox", "/sys/fs/cgroup/freezer/triad-sandbox")
    )


def test_layout_uses_the_unified_hierarchy_without_v1_pids_and_freezer() -> None:
    found = cgroup.layout(V2_MOUNTINFO, "0::/system.slice/worker.service\n")
    assert found == cgroup.Layout(2, ("/sys/fs/cgroup/system.slice/worker.service/triad-sandbox",))


def test_layout_says_why_when_there_is_no_hierarchy_to_use() -> None:
    only_memory = "37 31 0:34 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
    found = cgroup.layout(only_memory, "4:memory:/\n")
    assert isinstance(found, str) and "neither" in found


def _mounts() -> dict[str, str]:
    found: dict[str, str] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        head, _, tail = line.partition(" - ")
        fstype, _, options = tail.split(" ", 2)
        point = head.split(" ")[4]
        if fstype == "cgroup":
            for controller in ("pids", "freezer"):
                if controller in options.split(","):
                    found[controller] = point
        elif fstype == "cgroup2":
            found.setdefault("v2", point)
    return found


def _v1() -> cgroup.SlotCgroup:
    mounts = _mounts()
    if os.geteuid() != 0 or "pids" not in mounts or "freezer" not in mounts:
        pytest.skip("needs root and the v1 pids and freezer hierarchies")
    name = f"triad-test-{secrets.token_hex(4)}"
    return cgroup.SlotCgroup(1, (f"{mounts['pids']}/{name}", f"{mounts['freezer']}/{name}"))


def _v2() -> cgroup.SlotCgroup:
    mounts = _mounts()
    top = mounts.get("v2", "")
    if os.geteuid() != 0 or not top or not os.access(top, os.W_OK):
        pytest.skip("needs root and a writable cgroup2 hierarchy")
    made = cgroup.SlotCgroup(2, (f"{top}/triad-test-{secrets.token_hex(4)}",))
    if not os.path.exists(os.path.join(made.dirs[0], "cgroup.kill")):
        made.remove()
        pytest.skip("this kernel's cgroup2 has no cgroup.kill (before 5.14)")
    return made


@pytest.fixture(params=[1, 2], ids=["v1", "v2"])
def slot_cgroup(request: pytest.FixtureRequest) -> Iterator[cgroup.SlotCgroup]:
    made = _v1() if request.param == 1 else _v2()
    try:
        yield made
    finally:
        made.remove()
        assert not any(os.path.exists(d) for d in made.dirs)


# Joins the cgroup as the judge does (``0`` to each passed descriptor), then leaves a detached,
# double-forked, setsid child and a plain fork loop behind, and says so.
ESCAPER = (
    "import os, sys, time\n"
    "for fd in map(int, sys.argv[1].split(',')):\n    os.write(fd, b'0'); os.close(fd)\n"
    "if os.fork() == 0:\n    os.setsid()\n    if os.fork():\n        os._exit(0)\n"
    "    os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', sys.argv[2]])\n"
    "for _ in range(20):\n    if os.fork() == 0:\n        time.sleep(60)\n        os._exit(0)\n"
    "print('ready', flush=True)\ntime.sleep(60)\n"
)


def _with_token(token: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if token.encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return found


def test_emptying_a_slot_cgroup_kills_what_left_the_session_and_the_group(
    slot_cgroup: cgroup.SlotCgroup,
) -> None:
    # given a process that joined the cgroup and left children behind in another session
    token = secrets.token_hex(8)
    fds = ",".join(map(str, slot_cgroup.fds))
    argv = [sys.executable, "-c", ESCAPER, fds, token]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, pass_fds=slot_cgroup.fds, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        deadline = time.monotonic() + 5
        while not _with_token(token) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _with_token(token) and len(slot_cgroup.pids()) >= 22
        # when the cgroup is emptied
        assert slot_cgroup.empty()
        # then nothing is left, the detached grandchild included, and the cgroup can be reused
        assert proc.wait(timeout=5) == -9
        assert not _with_token(token) and not slot_cgroup.pids()
        assert slot_cgroup.empty()
    finally:
        proc.kill()
        proc.wait()


def test_a_slot_cgroup_caps_the_number_of_tasks() -> None:
    made = _v1()
    try:
        code = (
            "import os, sys, time\n"
            "for fd in map(int, sys.argv[1].split(',')):\n    os.write(fd, b'0'); os.close(fd)\n"
            "n = 0\n"
            "for _ in range(400):\n"
            "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
            "    if pid == 0:\n        os.closerange(0, 256)\n        time.sleep(60)\n        os._exit(0)\n"
            "    n += 1\n"
            "print(n, flush=True)\n"
        )
        fds = ",".join(map(str, made.fds))
        done = subprocess.run(
            [sys.executable, "-c", code, fds], capture_output=True, pass_fds=made.fds, timeout=60, check=True
        )
        # as root RLIMIT_NPROC does not bind: the cgroup's cap is what stopped it
        assert int(done.stdout) == cgroup.PIDS_MAX - 1
    finally:
        made.remove()


def test_on_v1_what_the_slot_starts_is_born_in_its_cgroup_and_emptying_it_spares_us() -> None:
    # given a cold item's way of starting on v1: through the slot's own thread, which lives in the
    # slot's pids cgroup (no process has to move in: a move costs milliseconds of fork and exit)
    made = _v1()
    try:
        assert made.judge_fds == ()
        detach = "import os, time\nif os.fork() == 0:\n    os.setsid()\ntime.sleep(60)\n"
        proc = made.run(lambda: subprocess.Popen([sys.executable, "-c", detach], start_new_session=True))
        deadline = time.monotonic() + 5
        while len(made.pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        # then it and its detached child are in the cgroup, and our own process is not counted
        assert proc.pid in made.pids() and len(made.pids()) == 2
        assert os.getpid() not in made.pids()
        assert Path(made.dirs[0], "tasks").read_text().split() != []  # the slot thread
        # when the cgroup is emptied, both die and we live on, the slot thread too
        assert made.empty()
        assert proc.wait(timeout=5) == -9 and not made.pids()
        assert made.run(lambda: os.getpid()) == os.getpid()
    finally:
        made.remove()


def test_on_v1_a_kept_process_is_spared_while_it_lives_and_killed_once_released() -> None:
    # given a process born in the slot's cgroup with a child, the parent kept (as a warm zygote is)
    made = _v1()
    try:
        spawn = "import os, time\nif os.fork() == 0:\n    os.setsid()\ntime.sleep(60)\n"
        proc = made.run(lambda: subprocess.Popen([sys.executable, "-c", spawn], start_new_session=True))
        deadline = time.monotonic() + 5
        while len(made.pids()) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        child = (made.pids() - {proc.pid}).pop()
        made.keep({proc.pid: os.pidfd_open(proc.pid)})
        # when the cgroup is emptied, the child dies and the kept process lives on
        assert made.pids() == {child}
        assert made.empty() and not made.pids()
        assert proc.poll() is None
        # then, released, it is killed like any other
        made.release((proc.pid,))
        assert made.pids() == {proc.pid}
        assert made.empty() and proc.wait(timeout=5) == -9
    finally:
        made.remove()


def test_on_v1_a_kept_pid_whose_process_has_exited_is_not_spared() -> None:
    # given a kept process that has exited (its pid free for any other process to take)
    made = _v1()
    try:
        gone = made.run(lambda: subprocess.Popen([sys.executable, "-c", "pass"]))
        pidfd = os.pidfd_open(gone.pid)
        gone.wait()
        sleeper = made.run(lambda: subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]))
        # when another process of the cgroup is listed under the kept pid
        made.keep({sleeper.pid: pidfd})
        # then it is not spared: the pidfd says the kept process is gone
        assert made.pids() == {sleeper.pid}
        assert made.empty() and sleeper.wait(timeout=5) == -9
    finally:
        made.remove()


def test_an_item_on_the_v2_layout_joins_its_cgroup_and_leaves_nothing() -> None:
    # the whole path on cgroup v2: a bwrap judge (in a cgroup namespace of its own) joins the slot
    # cgroup through the passed descriptor; its detached child is killed through cgroup.kill
    if not bwrap_available() or os.geteuid() != 0:
        pytest.skip("needs bwrap as root")
    made = _v2()
    token = secrets.token_hex(8)
    code = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n    os.setsid()\n    os.closerange(0, 256)\n"
        f"    os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', '{token}'])\n"
        "time.sleep(0.2)\ndef add(a, b):\n    return a + b\n"
    )
    item = Item(id="v2", code=code, tests="assert add(1, 2) == 3\n")
    try:
        start = time.monotonic()
        ready = payload.prepare(item, start)
        assert isinstance(ready, payload.Prepared)
        uid = process_backend.slot_uid("bwrap", 900)
        result = process_backend._execute_in(item, Limits(), "bwrap", 900, uid, "/", ready, start, made)
        assert result.passed, result.stderr
        assert not _with_token(token) and not made.pids()
    finally:
        made.remove()


def test_slot_cgroups_of_dead_worker_processes_are_removed() -> None:
    found = cgroup.layout(Path("/proc/self/mountinfo").read_text(), Path("/proc/self/cgroup").read_text())
    if isinstance(found, str) or os.geteuid() != 0:
        pytest.skip(f"no slot cgroups here: {found}")
    for d in found.dirs:
        os.makedirs(d, exist_ok=True)
    # given the slot cgroups of a worker process that is gone, and those of one that is alive
    dead = _a_dead_pid()
    stale = [os.path.join(d, f"{dead}-3") for d in found.dirs]
    alive = [os.path.join(d, f"{os.getpid()}-77") for d in found.dirs]
    for path in (*stale, *alive):
        os.mkdir(path)
    try:
        # when a worker process starts using them
        cgroup.remove_stale(found)
        # then only the dead one's are removed
        assert not any(os.path.exists(p) for p in stale)
        assert all(os.path.exists(p) for p in alive)
    finally:
        for path in (*stale, *alive):
            if os.path.exists(path):
                os.rmdir(path)


def _a_dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_without_any_cgroup_the_bwrap_backends_refuse_unless_unisolated_is_opted_into() -> None:
    # given a process that sees no cgroup hierarchy at all (its own mount namespace, unmounted)
    if os.geteuid() != 0:
        pytest.skip("needs root to make a mount namespace")
    check = (
        "from workers.sandbox import batch\n"
        "try:\n    batch.resolve_backend('bwrap')\nexcept batch.SandboxUnavailable as e:\n"
        "    print('refused:', e)\n"
        "print('default:', batch.resolve_backend(None))\n"
    )
    script = f'umount -R -l /sys/fs/cgroup && exec {sys.executable} -c "$0"'
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, check]
    env = {**os.environ, "TRIAD_SANDBOX_UNISOLATED": "1"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)
    # then bwrap is refused with the reason, and only the explicit opt-in runs code (unisolated)
    assert "refused: the bwrap backend does not work here: no cgroup per slot" in done.stdout, done.stderr
    assert "default: process" in done.stdout
    env.pop("TRIAD_SANDBOX_UNISOLATED")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env, check=False)
    assert "no cgroup per slot" in done.stderr and "default:" not in done.stdout
