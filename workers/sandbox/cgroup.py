"""A cgroup per slot: every process of an item is in it, and the item ends only once it is empty.

Process groups, sessions and pid namespaces can all be left (``setsid``, a double fork) or outlive
the process we wait for (a pid namespace dies after its init, asynchronously); a cgroup cannot be
left by an unprivileged process and can be emptied atomically. So, as isolate and nsjail do, each
slot of a worker process has one cgroup, made once and reused (warm mode stays fast):
``<our cgroup>/triad-sandbox/<pid>-<slot>`` in each hierarchy it uses, capped at ``PIDS_MAX``
tasks. Everything an item starts must be in it:

- v1 (cold items): a process is *born* in it. On v1 a thread, not only a process, has a cgroup, and
  a child is born in its forking thread's: so each slot has one long-lived thread of ours in the
  slot's pids cgroup (``run``), which starts the slot's bwrap. Moving a process into a cgroup
  instead costs about 4-5 ms of fork and exit time per item here (measured with
  bench/sandbox.py; the write itself takes 40 us): a third of a cold item.
- v1, warm items: the slot thread also starts the slot's zygote, so every judge it forks is born
  in the cgroup too. The zygote's own processes (bwrap, its reaper, the zygote) are *kept*
  (``keep``): emptying spares them for as long as each is alive, as it spares us. Moving each
  judge in instead cost every warm item a migration (see above).
- v2: the judge moves itself in (it writes ``0`` to a descriptor of ``cgroup.procs`` that the
  parent opened and passed, ``judge_fds``, then closes it) before it forks the candidate process.
  (On v2 a thread of ours in it would be killed with the item: ``cgroup.kill`` kills whole
  processes.)

When the item ends the parent empties it (``empty``): on cgroup v2 it writes ``1`` to
``cgroup.kill``; on v1 it freezes it (``freezer.state``), SIGKILLs every process but our own
(through pidfds, see ``_kill_all``) and thaws it; both then wait
until it holds nothing of the item. See docs/sandbox.md, "No process of an item survives it".

Without a usable cgroup the bwrap backends refuse to run (``unavailable_reason``).
Slot cgroups are removed at exit; those of dead worker processes are removed when a new one starts.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import re
import select
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

PARENT = "triad-sandbox"
# RLIMIT_NPROC lets the slot uid have 64 tasks (threads count); the judge, and a little room.
PIDS_MAX = 128
EMPTY_TIMEOUT_S = 10.0
_NAME = re.compile(r"^(\d+)-(\w+)$")


@dataclass(frozen=True)
class Layout:
    """Where the slot cgroups go: v1 needs the pids and freezer hierarchies, v2 the unified one."""

    version: int
    dirs: tuple[str, ...]  # v1: (pids, freezer) parents; v2: (parent,)


def layout(mountinfo: str, proc_cgroup: str) -> Layout | str:
    """The parent directories for our slot cgroups, from /proc/self/mountinfo and /proc/self/cgroup
    (our own cgroup in each hierarchy, so the slots stay under any cap we are under), or a reason.

    v1 is preferred when both pids and freezer are mounted as v1 (a hybrid machine: the pids cap
    lives there); otherwise the unified (v2) hierarchy.
    """
    v1: dict[str, str] = {}
    v2 = ""
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        parts, rest = head.split(" "), tail.split(" ")
        if not sep or len(parts) < 5 or len(rest) < 3:
            continue
        if rest[0] == "cgroup":
            for controller in ("pids", "freezer"):
                if controller in rest[2].split(","):
                    v1.setdefault(controller, parts[4])
        elif rest[0] == "cgroup2" and not v2:
            v2 = parts[4]
    own: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(",") if controllers else ["v2"]:
            own[controller] = path
    if "pids" in v1 and "freezer" in v1 and "pids" in own and "freezer" in own:
        return Layout(1, tuple(_join(v1[c], own[c], PARENT) for c in ("pids", "freezer")))
    if v2 and "v2" in own:
        return Layout(2, (_join(v2, own["v2"], PARENT),))
    return "no cgroup hierarchy to use: neither the pids and freezer controllers (v1) nor cgroup2 is mounted"


def _join(mount: str, path: str, *more: str) -> str:
    return os.path.join(mount, path.lstrip("/"), *more)


class SlotCgroup:
    """One slot's cgroup (one directory per hierarchy). ``fds``: ``cgroup.procs`` of each, open for
    writing, for the judge to move itself in (passed to the sandbox; never to the candidate)."""

    def __init__(self, version: int, dirs: tuple[str, ...]) -> None:
        self.version = version
        self.dirs = dirs
        for d in dirs:
            with contextlib.suppress(FileExistsError):
                os.mkdir(d, 0o700)
        self._set("pids.max", str(PIDS_MAX))
        self._memory_mb = 0
        fds: list[int] = []
        try:
            for d in dirs:
                fd = os.open(os.path.join(d, "cgroup.procs"), os.O_WRONLY | os.O_CLOEXEC)
                try:  # above 3: a warm zygote puts each item's pipes on 0-3 (runner.zygote)
                    fds.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
                finally:
                    os.close(fd)
        except OSError:
            for fd in fds:
                os.close(fd)
            raise
        self.fds = tuple(fds)
        self._kept: dict[int, int] = {}  # pid -> pidfd: processes of ours living here on purpose
        self._thread: ThreadPoolExecutor | None = None
        self._thread_lock = threading.Lock()

    @property
    def judge_fds(self) -> tuple[int, ...]:
        """What a cold item's judge must join itself: nothing on v1 (it is born in the cgroup)."""
        return () if self.version == 1 else self.fds

    def run(self, fn: Callable[[], T], cpus: set[int] | None = None) -> T:
        """Call fn (which starts an item's first process, or a warm zygote) so that its children
        are born in the cgroup: on v1 in the slot's own thread, which lives in the slot's pids
        cgroup (and so must outlive what it starts: bwrap's --die-with-parent fires when its
        forking thread ends), with the given CPU affinity (by default the caller's); on v2 here
        (the judge joins)."""
        if self.version != 1:
            return fn()
        with self._thread_lock:
            if self._thread is None:
                self._thread = ThreadPoolExecutor(1, f"sandbox-slot-{os.path.basename(self.dirs[0])}")
                self._thread.submit(self._enter).result()
            thread = self._thread
        if cpus is None:
            cpus = os.sched_getaffinity(0)  # this thread's (a worker may be pinned, see batch.py)

        def call() -> T:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, cpus)
            return fn()

        return thread.submit(call).result()

    def _enter(self) -> None:
        """The slot thread moves itself (only itself: ``tasks``, not ``cgroup.procs``) into the
        pids cgroup. It stays out of the freezer's, so that freezing the slot never stops us."""
        Path(self.dirs[0], "tasks").write_text("0")

    def _set(self, name: str, value: str) -> None:
        """Write a control file in whichever of our directories has it."""
        for d in self.dirs:
            path = os.path.join(d, name)
            if os.path.exists(path):
                Path(path).write_text(value)

    def keep(self, pidfds: dict[int, int]) -> None:
        """Spare these processes (pid -> a pidfd of it, which the cgroup now owns) when emptying,
        each for as long as it is alive: a warm zygote's bwrap, reaper and zygote (v1). Their
        pidfds are what make this safe: a pid is spared only while its pidfd says the process
        has not exited, so a pid reused by an item's process is never spared."""
        self._kept.update(pidfds)

    def release(self, pids: tuple[int, ...]) -> None:
        """No longer spare these (the zygote was closed): the next emptying kills what is left."""
        for pid in pids:
            fd = self._kept.pop(pid, -1)
            if fd >= 0:
                os.close(fd)

    def pids(self) -> set[int]:
        """The processes of the cgroup, but for our own (on v1 the slot thread is one of ours)
        and the kept ones that are alive."""
        found: set[int] = set()
        for d in self.dirs:
            fd = os.open(os.path.join(d, "cgroup.procs"), os.O_RDONLY | os.O_CLOEXEC)
            try:  # os, not open(): read twice per item, the buffered file's set-up is most of it
                data = b""
                while chunk := os.read(fd, 1 << 16):
                    data += chunk
            finally:
                os.close(fd)
            found.update(int(x) for x in data.split())
        found.discard(os.getpid())
        kept = {pid: fd for pid, fd in self._kept.items() if pid in found}
        if kept:  # listed, then checked alive: alive now, so alive when listed, so the same process
            exited = set(select.select(list(kept.values()), [], [], 0)[0])
            found.difference_update(pid for pid, fd in kept.items() if fd not in exited)
        return found

    def empty(self, timeout_s: float = EMPTY_TIMEOUT_S) -> bool:
        """Kill everything in the cgroup and wait until it is empty; False if it did not empty.

        Cheap when nothing is there (one read per hierarchy): the common case in warm mode, where
        the judge has already killed the item's processes itself.
        """
        try:
            return self._empty(timeout_s)
        except OSError:
            return False

    def _empty(self, timeout_s: float) -> bool:
        if not self.pids():
            return True
        deadline = time.monotonic() + timeout_s
        while True:
            if self.version == 2:
                self._set("cgroup.kill", "1")
            else:
                self._kill_frozen(deadline)
            # Short rounds: on v1 a cold item's processes are not frozen, so a fork loop may add a
            # few between two kills (the pids cap bounds how many).
            if _wait(lambda: not self.pids(), min(deadline, time.monotonic() + 0.1)):
                return True
            if time.monotonic() >= deadline:
                return False

    def _kill_frozen(self, deadline: float) -> None:
        """v1: freeze (no task can fork or exit meanwhile, so no pid is reused), SIGKILL all, thaw."""
        states = [os.path.join(d, "freezer.state") for d in self.dirs]
        state = next((s for s in states if os.path.exists(s)), "")
        if state:
            Path(state).write_text("FROZEN")
        try:
            if state:
                until = min(deadline, time.monotonic() + 1.0)
                _wait(lambda: Path(state).read_text().strip() == "FROZEN", until)
            self._kill_all()
        finally:
            if state:
                Path(state).write_text("THAWED")

    def _kill_all(self) -> None:
        """SIGKILL every process of the cgroup (but ours) through pidfds opened *before* the cgroup is
        read again: a pid still listed then is the pidfd's process (a process that died since the
        open leaves its pidfd dead, whoever reuses the pid), so no other process is ever signalled.
        The slot thread's children are not in the freezer's cgroup: they may exit, and their pids be
        reused, while we kill."""
        fds: dict[int, int] = {}
        try:
            for pid in self.pids():
                with contextlib.suppress(OSError):
                    fds[pid] = os.pidfd_open(pid)
            still = self.pids()
            for pid, fd in fds.items():
                if pid in still:
                    with contextlib.suppress(OSError):
                        signal.pidfd_send_signal(fd, signal.SIGKILL)
        finally:
            for fd in fds.values():
                os.close(fd)

    def cap_memory(self, mb: int) -> None:
        """v2 with the memory controller: cap the slot's memory (all its processes, its /tmp).
        Best effort: RLIMIT_AS bounds each process anyway, and the pids cap their number."""
        if self.version == 2 and self._memory_mb != mb:
            with contextlib.suppress(OSError):
                self._set("memory.max", str(mb << 20))
                self._memory_mb = mb

    def remove(self) -> None:
        """Empty it (a zygote kept there too), stop the slot thread, close our descriptors and
        remove the directories."""
        self.release(tuple(self._kept))
        self.empty()
        with self._thread_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.shutdown(wait=True)  # the thread leaves the cgroup as it ends
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = ()
        for d in self.dirs:
            with contextlib.suppress(OSError):
                os.rmdir(d)


def _wait(done: Callable[[], bool], until: float) -> bool:
    pause = 0.0002
    while True:
        if done():
            return True
        if time.monotonic() >= until:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.01)


_lock = threading.Lock()
_slots: dict[int, SlotCgroup] = {}
_state: dict[str, Layout | str] = {}


def _layout() -> Layout | str:
    """Our layout, made ready once per process (parents made, stale slots removed), or a reason."""
    with _lock:
        if "layout" not in _state:
            _state["layout"] = _prepare()
        return _state["layout"]


def _prepare() -> Layout | str:
    try:
        found = layout(Path("/proc/self/mountinfo").read_text(), Path("/proc/self/cgroup").read_text())
    except OSError as e:
        return f"cannot read our cgroups: {e}"
    if isinstance(found, str):
        return found
    try:
        for d in found.dirs:
            os.makedirs(d, 0o755, exist_ok=True)
            if found.version == 2:
                _enable_v2_controllers(d)
        remove_stale(found)
        probe = SlotCgroup(found.version, tuple(os.path.join(d, f"{os.getpid()}-probe") for d in found.dirs))
        probe.remove()
    except OSError as e:
        return f"cannot make a cgroup under {found.dirs[0]}: {e}"
    return found


def _enable_v2_controllers(parent: str) -> None:
    """v2: hand the pids and memory controllers down to the slot cgroups where the hierarchy
    allows it (best effort: a cgroup that holds processes cannot hand controllers down, and
    ``cgroup.kill``, which is what the guarantee needs, needs no controller)."""
    for d in (os.path.dirname(parent), parent):
        offered = Path(d, "cgroup.controllers").read_text().split()
        for controller in ("pids", "memory"):
            if controller in offered:
                with contextlib.suppress(OSError):
                    Path(d, "cgroup.subtree_control").write_text("+" + controller)


def remove_stale(found: Layout) -> None:
    """Remove slot cgroups of worker processes that are gone (killed before their exit handler)."""
    for parent in found.dirs:
        for name in os.listdir(parent):
            match = _NAME.match(name)
            if match is None or os.path.exists(f"/proc/{match.group(1)}"):
                continue
            dirs = tuple(os.path.join(p, name) for p in found.dirs if os.path.isdir(os.path.join(p, name)))
            if dirs:
                with contextlib.suppress(OSError):
                    SlotCgroup(found.version, dirs).remove()


def unavailable_reason() -> str:
    """Why no slot cgroup can be made here ("" when they can). Checked once per process."""
    found = _layout()
    return found if isinstance(found, str) else ""


def for_slot(slot: int) -> SlotCgroup:
    """The slot's cgroup, made on first use; raises OSError when none can be made."""
    with _lock:
        cg = _slots.get(slot)
    if cg is not None:
        return cg
    found = _layout()
    if isinstance(found, str):
        raise OSError(f"no cgroup for the sandbox: {found}")
    made = SlotCgroup(found.version, tuple(os.path.join(d, f"{os.getpid()}-{slot}") for d in found.dirs))
    with _lock:
        cg = _slots.setdefault(slot, made)
    if cg is not made:
        made.remove()
    return cg


def _forget() -> None:
    """In a forked child (a Celery prefork worker): the parent's cgroups stay the parent's."""
    global _lock
    _lock = threading.Lock()
    for cg in _slots.values():
        for fd in (*cg.fds, *cg._kept.values()):
            with contextlib.suppress(OSError):
                os.close(fd)
    _slots.clear()


os.register_at_fork(after_in_child=_forget)


@atexit.register
def close_all() -> None:
    """Empty and remove every slot cgroup of this process (also registered atexit)."""
    with _lock:
        cgs = list(_slots.values())
        _slots.clear()
    for cg in cgs:
        cg.remove()
