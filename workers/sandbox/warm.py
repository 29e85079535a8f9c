"""Warm mode: one long-lived bwrap sandbox ("zygote") per slot that forks a fresh child per item.

The zygote is started like a cold item (same bwrap arguments, same runner code) but runs
``runner.zygote``: it waits on a control socket, and for each item receives four descriptors made
by us for that item only (stdin, stdout, stderr, verdict), forks a judge, and the judge runs the
item exactly as a cold runner would (rlimits, a candidate process as the slot uid, new session).
When the judge has exited the zygote answers ``done <status>``; we then empty the slot's cgroup,
which holds every process of the item (on v1 the judges are born in it, the zygote being started
by the slot's thread and kept there; on v2 each judge joins it), and before the next item the
zygote empties /tmp, as the slot uid, if anything is left in it. Anything abnormal (timeout,
output over the cap, a lost zygote) kills the whole sandbox; the next item gets a new one.
Requires bwrap as root: the slot uid is what keeps the item away from the zygote (it cannot
signal or ptrace it) and what lets the item's files in /tmp be removed.
"""

from __future__ import annotations

import atexit
import contextlib
import marshal
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from . import bwrap, cgroup, process_backend
from .payload import RESOURCE_PATH, RUNNER_CODE, Prepared, item_stdin, prepare, watch_limits
from .types import Item, Limits, Result
from .verdict import STARTUP_GRACE_S, classify, infra, watch


def available() -> bool:
    return os.geteuid() == 0


class _Starter:
    """One long-lived thread that starts every zygote of this process.

    bwrap's ``--die-with-parent`` (``PR_SET_PDEATHSIG``) fires when the *thread* that started it
    ends, and run_batch's worker threads end with their batch: a zygote they started died with it,
    and every batch paid for new ones. This thread lives as long as the process, and it is not
    pinned to a CPU (a zygote serves workers on every CPU; each item's judge moves to its worker's).
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(1, "sandbox-zygotes", initializer=_unpin)
            pool = self._pool
        return pool.submit(fn).result()

    def forget(self) -> None:
        """In a forked child: the parent's thread is not there."""
        self._lock = threading.Lock()
        self._pool = None


def _unpin() -> None:
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, os.sched_getaffinity(os.getpid()))  # the main thread's CPUs


_starter = _Starter()


class Zygote:
    """A slot's zygote. On cgroup v1 it is started by the slot's thread, so it and every judge it
    forks are born in the slot's cgroup (cgroup.py), which keeps the zygote's own three processes
    (``kept``); on v2 each judge joins the cgroup itself, through descriptors the zygote holds."""

    def __init__(self, slot: int, cg: cgroup.SlotCgroup) -> None:
        self.slot = slot
        self.uid = process_backend.SLOT_UID_BASE + slot
        self.cg = cg
        self.kept: tuple[int, ...] = ()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock = ours
        # Before the zygote can send anything: the kernel attaches the sender's credentials only
        # to what is sent while the receiving end asks for them.
        ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        argv = process_backend.sandbox_argv("bwrap", str(theirs.fileno()), zygote=True)
        fds = (theirs.fileno(), *cg.judge_fds)  # v2: the zygote keeps them, for each judge to join

        def start() -> subprocess.Popen[bytes]:
            return process_backend.spawn(argv, "/", fds, slot, subprocess.DEVNULL)

        try:
            # Not pinned: a zygote serves workers on every CPU (each judge moves to its worker's).
            self.proc = (
                cg.run(start, os.sched_getaffinity(os.getpid())) if cg.version == 1 else _starter.run(start)
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        try:
            assert self.proc.stdin is not None
            try:
                first = marshal.dumps((RUNNER_CODE, ("zygote", self.uid, cg.judge_fds, RESOURCE_PATH)))
                self.proc.stdin.write(len(first).to_bytes(4, "big") + first)
            finally:
                self.proc.stdin.close()
            zygote_pid = self._hello()
            if cg.version == 1:
                self._keep(zygote_pid)
        except BaseException:
            self.close()
            raise

    def _hello(self) -> int:
        """Wait for the zygote's ``ready``; its pid in our namespace (the kernel's word for it)."""
        self.sock.settimeout(STARTUP_GRACE_S)
        try:
            msg, ancillary, _flags, _addr = self.sock.recvmsg(6, socket.CMSG_SPACE(12))
        finally:
            self.sock.settimeout(None)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 0)
        creds = [
            data
            for level, kind, data in ancillary
            if (level, kind) == (socket.SOL_SOCKET, socket.SCM_CREDENTIALS)
        ]
        if msg != b"ready\n" or len(creds) != 1 or len(creds[0]) < 12:
            raise OSError("the warm sandbox did not start")
        return int.from_bytes(creds[0][:4], sys.byteorder, signed=True)

    def _keep(self, zygote_pid: int) -> None:
        """Have the slot's cgroup spare bwrap, its reaper (the zygote's parent) and the zygote."""
        fds: dict[int, int] = {}
        try:
            for pid in (self.proc.pid, zygote_pid):
                fds[pid] = os.pidfd_open(pid)
            reaper = _parent(zygote_pid)
            fds[reaper] = os.pidfd_open(reaper)
            # Checked after the pidfds are open: the zygote still alive under that reaper, the
            # reaper bwrap's child: so each pidfd is the process we mean, not one that took its pid.
            if _parent(zygote_pid) != reaper or _parent(reaper) != self.proc.pid or not self._running(fds):
                raise OSError("the warm sandbox's processes are not what was started")
        except BaseException:
            for fd in fds.values():
                os.close(fd)
            raise
        self.cg.keep(fds)
        self.kept = tuple(fds)

    @staticmethod
    def _running(fds: dict[int, int]) -> bool:
        return not select.select(list(fds.values()), [], [], 0)[0]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        """Kill the zygote and wait until its sandbox is gone, not only bwrap's outer process: its
        reaper (the pid namespace's init) dies of bwrap's --die-with-parent, later. The slot's
        cgroup no longer spares its processes."""
        self.sock.close()
        self.cg.release(self.kept)
        self.kept = ()
        if self.proc.returncode is None:
            inits = _pidfds(_children(self.proc.pid))
            try:
                process_backend.kill_group(self.proc.pid)
                self.proc.wait()
                for fd in inits:  # readable once the init has exited, which the kernel lets it do
                    select.select([fd], [], [], ZYGOTE_EXIT_S)  # only once its namespace is empty
            finally:
                for fd in inits:
                    os.close(fd)


ZYGOTE_EXIT_S = 5.0


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def _parent(pid: int) -> int:
    """pid's parent, from /proc/<pid>/stat (after the command's closing parenthesis: state, ppid)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[1])


def _pidfds(pids: list[int]) -> list[int]:
    fds = []
    for pid in pids:
        with contextlib.suppress(OSError):
            fds.append(os.pidfd_open(pid))
    return fds


_lock = threading.Lock()
_zygotes: dict[int, Zygote] = {}


def _take(slot: int, cg: cgroup.SlotCgroup) -> Zygote:
    with _lock:
        z = _zygotes.pop(slot, None)
    if z is not None and z.alive():
        return z
    if z is not None:
        z.close()
    return Zygote(slot, cg)


def _give_back(z: Zygote) -> None:
    with _lock:
        old = _zygotes.pop(z.slot, None)
        _zygotes[z.slot] = z
    if old is not None:
        old.close()


def _forget() -> None:
    """In a forked child (a Celery prefork worker): the parent's zygotes stay the parent's."""
    global _lock
    _lock = threading.Lock()
    for z in _zygotes.values():
        with contextlib.suppress(OSError):
            z.sock.close()
    _zygotes.clear()
    _starter.forget()


os.register_at_fork(after_in_child=_forget)


@atexit.register
def close_all() -> None:
    """Stop every zygote of this process (also registered atexit)."""
    with _lock:
        zs = list(_zygotes.values())
        _zygotes.clear()
    for z in zs:
        z.close()


def execute(item: Item, limits: Limits, slot: int) -> Result:
    """Run one item in the slot's zygote; never raises for the item's sake."""
    start = time.monotonic()
    ready = prepare(item, start)
    if isinstance(ready, Result):
        return replace(ready, stderr=ready.stderr[: limits.output_bytes])
    cg = process_backend.clean_slot_cgroup(item, slot, start)
    if isinstance(cg, Result):
        return cg
    try:
        z = _take(slot, cg)
    except OSError as e:
        return infra(item, start, f"sandbox: cannot start a warm sandbox: {e}")
    keep = False
    try:
        cg.cap_memory(bwrap.slot_memory_mb(limits))
        result, keep = _execute_in(z, item, limits, ready, start)
        return result
    except OSError as e:
        return infra(item, start, f"sandbox: warm: {type(e).__name__}: {e}")
    finally:
        try:  # every process of the item, even one the judge's own clean-up missed
            cg.empty()
        finally:
            if keep:
                _give_back(z)
            else:
                z.close()


def _execute_in(z: Zygote, item: Item, limits: Limits, ready: Prepared, start: float) -> tuple[Result, bool]:
    cpus = tuple(os.sched_getaffinity(0))  # this thread's (see batch.py: a worker may be pinned)
    stdin, nonce = item_stdin(item, limits, z.uid, None, ready, cpus)
    pipes = [os.pipe() for _ in range(4)]  # stdin, stdout, stderr, verdict
    theirs = [pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1]]
    ours = [pipes[0][1], pipes[1][0], pipes[2][0], pipes[3][0]]
    try:
        try:
            socket.send_fds(z.sock, [b"item"], theirs)
        finally:
            for fd in theirs:
                os.close(fd)
        process_backend.write_stdin(ours[0], stdin)
        os.close(ours[0])
        ours[0] = -1
        done = bytearray()

        def on_answer() -> str | None:
            chunk = z.sock.recv(64)
            if not chunk:
                return "lost"
            done.extend(chunk)
            return "" if done.endswith(b"\n") else None

        out, err, raw, reason = watch(
            ours[1], ours[2], ours[3], watch_limits(item, limits), nonce, z.sock.fileno(), on_answer
        )
    finally:
        for fd in ours:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
    if reason == "lost" or (not reason and not _complete(bytes(done))):
        return infra(item, start, "sandbox: the warm sandbox died"), False
    returncode = os.waitstatus_to_exitcode(int(done.split()[1])) if not reason else -9
    result = classify(item, limits, "warm", out, err, raw, nonce, reason, returncode, start)
    return result, not reason


def _complete(done: bytes) -> bool:
    parts = done.split()
    return done.endswith(b"\n") and len(parts) == 2 and parts[0] == b"done" and parts[1].isdigit()
