"""Run one command inside a repository workspace, isolated as a single program's item is.

A repository episode (workers/repo) runs the repository's tests, which are untrusted code, on a
writable copy of the repository (the workspace). This module runs such a command:

- in bwrap, with the same read-only system as the sandbox's items (``bwrap.bwrap_prefix``), no
  network (``--unshare-net``), its own pid namespace and a /tmp of its own; the workspace is bound
  writable at ``/repo`` and is the working directory; extra Python libraries (the pinned pytest) are
  bound read-only under ``/triad/lib``;
- born in the slot's cgroup (``cgroup.for_slot``), capped at ``cgroup.PIDS_MAX`` tasks (and its
  memory on v2), emptied when the command ends, so nothing it started outlives it;
- as root, as the slot's unprivileged uid (``process_backend.slot_uid``; the workspace is chowned to
  it), under rlimits (CPU, address space, file size, open files, processes);
- with a wall-clock limit: past it the whole cgroup is killed; stdout and stderr are capped.

Fail closed: where bwrap or the cgroup does not work, ``SandboxUnavailable`` says why, unless the
operator opted in with TRIAD_SANDBOX_UNISOLATED=1 (then the command runs in the workspace directory
itself, in a new session under the same rlimits, with no namespace: trusted code only). See
docs/repository-tasks.md, "The workspace".
"""

from __future__ import annotations

import json
import math
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import bwrap, cgroup, process_backend
from .batch import (
    INSTALL_HINT,
    UNISOLATED_ENV,
    SandboxUnavailable,
    _env_flag,
    _slots,
    bwrap_unavailable_reason,
)
from .payload import CHILD_ENV, python_executable

WORKSPACE_MOUNT = "/repo"  # where the workspace is inside the sandbox (and its working directory)
LIB_MOUNT = "/triad/lib"  # where python_libs are bound, read-only; PYTHONPATH names it
PYTHON = "python"  # argv[0] that means the sandbox's interpreter (the real one, not the venv)
FSIZE_BYTES = 16 << 20  # the largest file the command may write
NOFILE = 256
NPROC = 64  # processes (threads count) of the slot uid; the cgroup caps the slot at PIDS_MAX
EXIT_GRACE_S = 0.5  # after the command exits, how long we keep reading what its leftovers still hold
READ_CHUNK = 65536

# Started as root inside bwrap (no capabilities but setuid/setgid): join the cgroup (v2), set the
# rlimits, drop to the slot uid, exec the command. The status descriptor tells the parent how far it
# got: "1" once this code runs, then nothing if the exec succeeds (it is close-on-exec) or "E" and
# the error if anything before it failed. Silence, or an "E", is a sandbox_error (ours), never the
# command's failure.
_BOOT = (
    "import os, sys\n"
    "import json, resource\n"
    "c = json.loads(sys.argv[1])\n"
    "os.write(c['st'], b'1')\n"
    "try:\n"
    "    for fd in c['cg']:\n"
    "        os.write(fd, b'0'); os.close(fd)\n"
    "    for name, value in c['rl']:\n"
    "        resource.setrlimit(getattr(resource, name), (value, value))\n"
    "    if c['uid'] >= 0:\n"
    "        os.setgroups([]); os.setgid(c['uid']); os.setuid(c['uid'])\n"
    "    os.umask(0o022)\n"
    "    os.set_inheritable(c['st'], False)\n"
    "    os.execve(c['argv'][0], c['argv'], c['env'])\n"
    "except BaseException as e:\n"
    "    os.write(c['st'], ('E' + type(e).__name__ + ': ' + str(e)).encode()[:500])\n"
    "    os._exit(126)\n"
)


@dataclass(frozen=True)
class CommandResult:
    returncode: int  # the command's exit status (negative: killed by that signal); -1 when it never ran
    stdout: str  # capped at output_cap bytes, then a "[output cut: N more bytes]" line
    stderr: str
    timed_out: bool
    duration_ms: int
    error_class: str  # "" when it ran (whatever its status), "timeout", or "sandbox_error" (ours)


def run_in_workspace(
    root: Path,
    argv: Sequence[str],
    *,
    timeout_s: float,
    memory_mb: int = 1024,
    output_cap: int = 64_000,
    stdin: bytes = b"",
    env: Mapping[str, str] | None = None,
    python_libs: Sequence[str] = (),
) -> CommandResult:
    """Run argv in the workspace `root` (see the module's docstring); argv[0] == PYTHON is the
    sandbox's interpreter. `env` adds to the minimal environment; `python_libs` are host paths of
    packages or modules made importable (read-only). Raises SandboxUnavailable where isolation does
    not work and the operator has not opted out of it; never leaves a process running."""
    if not argv:
        raise ValueError("argv must name a command")
    if not timeout_s > 0:
        raise ValueError("timeout_s must be > 0")
    root = Path(root).resolve()
    if not root.is_dir():
        raise ValueError(f"the workspace {root} is not a directory")
    isolated = _isolated()
    slot = _slots.acquire()
    try:
        if isolated:
            return _run_bwrap(
                root, argv, timeout_s, memory_mb, output_cap, stdin, env or {}, python_libs, slot
            )
        return _run_unisolated(root, argv, timeout_s, memory_mb, output_cap, stdin, env or {}, python_libs)
    finally:
        _slots.release(slot)


def _isolated() -> bool:
    """True to run under bwrap; False where the operator opted in to running unisolated."""
    reason = bwrap_unavailable_reason()
    if not reason:
        return True
    if _env_flag(UNISOLATED_ENV):
        return False
    raise SandboxUnavailable(
        f"the sandbox refuses to run a workspace's code unisolated: {reason}; {INSTALL_HINT}"
    )


def _rlimits(timeout_s: float, memory_mb: int) -> list[tuple[str, int]]:
    return [
        ("RLIMIT_CPU", math.ceil(timeout_s) + 1),
        ("RLIMIT_AS", memory_mb << 20),
        ("RLIMIT_FSIZE", FSIZE_BYTES),
        ("RLIMIT_NOFILE", NOFILE),
        ("RLIMIT_NPROC", NPROC),
        ("RLIMIT_CORE", 0),
    ]


def _environment(env: Mapping[str, str], pythonpath: str) -> dict[str, str]:
    out = {**CHILD_ENV, "HOME": "/tmp", "TMPDIR": "/tmp"}  # noqa: S108 — the sandbox's own /tmp
    out.update(env)
    if pythonpath:
        out["PYTHONPATH"] = pythonpath
    return out


def _command(argv: Sequence[str]) -> list[str]:
    return [python_executable() if argv[0] == PYTHON else argv[0], *argv[1:]]


def chown_tree(root: Path, uid: int) -> None:
    """Hand the workspace to the slot uid (links are not followed: lchown)."""
    os.lchown(root, uid, uid)
    for top, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            os.lchown(os.path.join(top, name), uid, uid)


def _run_bwrap(
    root: Path,
    argv: Sequence[str],
    timeout_s: float,
    memory_mb: int,
    output_cap: int,
    stdin: bytes,
    env: Mapping[str, str],
    python_libs: Sequence[str],
    slot: int,
) -> CommandResult:
    start = time.monotonic()
    uid = process_backend.slot_uid("bwrap", slot)
    try:
        cg = cgroup.for_slot(slot)
    except OSError as e:
        return _infra(start, f"sandbox: {e}")
    if not cg.empty():
        return _infra(start, "sandbox: the slot's cgroup holds processes that do not die")
    try:
        if uid >= 0:
            chown_tree(root, uid)
            os.chmod(root, 0o755)  # noqa: S103 — bwrap (root, no capabilities) must chdir into it
        binds: list[str] = []
        paths: list[str] = []
        for lib in python_libs:
            target = f"{LIB_MOUNT}/{os.path.basename(lib.rstrip('/'))}"
            binds += ["--ro-bind", lib, target]
            paths.append(target)
        prefix = list(bwrap.bwrap_prefix(False, bwrap.dev_directory(), True))[:-1]  # up to "--"
        if "--chdir" in prefix:  # the items' /tmp; ours is the workspace (bwrap warns of two)
            at = prefix.index("--chdir")
            del prefix[at : at + 2]
        prefix += ["--bind", str(root), WORKSPACE_MOUNT, *binds, "--chdir", WORKSPACE_MOUNT, "--"]
        cg.cap_memory(memory_mb + bwrap.TMP_MB + 64)
        return _run(
            prefix,
            argv,
            cwd="/",
            timeout_s=timeout_s,
            rlimits=_rlimits(timeout_s, memory_mb),
            uid=uid,
            output_cap=output_cap,
            stdin=stdin,
            env=_environment(env, LIB_MOUNT if paths else ""),
            cg=cg,
            start=start,
        )
    except OSError as e:
        return _infra(start, f"sandbox: {type(e).__name__}: {e}")


def _run_unisolated(
    root: Path,
    argv: Sequence[str],
    timeout_s: float,
    memory_mb: int,
    output_cap: int,
    stdin: bytes,
    env: Mapping[str, str],
    python_libs: Sequence[str],
) -> CommandResult:
    """The operator's opt-in: no namespace, no cgroup; rlimits, a new session, the workspace as cwd."""
    start = time.monotonic()
    libdir = tempfile.mkdtemp(prefix="triad-workspace-lib-") if python_libs else ""
    try:
        for lib in python_libs:
            os.symlink(lib, os.path.join(libdir, os.path.basename(lib.rstrip("/"))))
        return _run(
            [],
            argv,
            cwd=str(root),
            timeout_s=timeout_s,
            rlimits=_rlimits(timeout_s, memory_mb),
            uid=-1,
            output_cap=output_cap,
            stdin=stdin,
            env=_environment(env, libdir),
            cg=None,
            start=start,
        )
    except OSError as e:
        return _infra(start, f"sandbox: {type(e).__name__}: {e}")
    finally:
        if libdir:
            shutil.rmtree(libdir, ignore_errors=True)


def _run(
    prefix: list[str],
    argv: Sequence[str],
    *,
    cwd: str,
    timeout_s: float,
    rlimits: list[tuple[str, int]],
    uid: int,
    output_cap: int,
    stdin: bytes,
    env: dict[str, str],
    cg: cgroup.SlotCgroup | None,
    start: float,
) -> CommandResult:
    st_r, st_w = os.pipe()
    cg_fds = cg.judge_fds if cg is not None else ()
    config = {
        "cg": list(cg_fds),
        "rl": rlimits,
        "uid": uid,
        "st": st_w,
        "argv": _command(argv),
        "env": env,
    }
    boot = [*prefix, python_executable(), "-S", "-s", "-B", "-c", _BOOT, json.dumps(config)]
    try:

        def spawn() -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                boot,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(st_w, *cg_fds),
                cwd=cwd,
                env=CHILD_ENV,
                start_new_session=True,
            )

        try:
            proc = cg.run(spawn) if cg is not None else spawn()  # born in the slot's cgroup (v1)
        finally:
            os.close(st_w)
        try:
            assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
            process_backend.write_stdin(proc.stdin.fileno(), stdin)
            proc.stdin.close()
            out, err, timed_out = _watch(proc, start + timeout_s, output_cap)
        finally:
            # What the command left (a daemon, a fork loop) dies with it; a cgroup that does not
            # empty is the machine's fault, reported as such.
            emptied = cg.empty() if cg is not None else True
            process_backend.kill_group(proc.pid)
            proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        status = _read_all(st_r)
    finally:
        os.close(st_r)
    duration_ms = int((time.monotonic() - start) * 1000)
    stdout, stderr = out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
    if not emptied:
        return CommandResult(
            -1,
            stdout,
            "sandbox: the slot's cgroup could not be emptied",
            timed_out,
            duration_ms,
            "sandbox_error",
        )
    if status != b"1" and not timed_out:
        why = (
            status[2:].decode("utf-8", "replace") if status.startswith(b"1E") else "the sandbox did not start"
        )
        return CommandResult(-1, stdout, f"sandbox: {why}\n{stderr}", False, duration_ms, "sandbox_error")
    return CommandResult(
        proc.returncode, stdout, stderr, timed_out, duration_ms, "timeout" if timed_out else ""
    )


def _read_all(fd: int) -> bytes:
    """What the boot code wrote on the status pipe (every writer has exited by now)."""
    data = b""
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 1024)
        if not chunk:
            break
        data += chunk
    return data[:1024]


def _watch(proc: subprocess.Popen[bytes], deadline: float, cap: int) -> tuple[bytes, bytes, bool]:
    """Read stdout and stderr (each kept up to `cap` bytes, the rest counted) until both close, or
    the command has exited and EXIT_GRACE_S passed (a leftover may hold them), or the deadline."""
    assert proc.stdout is not None and proc.stderr is not None
    fds = (proc.stdout.fileno(), proc.stderr.fileno())
    bufs = {fd: bytearray() for fd in fds}
    cut = dict.fromkeys(fds, 0)
    open_fds = set(fds)
    pidfd = os.pidfd_open(proc.pid)
    exited_at = 0.0
    timed_out = False
    try:
        while open_fds:
            now = time.monotonic()
            if exited_at and now - exited_at >= EXIT_GRACE_S:
                break
            if now >= deadline:
                timed_out = not exited_at
                break
            until = min(deadline, exited_at + EXIT_GRACE_S) if exited_at else deadline
            waiting = [*open_fds, *([] if exited_at else [pidfd])]
            ready, _, _ = select.select(waiting, [], [], until - now)
            for fd in ready:
                if fd == pidfd:
                    exited_at = time.monotonic()
                    continue
                chunk = os.read(fd, READ_CHUNK)
                if not chunk:
                    open_fds.discard(fd)
                    continue
                room = max(cap - len(bufs[fd]), 0)
                bufs[fd] += chunk[:room]
                cut[fd] += max(len(chunk) - room, 0)
    finally:
        os.close(pidfd)
    for fd in fds:
        if cut[fd]:
            bufs[fd] += f"\n[output cut: {cut[fd]} more bytes]".encode()
    return bytes(bufs[fds[0]]), bytes(bufs[fds[1]]), timed_out


def _infra(start: float, message: str) -> CommandResult:
    return CommandResult(-1, "", message, False, int((time.monotonic() - start) * 1000), "sandbox_error")
