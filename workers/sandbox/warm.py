"""Warm mode: one long-lived bwrap sandbox ("zygote") per slot that forks a fresh child per item.

The zygote is started like a cold item (same bwrap arguments, same runner code) but runs
``runner.zygote``: it waits on a control socket, and for each item receives four descriptors made
by us for that item only (payload in, stdout, stderr, verdict), forks, and the child runs the item
exactly as a cold runner would (rlimits, slot uid, new session). Afterwards the zygote kills every
process of the slot uid in its pid namespace and empties /tmp before it answers ``done <status>``.
Anything abnormal (timeout, output over the cap, a lost zygote) kills the whole sandbox; the next
item gets a new one. Requires bwrap as root: the slot uid is what keeps the item away from the
zygote (it cannot signal or ptrace it) and what lets the zygote kill all the item's leftovers.
"""

from __future__ import annotations

import atexit
import contextlib
import marshal
import os
import secrets
import selectors
import socket
import subprocess
import threading
import time

from . import backends
from .types import Item, Limits, Result


def available() -> bool:
    return os.geteuid() == 0


class Zygote:
    def __init__(self, slot: int) -> None:
        self.slot = slot
        self.uid = backends.SLOT_UID_BASE + slot
        self.workdir = backends.make_workdir(self.uid)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock = ours
        prefix = [*backends.bwrap_prefix(), "--bind", self.workdir, "/tmp", "--chdir", "/tmp", "--"]  # noqa: S108
        argv = [*prefix, backends.python_executable(), *backends.PYTHON_FLAGS, "-c", backends.BOOTSTRAP]
        try:
            self.proc = subprocess.Popen(
                [*argv, str(theirs.fileno())],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                cwd=self.workdir,
                env=backends.CHILD_ENV,
                start_new_session=True,
            )
        finally:
            theirs.close()
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(marshal.dumps((backends.RUNNER_CODE, ("zygote", self.uid))))
        finally:
            self.proc.stdin.close()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        self.sock.close()
        if self.proc.returncode is None:
            backends.kill_group(self.proc.pid)
            self.proc.wait()
        backends.remove_workdir(self.workdir)


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
    try:
        z = _take(slot)
    except OSError as e:
        return backends.infra(item, start, f"sandbox: cannot start a warm sandbox: {e}")
    keep = False
    try:
        result, keep = _execute_in(z, item, limits, start)
        return result
    except OSError as e:
        return backends.infra(item, start, f"sandbox: warm: {type(e).__name__}: {e}")
    finally:
        if keep:
            _give_back(z)
        else:
            z.close()


def _execute_in(z: Zygote, item: Item, limits: Limits, start: float) -> tuple[Result, bool]:
    nonce = secrets.token_hex(16)
    payload = marshal.dumps(
        (
            nonce,
            item.code,
            item.tests,
            item.entry_point,
            float(limits.timeout_s),
            int(limits.memory_mb),
            int(limits.output_bytes),
        )
    )
    pipes = [os.pipe() for _ in range(4)]  # payload, stdout, stderr, verdict
    theirs = [pipes[0][0], pipes[1][1], pipes[2][1], pipes[3][1]]
    ours = [pipes[0][1], pipes[1][0], pipes[2][0], pipes[3][0]]
    try:
        try:
            socket.send_fds(z.sock, [b"item"], theirs)
        finally:
            for fd in theirs:
                os.close(fd)
        return _supervise(z, item, limits, payload, nonce, ours, start)
    finally:
        for fd in ours:
            with contextlib.suppress(OSError):
                os.close(fd)


def _supervise(
    z: Zygote, item: Item, limits: Limits, payload: bytes, nonce: str, fds: list[int], start: float
) -> tuple[Result, bool]:
    in_w, out_fd, err_fd, r_fd = fds
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(in_w, view) :]
    except BrokenPipeError:
        pass
    os.close(in_w)
    fds[0] = -1
    caps = {out_fd: limits.output_bytes, err_fd: limits.output_bytes, r_fd: backends.VERDICT_CAP}
    bufs: dict[int, bytearray] = {fd: bytearray() for fd in caps}
    marker = f"started:{nonce}:".encode()
    started_at = 0.0
    deadline = time.monotonic() + backends.STARTUP_GRACE_S
    reason = ""
    done = b""
    ctrl = z.sock.fileno()
    with selectors.DefaultSelector() as sel:
        for fd in caps:
            sel.register(fd, selectors.EVENT_READ)
        sel.register(ctrl, selectors.EVENT_READ)
        while not reason and not done.endswith(b"\n"):
            now = time.monotonic()
            if now >= deadline:
                reason = "timeout"
                break
            for key, _ in sel.select(deadline - now):
                if key.fd == ctrl:
                    chunk = z.sock.recv(64)
                    if not chunk:
                        reason = "lost"
                        break
                    done += chunk
                elif not backends.read_into(key.fd, bufs, caps, sel):
                    reason = "output_limit" if key.fd != r_fd else "verdict_overflow"
            if not started_at and marker in bufs[r_fd]:
                started_at = time.monotonic()
                deadline = started_at + limits.timeout_s
        if not reason:
            # Everything of the item is dead now: drain to the end of each stream.
            for fd in list(caps):
                os.set_blocking(fd, False)
                while not reason and fd in sel.get_map():
                    try:
                        if not backends.read_into(fd, bufs, caps, sel):
                            reason = "output_limit" if fd != r_fd else "verdict_overflow"
                    except BlockingIOError:
                        break
    if reason == "lost" or (not reason and not _complete(done)):
        return backends.infra(item, start, "sandbox: the warm sandbox died"), False
    returncode = os.waitstatus_to_exitcode(int(done.split()[1])) if not reason else -9
    out, err, raw = bytes(bufs[out_fd]), bytes(bufs[err_fd]), bytes(bufs[r_fd])
    result = backends.classify(item, limits, "warm", out, err, raw, nonce, reason, returncode, start)
    return result, not reason


def _complete(done: bytes) -> bool:
    parts = done.split()
    return done.endswith(b"\n") and len(parts) == 2 and parts[0] == b"done" and parts[1].isdigit()
