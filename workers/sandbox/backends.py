"""One item in one fresh, isolated child process: the "process" and "bwrap" backends.

Both backends run the trusted harness (runner.py: a judge process that forks the candidate
process) in a new session with a minimal environment and a fresh working directory, watch its
stdout, stderr and a private verdict pipe with a deadline and output caps, then SIGKILL the whole
process group and remove the directory. "bwrap" adds namespaces (no network, own pid space,
read-only filesystem but /tmp). The pieces every backend shares (the item's stdin, reading the
streams, reading the verdict) live here too. See docs/sandbox.md.
"""

from __future__ import annotations

import contextlib
import functools
import json
import marshal
import os
import resource
import secrets
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from . import cgroup, netns, runner
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
RUNNER_CODE = marshal.dumps(compile(RUNNER_SOURCE, "<runner>", "exec", optimize=2))  # no docstrings
# Reads the first part of stdin (a 4-byte length, then marshal((runner, public))) and runs the runner;
# the rest of stdin (the secret part) is left for the judge, which reads it after forking. It uses
# posix, not os: with -S nothing has imported os, which would cost a millisecond.
BOOTSTRAP = (
    "import marshal, posix\n"
    "b, n = b'', 4\n"
    "while len(b) < n:\n"
    "    c = posix.read(0, n - len(b))\n"
    "    if not c: raise SystemExit(3)\n"
    "    b += c\n"
    "    if n == 4 and len(b) == 4: n += int.from_bytes(b, 'big')\n"
    "r, p = marshal.loads(b[4:])\n"
    "del b, c, n\n"
    "r = marshal.loads(r) if type(r) is bytes else compile(r, '<runner>', 'exec')\n"
    "exec(r, {'__name__': '__main__', '__builtins__': __builtins__, '_PAYLOAD': p})\n"
)
VERDICT_CAP = 1 << 22
RESOURCE_PATH = str(getattr(resource, "__file__", "") or "")  # the runner loads it from its file


@cache
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


TMP_MB = 64  # the size of each bwrap sandbox's /tmp (a tmpfs); RLIMIT_FSIZE caps each file at 1 MiB
BWRAP_EXIT_S = 2.0  # how long bwrap may take to exit once its sandbox's cgroup is empty


def slot_memory_mb(limits: Limits) -> int:
    """A slot cgroup's memory cap (v2 with the memory controller; see cgroup.py): the judge and the
    candidate process may each use memory_mb (RLIMIT_AS), /tmp TMP_MB, and some room."""
    return 2 * limits.memory_mb + TMP_MB + 64


@cache
def bwrap_prefix(shared_net: bool = False, dev: str = "", zygote: bool = False) -> tuple[str, ...]:
    """bwrap's arguments up to the command (computed once): namespaces, a read-only system, /tmp.

    shared_net: start in the network namespace we are in (the slot's, see netns.py) instead of
    making a new one. dev: a prepared /dev to bind (see ``dev_directory``) instead of ``--dev``.
    zygote: a warm-mode zygote, which serves many items: it keeps bwrap's reaper as pid 1 and
    mounts /proc (it looks for leftovers there). A cold runner is pid 1 itself and has no /proc:
    see docs/sandbox.md, "Cost of a cold item".
    """
    args = [BWRAP, "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid"]
    args += [] if shared_net else ["--unshare-net"]
    args += ["--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if os.geteuid() == 0:
        # Privileged bwrap, no user namespace: the judge keeps only the capability to drop the
        # candidate process to its slot uid (a real, unprivileged host uid) before it runs code.
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
    # A cold runner as pid 1: one process less than bwrap's reaper, and the kernel drops signals
    # the candidate might send it. Without /proc: mounting one also binds four of its files over
    # themselves as root, each bind a read of the mount table (0.3–0.5 ms together).
    args += ["--proc", "/proc"] if zygote else ["--as-pid-1"]
    args += ["--dev-bind", dev, "/dev"] if dev else ["--dev", "/dev"]
    args += ["--size", str(TMP_MB << 20), "--perms", "1777", "--tmpfs", "/tmp", "--chdir", "/tmp"]  # noqa: S108
    return (*args, "--")


DEV_DIRECTORY = "/run/triad-sandbox-dev"  # shared by every sandbox process of the machine
_dev: list[str] = []
_dev_lock = threading.Lock()


def dev_directory() -> str:
    """As root: the /dev that bwrap binds (one bind mount instead of bwrap's own ``--dev``: a
    tmpfs, six binds and a devpts). "" where we cannot make device nodes (then ``--dev``).

    ``DEV_DIRECTORY`` is made once per machine (atomically, by rename) and used only if it is
    exactly what we make: root's, not writable by anyone, the expected devices and links. It is
    checked again whenever it has gone (and remade).
    """
    if os.geteuid() != 0:
        return ""
    with _dev_lock:
        if _dev and (not _dev[0] or os.path.isdir(_dev[0])):
            return _dev[0]
        _dev[:] = [_make_dev_directory()]
        return _dev[0]


def _forget_dev_directory() -> None:
    global _dev_lock
    _dev_lock = threading.Lock()  # another thread of the parent may have held it at the fork
    _dev.clear()


os.register_at_fork(after_in_child=_forget_dev_directory)


def _make_dev_directory() -> str:
    if _is_our_dev(DEV_DIRECTORY):
        return DEV_DIRECTORY
    try:
        top = tempfile.mkdtemp(prefix=".triad-sandbox-dev-", dir=os.path.dirname(DEV_DIRECTORY))
    except OSError:
        return ""
    try:
        for name, (major, minor) in DEV_NODES.items():
            os.mknod(f"{top}/{name}", 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            os.chmod(f"{top}/{name}", 0o666)  # noqa: S103 — as /dev/null is everywhere
        for name, target in DEV_LINKS.items():
            os.symlink(target, f"{top}/{name}")
        for name in ("pts", "shm"):
            os.mkdir(f"{top}/{name}", 0o755)
        os.chmod(top, 0o555)  # noqa: S103 — nobody writes here, the judge (uid 0, no capabilities) included
        with contextlib.suppress(OSError):  # another process may have made it first: then use that
            os.rename(top, DEV_DIRECTORY)
    except OSError:
        pass
    finally:
        if os.path.isdir(top):
            os.chmod(top, 0o700)
            shutil.rmtree(top, ignore_errors=True)
    return DEV_DIRECTORY if _is_our_dev(DEV_DIRECTORY) else ""


def _is_our_dev(top: str) -> bool:
    try:
        st = os.lstat(top)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0 or st.st_mode & 0o222:
            return False
        for name, (major, minor) in DEV_NODES.items():
            st = os.lstat(f"{top}/{name}")
            if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(major, minor) or st.st_uid != 0:
                return False
        return all(os.readlink(f"{top}/{name}") == target for name, target in DEV_LINKS.items())
    except OSError:
        return False


DEV_NODES = {
    "null": (1, 3),
    "zero": (1, 5),
    "full": (1, 7),
    "random": (1, 8),
    "urandom": (1, 9),
    "tty": (5, 0),
}
DEV_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "core": "/proc/kcore",
    "ptmx": "pts/ptmx",
}


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
    ready = prepare(item, start)
    if isinstance(ready, Result):
        return replace(ready, stderr=ready.stderr[: limits.output_bytes])
    uid = slot_uid(backend, slot)
    if backend == "bwrap":  # its /tmp is a fresh tmpfs of its own
        try:
            cg = cgroup.for_slot(slot)
        except OSError as e:  # fail closed: no item runs without the guarantee
            return infra(item, start, f"sandbox: {e}")
        if not cg.empty():
            return infra(item, start, "sandbox: the slot's cgroup holds processes that do not die")
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


# CPython 3.11 keeps the AST converter's recursion depth per interpreter, not per thread: two threads
# converting ASTs at once fail with "SystemError: AST constructor recursion depth mismatch"
# (python/cpython#106905). Batches run items on a thread pool, so conversions take turns.
_AST_LOCK = threading.Lock()


@lru_cache(maxsize=1024)
def prepared_tests(tests: str, entry_point: str) -> tuple[tuple[str, str] | None, bytes, int]:
    """(None, the tests compiled for the judge (marshalled), tests_total), or ((exception type,
    message), b"", 0) for tests that cannot run.

    The judge runs the same interpreter, so the tests are parsed, instrumented and compiled here,
    once per distinct test source (see ``runner.prepare_tests``), not in every sandbox.
    """
    with _AST_LOCK:
        prepared = runner.prepare_tests(tests, entry_point)
    if prepared[0] == "error":
        return (str(prepared[1]), str(prepared[2])), b"", 0
    return None, marshal.dumps(prepared), int(prepared[3 if prepared[0] == "check" else 2])


@dataclass(frozen=True)
class Prepared:
    """An item made ready for a runner of our own interpreter: its code and tests compiled."""

    code: bytes | None  # the candidate's code object, marshalled (None: too big, the sandbox compiles)
    tests: bytes


HOST_COMPILE_MAX = 1 << 20  # bigger candidates are compiled in the sandbox, under its limits


def prepare(item: Item, start: float) -> Prepared | Result:
    """Compile the item here, or return the verdict that needs no sandbox at all: tests that
    cannot run (a sandbox error) or a candidate that does not compile (``syntax_error``).

    Compiling is not running: the parser has fixed limits of its own, and it spares every
    sandbox the first ``compile`` of a process (see ``runner.compile_candidate``).
    """
    problem, tests, total = prepared_tests(item.tests, item.entry_point)
    if problem is not None:
        return replace(infra(item, start, problem[1]), exception_type=problem[0])
    if len(item.code) > HOST_COMPILE_MAX:
        return Prepared(None, tests)
    code, failed = runner.compile_candidate(item.code)
    if failed is None:
        return Prepared(marshal.dumps(code), tests)
    error_class, name, text = failed
    return Result(
        id=item.id,
        passed=False,
        error_class=error_class,
        tests_passed=0,
        tests_total=total,
        duration_ms=int((time.monotonic() - start) * 1000),
        stdout="",
        stderr=text,
        exception_type=name,
    )


def item_stdin(
    item: Item,
    limits: Limits,
    uid: int,
    runner_code: bytes | str | None,
    ready: Prepared | None,
    cpus: tuple[int, ...] = (),
    cgroup_fds: tuple[int, ...] = (),
) -> tuple[bytes, str]:
    """What the runner reads on stdin for one item, and the item's fresh nonce.

    First the part the candidate process may see (a 4-byte length, then ``marshal((runner_code,
    (code, compiled code, timeout_s, memory_mb, uid, resource path, cpus, cgroup fds)))``;
    runner_code is None for a warm zygote, which has it; cpus, when not empty, is the CPU set the
    judge moves to before it forks the candidate; cgroup_fds, the slot cgroup's ``cgroup.procs``
    descriptors that the judge joins first, see cgroup.py), then the part only the judge reads,
    after it has forked the candidate: ``marshal((nonce, tests, entry_point, output_bytes))``.
    Without ``ready`` (docker: the image's Python may differ from ours) the code and the tests go
    as source.
    """
    nonce = secrets.token_hex(16)
    resource_path = RESOURCE_PATH if ready is not None else ""
    limits_part = (float(limits.timeout_s), int(limits.memory_mb), uid, resource_path, cpus, cgroup_fds)
    compiled = ready.code if ready is not None else None
    public = marshal.dumps((runner_code, (item.code, compiled, *limits_part)))
    tests: bytes | str = ready.tests if ready is not None else item.tests
    secret = marshal.dumps((nonce, tests, item.entry_point, int(limits.output_bytes)))
    return len(public).to_bytes(4, "big") + public + secret, nonce


def spawn(
    argv: list[str], cwd: str, pass_fds: tuple[int, ...], slot: int, output: int = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    """Start a child with a pipe for stdin (and by default stdout and stderr), in a new session,
    our minimal environment, and (bwrap as root) the slot's network namespace."""
    shared_net = argv[0] == BWRAP and "--unshare-net" not in argv
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
    prefix = bwrap_prefix(netns.available(), dev_directory(), zygote) if backend == "bwrap" else ()
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
        cg.cap_memory(slot_memory_mb(limits))
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
                proc.pid, proc.stdout.fileno(), proc.stderr.fileno(), r_fd, limits, nonce, cg
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


def watch(
    out_fd: int,
    err_fd: int,
    r_fd: int,
    limits: Limits,
    nonce: str,
    event_fd: int,
    on_event: Callable[[], str | None],
) -> tuple[bytes, bytes, bytes, str]:
    """Read a child's stdout, stderr and verdict pipe until it is over; the backends share this.

    The item's deadline is ``limits.timeout_s`` after the judge writes ``started:<nonce>:`` (before
    that, ``STARTUP_GRACE_S``). ``on_event`` runs whenever event_fd is readable (every 20 ms when
    it is -1) and returns None to go on, "" when the child is done, or a reason to stop. Returns
    (stdout, stderr, verdict bytes, reason); reason is "", "timeout", "output_limit",
    "verdict_overflow" or what on_event said. Once the child is done, what it wrote is drained.
    """
    caps = {out_fd: limits.output_bytes, err_fd: limits.output_bytes, r_fd: VERDICT_CAP}
    bufs: dict[int, bytearray] = {fd: bytearray() for fd in caps}
    marker = f"started:{nonce}:".encode()
    started = False
    deadline = time.monotonic() + STARTUP_GRACE_S
    reason: str | None = None
    poller = select.poll()
    for fd in caps:
        poller.register(fd, select.POLLIN)
    if event_fd >= 0:
        poller.register(event_fd, select.POLLIN)
    live = set(caps)
    while reason is None:
        left = deadline - time.monotonic()
        if left <= 0:
            reason = "timeout"
            break
        wait = left if event_fd >= 0 else min(left, 0.02)
        event = event_fd < 0
        for fd, _ in poller.poll(wait * 1000 + 1):
            if fd == event_fd:
                event = True
            elif not _read_into(fd, bufs[fd], caps[fd], poller, live):
                reason = "output_limit" if fd != r_fd else "verdict_overflow"
        if not started and marker in bufs[r_fd]:
            started = True
            deadline = time.monotonic() + limits.timeout_s
        if reason is None and event:
            reason = on_event()
    if not reason:  # done: drain what the child wrote before it ended
        for fd in caps:
            os.set_blocking(fd, False)
            while not reason and fd in live:
                try:
                    if not _read_into(fd, bufs[fd], caps[fd], poller, live):
                        reason = "output_limit" if fd != r_fd else "verdict_overflow"
                except BlockingIOError:
                    break
    return bytes(bufs[out_fd]), bytes(bufs[err_fd]), bytes(bufs[r_fd]), reason or ""


def _read_into(fd: int, buf: bytearray, cap: int, poller: select.poll, live: set[int]) -> bool:
    """Read what is there; False once the stream is over its cap (cap + 1 bytes are kept)."""
    data = os.read(fd, 65536)
    if not data:
        poller.unregister(fd)
        live.discard(fd)
        return True
    buf += data[: cap + 1 - len(buf)]
    return len(buf) <= cap


def read_verdict(raw: bytes, nonce: str) -> tuple[bool, int, dict[str, Any] | None]:
    """(started, tests_total announced at start, the one valid verdict carrying our nonce or None).

    raw is what came on the verdict channel (docker: the lines cut out of stdout). Every backend
    reads it here: a line without our nonce, a second verdict or a malformed one counts as none.
    """
    started, total, verdicts = False, 0, []
    marker = f"started:{nonce}:".encode()
    for line in raw.split(b"\n"):
        if line.startswith(marker):
            started = True
            tail = line[len(marker) :]
            total = int(tail) if tail.isdigit() else 0
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
        and all(type(v.get(k, 0)) is int for k in ("cpu_us", "exit_status"))
    )


def _text(raw: bytes, cap: int) -> str:
    return raw[:cap].decode("utf-8", "replace")


def _died(returncode: int, err: bytes) -> tuple[str, str, str]:
    """(error class, exception type, note) for a process that ended without finishing its work."""
    signum = -returncode if returncode < 0 else 0
    if signum == signal.SIGXCPU:
        return "timeout", "", ""
    if signum == signal.SIGXFSZ:
        return "output_limit", "", "a file exceeded the size limit"
    if b"MemoryError" in err or b"Cannot allocate memory" in err:
        return "memory_limit", "", ""
    name = signal.Signals(signum).name if signum in signal.valid_signals() else ""
    return "crash", name, f"the process exited (status {returncode}) without a verdict"


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
    started, total, verdict = read_verdict(raw_verdict, nonce)
    passed_n, exc_type, failing, tb, cpu_ms = 0, "", "", "", 0.0
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
        cpu_us = verdict.get("cpu_us")
        cpu_ms = cpu_us / 1000 if type(cpu_us) is int and cpu_us >= 0 else 0.0
        if "exit_status" in verdict:  # the judge saw the candidate process end during the tests
            cls, exc_type, note = _died(verdict["exit_status"], err)
            tb = note.replace("process", "candidate process") if note else tb
        if cls == "passed" and not (0 < passed_n == total):
            cls = "crash"
    elif not started:
        cls = "sandbox_error"
        tb = f"sandbox: the runner failed before the candidate ran (exit status {returncode})"
    else:
        if backend in ("bwrap", "docker") and returncode > 128:
            returncode = -(returncode - 128)  # how bwrap and docker report a death by signal
        cls, exc_type, tb = _died(returncode, err)
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
        cpu_ms=cpu_ms,
    )
