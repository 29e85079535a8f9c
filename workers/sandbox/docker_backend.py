"""The "docker" backend: one throwaway container per item, for nodes with a Docker engine.

The container (image ``TRIAD_SANDBOX_DOCKER_IMAGE``, default ``python:<our major.minor>-slim``) gets
no network, a read-only root, a tmpfs ``/tmp`` (nosuid, nodev, noexec), ``pids_limit``, a memory
limit without swap, every capability dropped, ``no-new-privileges`` and uid 65534. It runs the same
trusted runner (a judge process and a candidate process): the bootstrap and the runner's *source*
(the image's Python may differ from ours, so no code object) arrive on the container's stdin. With
no spare descriptor to pass, the verdict goes to stdout behind the item's nonce, which only the
judge process knows: the parent cuts the ``started:<nonce>:`` line and the final verdict line out
of stdout. The container is force-removed at the end, whatever happened.

The docker SDK is imported only here, so the other backends need nothing but the standard library.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from functools import cache
from typing import Any

from .payload import BOOTSTRAP, CHILD_ENV, PYTHON_FLAGS, RUNNER_SOURCE, item_stdin, watch_limits
from .types import Item, Limits, Result
from .verdict import STARTUP_GRACE_S, classify, infra

IMAGE = os.environ.get(
    "TRIAD_SANDBOX_DOCKER_IMAGE", f"python:{sys.version_info.major}.{sys.version_info.minor}-slim"
)
TMPFS_MB = 64
PIDS_LIMIT = 64


def _client() -> Any:
    import docker  # the SDK: only this backend needs it

    return docker.from_env(timeout=30)


@cache
def unavailable_reason() -> str:
    """'' when a Docker engine answers here, else why not (cached for the process)."""
    try:
        client = _client()
        client.ping()
    except ImportError:
        return "the docker SDK is not installed (pip install docker)"
    except Exception as e:  # the SDK raises several unrelated types for "no engine"
        return f"no Docker engine answers ({type(e).__name__}: {str(e)[:200]})"
    return ""


def container_config(limits: Limits, nonce: str) -> dict[str, Any]:
    """Keyword arguments for ``client.containers.create`` (separate so that it can be reviewed)."""
    memory = f"{max(limits.memory_mb, 16) + 32}m"  # the runner's RLIMIT_AS is the tighter bound
    return {
        "image": IMAGE,
        "command": ["python3", *PYTHON_FLAGS, "-c", BOOTSTRAP, "1"],
        "stdin_open": True,
        "stdin_once": True,
        "network_disabled": True,
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,nosuid,nodev,noexec,size={TMPFS_MB}m,mode=1777"},  # noqa: S108
        "working_dir": "/tmp",  # noqa: S108
        "user": "65534:65534",
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": PIDS_LIMIT,
        "mem_limit": memory,
        "memswap_limit": memory,
        "nano_cpus": 1_000_000_000,
        "environment": dict(CHILD_ENV),
        "ipc_mode": "none",
        "labels": {"triad.sandbox": nonce},
        "log_config": {"type": "json-file", "config": {"max-size": f"{4 * limits.output_bytes}"}},
    }


def execute(item: Item, limits: Limits) -> Result:
    """Run one item in a fresh container; never raises for the item's sake."""
    start = time.monotonic()
    try:
        client = _client()
    except Exception as e:
        return infra(item, start, f"sandbox: docker: {type(e).__name__}: {e}")
    stdin, nonce = item_stdin(item, limits, -1, RUNNER_SOURCE, None)
    container = None
    try:
        container = client.containers.create(**container_config(limits, nonce))
        sock = client.api.attach_socket(container.id, params={"stdin": 1, "stream": 1})
        raw: socket.socket = getattr(sock, "_sock", sock)
        container.start()
        raw.sendall(stdin)
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_WR)
        reason = ""
        deadline = STARTUP_GRACE_S + watch_limits(item, limits).timeout_s
        try:
            status = int(container.wait(timeout=deadline).get("StatusCode", -1))
        except Exception:  # requests' ReadTimeout / ConnectionError: the item ran out of time
            reason, status = "timeout", -9
            with contextlib.suppress(Exception):
                container.kill()
        out = container.logs(stdout=True, stderr=False) or b""
        err = container.logs(stdout=False, stderr=True) or b""
        with contextlib.suppress(OSError):
            raw.close()
        verdict, out = split_stdout(out, nonce)
        cap = limits.output_bytes
        if not reason and (len(out) > cap or len(err) > cap):
            reason = "output_limit"
        if status == 137 and not reason and b'"error_class"' not in verdict:
            # killed by the cgroup's OOM killer (or pids): no verdict, memory is the likely cause
            err += b"\nMemoryError: the container was killed (status 137)"
        return classify(item, limits, "docker", out, err, verdict, nonce, reason, status, start)
    except Exception as e:
        return infra(item, start, f"sandbox: docker: {type(e).__name__}: {e}")
    finally:
        if container is not None:
            with contextlib.suppress(Exception):
                container.remove(force=True)


def split_stdout(out: bytes, nonce: str) -> tuple[bytes, bytes]:
    """(the runner's marker and verdict lines, the candidate's own stdout) from the container's."""
    marker = f"started:{nonce}:".encode()
    verdict_lines: list[bytes] = []
    i = out.find(marker)
    if i >= 0:
        j = out.find(b"\n", i)
        j = len(out) if j < 0 else j + 1
        verdict_lines.append(out[i:j])
        out = out[:i] + out[j:]
    tag = f'"nonce":"{nonce}"'.encode()
    k = out.rfind(tag)
    if k >= 0:
        a = out.rfind(b"\n{", 0, k)
        b = out.find(b"\n", k)
        if a >= 0:
            b = len(out) if b < 0 else b + 1
            verdict_lines.append(out[a + 1 : b])
            out = out[:a] + out[b:]
    return b"".join(verdict_lines), out
