"""The "process" and "bwrap" backends: one item in one fresh child process.

The child is the trusted harness (runner.py: a judge process that forks the candidate process), in a
new session with a minimal environment and a fresh working directory; its stdout, stderr and a
private verdict pipe are watched with a deadline and output caps (verdict.py), then the whole process
group is SIGKILLed and the directory removed. "bwrap" adds namespaces (no network, own pid space,
read-only filesystem but /tmp; bwrap.py) and the slot's cgroup. See docs/sandbox.md.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import replace
from functools import cache
from pathlib import Path

from . import bwrap, cgroup, netns
from .payload import (
    BOOTSTRAP,
    CHILD_ENV,
    PYTHON_FLAGS,
    RUNNER_CODE,
    Prepared,
    install_dirs,
    item_stdin,
    prepare,
    python_executable,
    watch_limits,
)
from .types import Item, Limits, Result
from .verdict import classify, infra, watch

# When the worker runs as root, each concurrent slot runs its child as its own unprivileged uid
# (SLOT_UID_BASE + slot), so RLIMIT_NPROC (per uid) contains a fork bomb to that slot.
SLOT_UID_BASE = 62000
BWRAP_EXIT_S = 2.0  # how long bwrap may take to exit once its sandbox's cgroup is empty


@cache
def _install_world_readable() -> bool:
    """Can another uid reach the interpreter and its standard library (e.g. not under /root)?"""
    for top in install_dirs():
        path = Path(top)
        for p in (path, *path.parents):
            if not os.stat(p).st_mode & 0o001:
                return False
    return True


def slot_uid(backend: str, slot: int) -> int:
    """The uid the runner drops to before running candidate code, or -1 to stay as we are."""
    if os.geteuid() != 0:
        return -1
    if backend == "bwrap" or _install_world_readable():
        return SLOT_UID_BASE + slot
    return -1


def make_workdir(uid: int) -> str:
    """A fresh host directory for one child's /tmp, owned by its slot uid when there is one."""
    workdir = tempfile.mkdtemp(prefix="triad-sandbox-")
    if uid >= 0:
        try:
            os.chown(workdir, uid, uid)
            os.chmod(workdir, 0o711)  # noqa: S103  # bwrap, root without capabilities, must still chdir into it
        except OSError:
            remove_workdir(workdir)
            raise
    return workdir


def remove_workdir(workdir: str) -> None:
    shutil.rmtree(workdir, ignore_errors=True)


def clean_slot_cgroup(item: Item, slot: int, start: float) -> cgroup.SlotCgroup | Result:
    """The slot's cgroup, emptied, for an item to run in; else the item's infra verdict. Fails closed: no
    item runs without the guarantee that nothing of the one before it survives."""
    try:
        cg = cgroup.for_slot(slot)
    except OSError as e:
        return infra(item, start, f"sandbox: {e}")
    if not cg.empty():
        return infra(item, start, "sandbox: the slot's cgroup holds processes that do not die")
    return cg


def execute(item: Item, limits: Limits, backend: str, slot: int) -> Result:
    """Run one item in a fresh child and return its verdict; never raises for the item's sake."""
    start = time.monotonic()
    ready = prepare(item, start)
    if isinstance(ready, Result):
        return replace(ready, stderr=ready.stderr[: limits.output_bytes])
    uid = slot_uid(backend, slot)
    if backend == "bwrap":  # its /tmp is a fresh tmpfs of its own
        cg = clean_slot_cgroup(item, slot, start)
        if isinstance(cg, Result):
            return cg
        try:
            return _execute_in(item, limits, backend, slot, uid, "/", ready, start, cg)
        except OSError as e:
            return infra(item, start, f"sandbox: {type(e).__name__}: {e}")
        finally:
            cg.empty()  # nothing of the item outlives it, whatever session or namespace it is in
    try:
        workdir = make_workdir(uid)
    except OSError as e:
        return infra(item, start, f"sandbox: cannot create a work directory: {e}")
    try:
        return _execute_in(item, limits, backend, slot, uid, workdir, ready, start)
    except OSError as e:
        return infra(item, start, f"sandbox: {type(e).__name__}: {e}")
    finally:
        remove_workdir(workdir)


def spawn(
    argv: list[str], cwd: str, pass_fds: tuple[int, ...], slot: int, output: int = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    """Start a child with a pipe for stdin (and by default stdout and stderr), in a new session,
    our minimal environment, and (bwrap as root) the slot's network namespace."""
    shared_net = argv[0] == bwrap.BWRAP and "--unshare-net" not in argv
    with netns.entered(slot) if shared_net else contextlib.nullcontext():
        return subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=output,
            stderr=output,
            pass_fds=pass_fds,
            cwd=cwd,
            env=CHILD_ENV,
            start_new_session=True,
        )


def sandbox_argv(backend: str, extra: str, zygote: bool = False) -> list[str]:
    """The command line of a runner: bwrap's prefix (if any), the interpreter, the bootstrap."""
    prefix = (
        bwrap.bwrap_prefix(netns.available(), bwrap.dev_directory(), zygote) if backend == "bwrap" else ()
    )
    return [*prefix, python_executable(), *PYTHON_FLAGS, "-c", BOOTSTRAP, extra]


def _execute_in(
    item: Item,
    limits: Limits,
    backend: str,
    slot: int,
    uid: int,
    cwd: str,
    ready: Prepared,
    start: float,
    cg: cgroup.SlotCgroup | None = None,
) -> Result:
    fds = cg.judge_fds if cg is not None else ()
    if cg is not None:
        cg.cap_memory(bwrap.slot_memory_mb(limits))
    stdin, nonce = item_stdin(item, limits, uid, RUNNER_CODE, ready, (), fds)
    r_fd, w_fd = os.pipe()
    try:
        try:
            argv = sandbox_argv(backend, str(w_fd))
            start_it = functools.partial(spawn, argv, cwd, (w_fd, *fds), slot)
            proc = cg.run(start_it) if cg is not None else start_it()  # born in the slot's cgroup
        finally:
            os.close(w_fd)
        try:
            assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
            write_stdin(proc.stdin.fileno(), stdin)
            proc.stdin.close()
            out, err, raw, reason = _watch_process(
                proc.pid,
                proc.stdout.fileno(),
                proc.stderr.fileno(),
                r_fd,
                watch_limits(item, limits),
                nonce,
                cg,
            )
            returncode = proc.wait()
            return classify(item, limits, backend, out, err, raw, nonce, reason, returncode, start)
        finally:
            if proc.returncode is None:
                kill_group(proc.pid)
                proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
    finally:
        os.close(r_fd)


def write_stdin(fd: int, data: bytes) -> None:
    """All of data, then nothing more (a child that has died or stopped reading is fine)."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except BrokenPipeError:
        pass


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _exited(pid: int) -> bool:
    """Has pid exited? Does not reap it, so its process group id stays reserved for killpg."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info is not None


def _watch_process(
    pid: int,
    out_fd: int,
    err_fd: int,
    r_fd: int,
    limits: Limits,
    nonce: str,
    cg: cgroup.SlotCgroup | None = None,
) -> tuple[bytes, bytes, bytes, str]:
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = -1
    try:
        if pidfd >= 0:
            return watch(out_fd, err_fd, r_fd, limits, nonce, pidfd, lambda: "")
        return watch(out_fd, err_fd, r_fd, limits, nonce, -1, lambda: "" if _exited(pid) else None)
    finally:
        try:
            if cg is not None:
                # Killing bwrap's group alone reaches neither the judge (bwrap's --new-session) nor
                # what it started: they died later, after the item had ended (docs/sandbox.md).
                # The cgroup holds them all. bwrap then exits by itself once its pid namespace is
                # gone (the kernel reaps a namespace before its init's exit is reported).
                cg.empty()
                if pidfd >= 0:
                    select.select([pidfd], [], [], BWRAP_EXIT_S)
        finally:
            kill_group(pid)
        if pidfd >= 0:
            os.close(pidfd)
