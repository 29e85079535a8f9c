"""One empty network namespace per slot, made once and reused by that slot's bwrap sandboxes.

``bwrap --unshare-net`` makes a fresh network namespace for every item, and the kernel's set-up and
(deferred) tear-down of one costs about as much as a third of a Python start-up. As root we make
one namespace per slot instead (loopback up, nothing else: no interface, no route) and start that
slot's bwrap inside it, with no ``--unshare-net``. A slot runs one item at a time and every process
of an item is dead before the next one starts (the slot's cgroup enforces it: cgroup.py), so no
two items ever share a namespace at the same time and nothing of one is left for the next: sockets
die with their processes, and changing the namespace's configuration needs ``CAP_NET_ADMIN``,
which nothing in a sandbox holds.

Only the thread that spawns bwrap enters the namespace, for the duration of the spawn (``setns``
on that thread, then back): the worker itself never leaves its own network namespace. The
namespaces belong to one process: a forked child (a Celery prefork worker) makes its own.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_lock = threading.Lock()
_slots: dict[int, int] = {}  # slot -> descriptor of its namespace
_state: dict[str, Any] = {}


def _libc() -> Any:
    if "libc" not in _state:
        import ctypes

        _state["libc"] = ctypes.CDLL(None, use_errno=True)
    return _state["libc"]


def _setns(fd: int) -> None:
    import ctypes

    if _libc().setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _make() -> int:
    """A new network namespace with only loopback, up; returns a descriptor that keeps it alive."""
    import ctypes
    import fcntl
    import socket
    import struct

    made: list[int] = []
    failed: list[BaseException] = []

    def in_a_thread_of_its_own() -> None:  # unshare moves this thread only, which then ends
        try:
            if _libc().unshare(CLONE_NEWNET) != 0:
                err = ctypes.get_errno()
                raise OSError(err, f"unshare: {os.strerror(err)}")
            fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                    request = struct.pack("16sH22x", b"lo", 0)
                    flags = struct.unpack("16sH22x", fcntl.ioctl(s, _SIOCGIFFLAGS, request))[1]
                    fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | _IFF_UP))
            except BaseException:
                os.close(fd)
                raise
            made.append(fd)
        except BaseException as e:
            failed.append(e)

    thread = threading.Thread(target=in_a_thread_of_its_own, name="sandbox-netns")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


def _forget() -> None:
    """In a forked child (a Celery prefork worker): the parent's namespaces stay the parent's."""
    global _lock
    _lock = threading.Lock()  # another thread of the parent may have held it at the fork
    for fd in [*_slots.values(), *([_state["host"]] if "host" in _state else [])]:
        with contextlib.suppress(OSError):
            os.close(fd)
    _slots.clear()
    _state.pop("host", None)


os.register_at_fork(after_in_child=_forget)


def available() -> bool:
    """Can we make and enter network namespaces here (root, and the kernel lets us)? Cached."""
    if "available" not in _state:
        ok = os.geteuid() == 0
        if ok:
            try:
                fd = _make()
                host = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                try:
                    _setns(fd)
                    _setns(host)
                finally:
                    os.close(host)
                    os.close(fd)
            except (OSError, AttributeError):
                ok = False
        _state["available"] = ok
    return bool(_state["available"])


def slot_fd(slot: int) -> int:
    with _lock:
        fd = _slots.get(slot)
        if fd is None:
            fd = _slots[slot] = _make()
        return fd


def _host_fd() -> int:
    """Our own network namespace (the process's: a thread only leaves it inside ``entered``)."""
    with _lock:
        if "host" not in _state:
            _state["host"] = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        return int(_state["host"])


@contextlib.contextmanager
def entered(slot: int) -> Iterator[None]:
    """Run the body (a spawn) in the slot's network namespace, on this thread only."""
    target, host = slot_fd(slot), _host_fd()
    _setns(target)
    try:
        yield
    finally:
        _setns(host)
