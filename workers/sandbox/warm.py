"""Warm mode: one long-lived bwrap sandbox ("zygote") per slot that forks a fresh child per item.

The zygote is started like a cold item (same bwrap arguments, same runner code) but runs
``runner.zygote``: it waits on a control socket, and for each item receives four descriptors made
by us for that item only (stdin, stdout, stderr, verdict), forks a judge, and the judge runs the
item exactly as a cold runner would (rlimits, a candidate process as the slot uid, new session).
Afterwards every process of the slot uid in the pid namespace is killed and /tmp emptied (by the
judge turned into the slot uid, checked by the zygote) before it answers ``done <status>``.
Anything abnormal (timeout, output over the cap, a lost zygote) kills the whole sandbox; the next
item gets a new one. Requires bwrap as root: the slot uid is what keeps the item away from the
zygote (it cannot signal or ptrace it) and what lets the item's leftovers be killed.
"""

from __future__ import annotations

import atexit
import contextlib
import marshal
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from . import backends
from .types import Item, Limits, Result


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
    def __init__(self, slot: int) -> None:
        self.slot = slot
        self.uid = backends.SLOT_UID_BASE + slot
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock = ours
        argv = backends.sandbox_argv("bwrap", str(theirs.fileno()), zygote=True)
        try:
            self.proc = _starter.run(
                lambda: backends.spawn(argv, "/", (theirs.fileno(),), slot, subprocess.DEVNULL)
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        assert self.proc.stdin is not None
        try:
            first = marshal.dumps((backends.RUNNER_CODE, ("zygote", self.uid)))
            self.proc.stdin.write(len(first).to_bytes(4, "big") + first)
        finally:
            self.proc.stdin.close()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        self.sock.close()
        if self.proc.returncode is None:
            backends.kill_group(self.proc.pid)
            self.proc.wait()


_lock = threading.Lock()
_zygotes: dict[int, Zygote] = {}


def _take(slot: int) -> Zygote:
    with _lock:
        z = _zygotes.pop(slot, None)
    if z is not None and z.alive():
        return z
    if z is not None:
        z.close()
    return Zygote(slot)


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
    ready = backends.prepare(item, start)
    if isinstance(ready, Result):
        return replace(ready, stderr=ready.stderr[: limits.output_bytes])
    try:
        z = _take(slot)
    except OSError as e:
        return backends.infra(item, start, f"sandbox: cannot start a warm sandbox: {e}")
    keep = False
    try:
        result, keep = _execute_in(z, item, limits, ready, start)
        return result
    except OSError as e:
        return backends.infra(item, start, f"sandbox: warm: {type(e).__name__}: {e}")
    finally:
        if keep:
            _give_back(z)
        else:
            z.close()


def _execute_in(
    z: Zygote, item: Item, limits: Limits, ready: backends.Prepared, start: float
) -> tuple[Result, bool]:
    cpus = tuple(os.sched_getaffinity(0))  # this thread's (see batch.py: a worker may be pinned)
    stdin, nonce = backends.item_stdin(item, limits, z.uid, None, ready, cpus)
    pipes = [os.pipe() for _ in range(4)]  # stdin, stdout, stderr, verdict
    theirs = [pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1]]
    ours = [pipes[0][1], pipes[1][0], pipes[2][0], pipes[3][0]]
    try:
        try:
            socket.send_fds(z.sock, [b"item"], theirs)
        finally:
            for fd in theirs:
                os.close(fd)
        backends.write_stdin(ours[0], stdin)
        os.close(ours[0])
        ours[0] = -1
        done = bytearray()

        def on_answer() -> str | None:
            chunk = z.sock.recv(64)
            if not chunk:
                return "lost"
            done.extend(chunk)
            return "" if done.endswith(b"\n") else None

        out, err, raw, reason = backends.watch(
            ours[1], ours[2], ours[3], limits, nonce, z.sock.fileno(), on_answer
        )
    finally:
        for fd in ours:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
    if reason == "lost" or (not reason and not _complete(bytes(done))):
        return backends.infra(item, start, "sandbox: the warm sandbox died"), False
    returncode = os.waitstatus_to_exitcode(int(done.split()[1])) if not reason else -9
    result = backends.classify(item, limits, "warm", out, err, raw, nonce, reason, returncode, start)
    return result, not reason


def _complete(done: bytes) -> bool:
    parts = done.split()
    return done.endswith(b"\n") and len(parts) == 2 and parts[0] == b"done" and parts[1].isdigit()
