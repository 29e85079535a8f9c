"""One item in one fresh, isolated child process: the "process" and "bwrap" backends.

Both backends run the trusted harness (runner.py) in a new session with a minimal environment and a
fresh working directory, watch its stdout, stderr and a private verdict pipe with a deadline and
output caps, then SIGKILL the whole process group and remove the directory. "bwrap" adds namespaces
(no network, own pid space, read-only filesystem but /tmp). See docs/sandbox.md.
"""

from __future__ import annotations

import contextlib
import json
import marshal
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any

from .types import ERROR_CLASSES, Item, Limits, Result

BWRAP = "/usr/bin/bwrap"
BACKENDS = ("process", "bwrap", "docker")
# When the worker runs as root, each concurrent slot runs its child as its own unprivileged uid
# (SLOT_UID_BASE + slot), so RLIMIT_NPROC (per uid) contains a fork bomb to that slot.
SLOT_UID_BASE = 62000
STARTUP_GRACE_S = 10.0  # before the runner reports "started"; the item's timeout counts from there
CHILD_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
}
PYTHON_FLAGS = ("-S", "-s", "-B", "-P")  # no site, no user site, no .pyc, no cwd on sys.path
RUNNER_SOURCE = Path(__file__).with_name("runner.py").read_text(encoding="utf-8")
# Compiled once here; the child unmarshals it (same interpreter binary) instead of compiling it.
RUNNER_CODE = marshal.dumps(compile(RUNNER_SOURCE, "<runner>", "exec"))
BOOTSTRAP = (
    "import marshal, os\n"
    "b = bytearray()\n"
    "while c := os.read(0, 1 << 16): b += c\n"
    "r, p = marshal.loads(b)\n"
    "del b, c\n"
    "r = marshal.loads(r) if type(r) is bytes else compile(r, '<runner>', 'exec')\n"
    "exec(r, {'__name__': '__main__', '__builtins__': __builtins__, '_PAYLOAD': p})\n"
)
VERDICT_CAP = 1 << 22


def python_executable() -> str:
    """The real interpreter: the child needs the standard library only, not the venv."""
    return os.path.realpath(sys.executable)


def _install_dirs() -> list[str]:
    exe_root = os.path.dirname(os.path.dirname(python_executable()))
    return sorted({os.path.realpath(sys.base_prefix), exe_root})


@cache
def _install_world_readable() -> bool:
    """Can another uid reach the interpreter and its standard library (e.g. not under /root)?"""
    for top in _install_dirs():
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


def bwrap_prefix() -> list[str]:
    args = [BWRAP, "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid"]
    args += ["--unshare-net", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if os.geteuid() == 0:
        # Privileged bwrap, no user namespace: the runner keeps only the capability to drop to its
        # slot uid, which it does before candidate code runs (a real, unprivileged host uid).
        args += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-user", "--uid", "65534", "--gid", "65534"]
    for top in ("/usr", "/bin", "/lib", "/lib32", "/lib64", "/sbin"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            args += ["--ro-bind", top, top]
    made = {"/", "/usr", "/tmp", "/proc", "/dev"}  # noqa: S108 — paths inside the sandbox
    for path in _install_dirs():
        if path == "/usr" or path.startswith("/usr/"):
            continue
        for parent in reversed(Path(path).parents):
            if str(parent) not in made:
                made.add(str(parent))
                args += ["--perms", "0755", "--dir", str(parent)]
        args += ["--ro-bind", path, path]
    return [*args, "--proc", "/proc", "--dev", "/dev"]


def infra(item: Item, start: float, message: str) -> Result:
    return Result(
        id=item.id,
        passed=False,
        error_class="sandbox_error",
        tests_passed=0,
        tests_total=0,
        duration_ms=int((time.monotonic() - start) * 1000),
        stdout="",
        stderr=message,
    )


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


def execute(item: Item, limits: Limits, backend: str, slot: int) -> Result:
    """Run one item in a fresh child and return its verdict; never raises for the item's sake."""
    if backend == "docker":
        from . import docker_backend

        return docker_backend.execute(item, limits)
    start = time.monotonic()
    uid = slot_uid(backend, slot)
    try:
        workdir = make_workdir(uid)
    except OSError as e:
        return infra(item, start, f"sandbox: cannot create a work directory: {e}")
    try:
        return _execute_in(item, limits, backend, uid, workdir, start)
    except OSError as e:
        return infra(item, start, f"sandbox: {type(e).__name__}: {e}")
    finally:
        remove_workdir(workdir)


def _execute_in(item: Item, limits: Limits, backend: str, uid: int, workdir: str, start: float) -> Result:
    nonce = secrets.token_hex(16)
    payload = marshal.dumps(
        (
            RUNNER_CODE,
            (
                nonce,
                item.code,
                item.tests,
                item.entry_point,
                float(limits.timeout_s),
                int(limits.memory_mb),
                int(limits.output_bytes),
                uid,
                uid,
            ),
        )
    )
    prefix: list[str] = []
    if backend == "bwrap":
        prefix = [*bwrap_prefix(), "--bind", workdir, "/tmp", "--chdir", "/tmp", "--"]  # noqa: S108
    r_fd, w_fd = os.pipe()
    try:
        argv = [*prefix, python_executable(), *PYTHON_FLAGS, "-c", BOOTSTRAP, str(w_fd)]
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(w_fd,),
                cwd=workdir,
                env=CHILD_ENV,
                start_new_session=True,
            )
        finally:
            os.close(w_fd)
        try:
            return _supervise(item, limits, backend, proc, r_fd, payload, nonce, start)
        finally:
            if proc.returncode is None:
                kill_group(proc.pid)
                proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
    finally:
        os.close(r_fd)


def kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _exited(pid: int) -> bool:
    """Has pid exited? Does not reap it, so its process group id stays reserved for killpg."""
    info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    return info is not None


def _supervise(
    item: Item,
    limits: Limits,
    backend: str,
    proc: subprocess.Popen[bytes],
    r_fd: int,
    payload: bytes,
    nonce: str,
    start: float,
) -> Result:
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        proc.stdin.write(payload)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    caps = {out_fd: limits.output_bytes, err_fd: limits.output_bytes, r_fd: VERDICT_CAP}
    bufs: dict[int, bytearray] = {fd: bytearray() for fd in caps}
    marker = f"started:{nonce}:".encode()
    started_at = 0.0
    deadline = time.monotonic() + STARTUP_GRACE_S
    reason = ""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = -1
    with selectors.DefaultSelector() as sel:
        for fd in caps:
            sel.register(fd, selectors.EVENT_READ)
        if pidfd >= 0:
            sel.register(pidfd, selectors.EVENT_READ)
        try:
            while not reason:
                now = time.monotonic()
                if now >= deadline:
                    reason = "timeout"
                    break
                wait = deadline - now if pidfd >= 0 else min(deadline - now, 0.02)
                exited = False
                for key, _ in sel.select(wait):
                    if key.fd == pidfd:
                        exited = True
                    elif not read_into(key.fd, bufs, caps, sel):
                        reason = "output_limit" if key.fd != r_fd else "verdict_overflow"
                if not started_at and marker in bufs[r_fd]:
                    started_at = time.monotonic()
                    deadline = started_at + limits.timeout_s
                if exited or (pidfd < 0 and _exited(proc.pid)):
                    break
            kill_group(proc.pid)
            if not reason:  # drain what the child wrote before it exited
                for fd in list(caps):
                    os.set_blocking(fd, False)
                    while not reason and fd in sel.get_map():
                        try:
                            if not read_into(fd, bufs, caps, sel):
                                reason = "output_limit" if fd != r_fd else "verdict_overflow"
                        except BlockingIOError:
                            break
        finally:
            if pidfd >= 0:
                os.close(pidfd)
    returncode = proc.wait()
    out, err, raw = bytes(bufs[out_fd]), bytes(bufs[err_fd]), bytes(bufs[r_fd])
    return classify(item, limits, backend, out, err, raw, nonce, reason, returncode, start)


def read_into(fd: int, bufs: dict[int, bytearray], caps: dict[int, int], sel: selectors.BaseSelector) -> bool:
    """Read what is there; False once the stream is over its cap (cap + 1 bytes are kept)."""
    data = os.read(fd, 65536)
    if not data:
        sel.unregister(fd)
        return True
    buf = bufs[fd]
    buf += data[: caps[fd] + 1 - len(buf)]
    return len(buf) <= caps[fd]


def _parse_verdict(raw: bytes, nonce: str) -> tuple[bool, int, dict[str, Any] | None]:
    """(started, tests_total announced at start, the one verdict carrying our nonce or None)."""
    started, total, verdicts = False, 0, []
    marker = f"started:{nonce}:".encode()
    for line in raw.split(b"\n"):
        if line.startswith(marker):
            started = True
            total = int(line[len(marker) :] or b"0")
        elif line.startswith(b"{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and obj.get("nonce") == nonce:
                verdicts.append(obj)
    if len(verdicts) != 1 or not _valid(verdicts[0]):
        return started, total, None
    return started, total, verdicts[0]


def _valid(v: dict[str, Any]) -> bool:
    return (
        v.get("error_class") in ERROR_CLASSES
        and all(type(v.get(k)) is int for k in ("tests_passed", "tests_total"))
        and all(type(v.get(k)) is str for k in ("exception_type", "failing_test", "traceback"))
    )


def _text(raw: bytes, cap: int) -> str:
    return raw[:cap].decode("utf-8", "replace")


def classify(
    item: Item,
    limits: Limits,
    backend: str,
    out: bytes,
    err: bytes,
    raw_verdict: bytes,
    nonce: str,
    reason: str,
    returncode: int,
    start: float,
) -> Result:
    cap = limits.output_bytes
    started, total, verdict = _parse_verdict(raw_verdict, nonce)
    passed_n, exc_type, failing, tb = 0, "", "", ""
    if reason == "timeout":
        cls = "timeout" if started else "sandbox_error"
        tb = "" if started else "sandbox: the runner did not start in time"
    elif reason == "output_limit":
        cls = "output_limit"
        tb = f"output exceeded {cap} bytes"
    elif verdict is not None:
        cls = verdict["error_class"]
        passed_n, total = verdict["tests_passed"], verdict["tests_total"]
        exc_type, failing, tb = verdict["exception_type"], verdict["failing_test"], verdict["traceback"]
        if cls == "passed" and not (0 < passed_n == total):
            cls = "crash"
    elif not started:
        cls = "sandbox_error"
        tb = f"sandbox: the runner failed before the candidate ran (exit status {returncode})"
    else:
        signum = -returncode if returncode < 0 else 0
        if backend in ("bwrap", "docker") and returncode > 128:
            signum = returncode - 128
        if signum == signal.SIGXCPU:
            cls = "timeout"
        elif signum == signal.SIGXFSZ:
            cls, tb = "output_limit", "a file exceeded the size limit"
        elif b"MemoryError" in err or b"Cannot allocate memory" in err:
            cls = "memory_limit"
        else:
            cls = "crash"
            exc_type = signal.Signals(signum).name if signum in signal.valid_signals() else ""
            tb = f"the process exited (status {returncode}) without a verdict"
    stderr = _text(err, cap)
    if tb:
        stderr = f"{stderr}\n{tb[:cap]}" if stderr else tb[:cap]
    return Result(
        id=item.id,
        passed=cls == "passed",
        error_class=cls,
        tests_passed=passed_n,
        tests_total=total,
        duration_ms=int((time.monotonic() - start) * 1000),
        stdout=_text(out, cap),
        stderr=stderr,
        exception_type=exc_type,
        failing_test=failing,
    )
