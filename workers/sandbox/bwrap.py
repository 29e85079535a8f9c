"""bwrap's command line (namespaces, a read-only system, a /tmp of its own) and the /dev it binds,
for the "bwrap" backend and warm mode's zygotes; and the memory cap of a bwrap slot's cgroup."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import threading
from functools import cache
from pathlib import Path

from .payload import install_dirs
from .types import Limits

BWRAP = "/usr/bin/bwrap"
TMP_MB = 64  # the size of each bwrap sandbox's /tmp (a tmpfs); RLIMIT_FSIZE caps each file at 1 MiB


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
    for path in install_dirs():
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
